"""Store: prediction-log writes per second sustained through the batching writer (journal on, as
served), on the embedded SQLite and on PostgreSQL when its server binaries are installed; and beside
them the same without the rollup triggers (roomsight.rollup), to show what keeping the per-minute counts
costs the write path."""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from roomsight.regions import REGIONS


NOTES = """
`sqlite_without_rollup` and `postgresql_without_rollup` are the same writer on a log whose rollup triggers
(roomsight.rollup: the per-minute, per-region counts and the totals the control plane reads) were dropped, measured in the same run:
the difference is what keeping those counts costs each write.
"""


def _records(n: int):  # noqa: ANN202
    from serving.predlog import PredictionRecord

    now = time.time()
    return [PredictionRecord(
        request_id=str(uuid.uuid4()), ts=now + i * 1e-4, rollout_id="bench", stage="shadow", listing_id=f"L{i % 5000}",
        region=REGIONS[i % len(REGIONS)], served_by="champion", label="kitchen", score=0.93,
        latency_ms=20.0, champion_version="1", champion_label="kitchen", champion_scores={"kitchen": 0.93, "bedroom": 0.07},
        champion_ms=12.0, shadow="candidate") for i in range(n)]


def sustained(url: str, n: int, journal: Path | None, rollup: bool = True) -> dict[str, float]:
    from roomsight.db import engine_for
    from serving.predlog import LogWriter

    engine = engine_for(url)
    if not rollup:
        from roomsight import rollup as triggers

        with engine.begin() as conn:
            for name in triggers.installed(conn):
                conn.exec_driver_sql(f"DROP TRIGGER {name}" + (" ON predictions" if conn.dialect.name == "postgresql" else ""))
    records = _records(n)
    w = LogWriter(engine, flush_interval_s=0.2, batch_size=512, journal_dir=journal)
    t0 = time.perf_counter()
    for r in records:
        w.submit(r)
    submit_s = time.perf_counter() - t0
    assert w.flush(timeout=600)
    total_s = time.perf_counter() - t0
    w.close()
    return {"records": n, "submit_us_per_record": round(submit_s / n * 1e6, 1), "writes_per_s": round(n / total_s)}


@contextmanager
def postgres():
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb")) if Path("/usr/lib/postgresql").exists() else []
    if not bins:
        yield None
        return
    bin_ = bins[-1].parent
    root = Path(tempfile.mkdtemp(prefix="roomsight-bench-pg-"))
    as_user = []
    if getpass.getuser() == "root":
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run([*as_user, str(bin_ / "initdb"), "-D", str(root / "d"), "--auth=trust", "-U", "roomsight"], check=True,
                   capture_output=True)
    subprocess.run([*as_user, str(bin_ / "pg_ctl"), "-D", str(root / "d"), "-l", str(root / "log"), "-w", "-o",
                    f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start"], check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://roomsight@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(bin_ / "pg_ctl"), "-D", str(root / "d"), "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def _new_database(url: str, name: str) -> str:
    """A second database on the same server (an empty log of its own); its URL."""
    import sqlalchemy

    admin = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    return url.rsplit("/", 1)[0] + f"/{name}"


def run(quick: bool = False, out_dir: Path | None = None) -> dict:
    n = 5_000 if quick else 50_000
    tmp = Path(tempfile.mkdtemp(prefix="roomsight-bench-store-"))
    out = {"sqlite": sustained(f"sqlite:///{tmp / 'log.db'}", n, tmp / "journal"),
           "sqlite_no_journal": sustained(f"sqlite:///{tmp / 'log2.db'}", n, None),
           "sqlite_without_rollup": sustained(f"sqlite:///{tmp / 'log3.db'}", n, tmp / "journal3", rollup=False)}
    with postgres() as url:
        out["postgresql"] = sustained(url, n, tmp / "journal-pg") if url else "PostgreSQL binaries not installed"
        if url:
            out["postgresql_without_rollup"] = sustained(_new_database(url, "bench_without_rollup"), n, tmp / "journal-pg2",
                                                         rollup=False)
    shutil.rmtree(tmp, ignore_errors=True)
    return out


def targets(r: dict) -> list:
    from benchmarks.run import Target

    # The Serve app answers a few hundred requests a second on this machine at most; the log must keep up
    # with many times that, so it is never the bottleneck.
    out = [Target("SQLite log sustains >= 2,000 writes/s (journal on)", f"{r['sqlite']['writes_per_s']}/s",
                  r["sqlite"]["writes_per_s"] >= 2000)]
    if isinstance(r.get("postgresql"), dict):
        out.append(Target("PostgreSQL log sustains >= 2,000 writes/s (journal on)", f"{r['postgresql']['writes_per_s']}/s",
                          r["postgresql"]["writes_per_s"] >= 2000))
    return out


def main() -> None:
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=1))


if __name__ == "__main__":
    main()

"""Scale: what the control plane costs as the prediction log grows. One rollout's log of 10,000, 100,000 and
1,000,000 rows (with a second rollout of as many rows beside it in the same table), on SQLite and on a
PostgreSQL server, through every stage and shadow outcome (benchmarks.synthlog). At each size, warm:

- the guard's tick (rollout.guard.Guard.tick: the routing state, then what the step watches: the budget over
  the candidate's last `window` calls, the quality analysis, the drift alarm), warm and with no review
  counts kept (the first tick after they are gone groups the whole rollout once), and beside it the budget computation the tick made before issue #33 (every row of the
  rollout into Python);
- `status` evidence (ControlPlane.status: log counts and p99s, review verdicts, the latest drift check, gates);
- the log evidence at a past moment (`as_of`, the replay path);
- the review-queue fill (monitoring.review.queue.fill): of the last FILL_STEP rows logged (the queue
  filled up to them before), and again with nothing new; the first fill of the rows logged since the
  previous size is reported beside them;
- the drift check (the background check: a uniform sample of monitoring.drift_sample rows, Evidently)
  and the drift evidence `status` reads (the latest check); a drift report (HTML and JSON);
- at the largest size, the real `rollout status`, `promote` and `rollback` processes (start-up included)
  while the rollout runs.

Figures are the median of a few repeats in one warm process unless named otherwise.
"""

from __future__ import annotations

import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (1_000, 10_000, 30_000)
RATE_HZ = 10.0  # requests a second the logged rollout received
FILL_STEP = 1_000  # rows logged since the last fill when the fill is timed: 100 s of traffic at RATE_HZ
REPEATS = 15  # this machine is shared: medians of many runs of the millisecond figures
BUDGET = {"max_error_rate": 0.5, "max_p99_ms": 60_000, "window": 200}  # a tick that finds the candidate within budget

NOTES = """
**What each figure reads.** The guard tick reads the routing state, the candidate's last 200 calls from a
partial index (`ix_predictions_candidate_calls`, `rollout.evidence.candidate_window`), the gate evidence,
and the review sample the quality analysis reads: its resolved verdicts (a partial index on resolved items),
the oldest open disagreement (a partial index on open items: one entry) and counts of the rollout's
compared rows per stratum and cell. Those counts are kept in the database as last read (`review_counts`,
`monitoring.review.cell_counts`): rows up to the fill's watermark no longer change and the analysis frontier
moves forward (back only when a verdict is undone), so a reading, in any process, groups only the rows
logged or settled since the last one. `guard_first_tick_ms` is a reading with nothing kept (the kept row deleted first), which groups the
whole rollout once: a database upgraded in the middle of a long rollout pays it once. `status` reads the
counts from the rollout's totals the database keeps by triggers (`traffic_totals`), each p99
as an exact order statistic from the top 1% of a latency index, the review sample, and the latest recorded
drift check (`drift_checks`, written every `monitoring.drift_check_every_s` by the check `rollout serve`
runs; never an Evidently run per call). The replay figure is the log evidence at the window's midpoint
(`as_of`). "old" is the computation the tick made before issue #33 (every row of the rollout loaded into
Python, the oracle of tests/test_evidence_sql.py), timed once per size beside the new one, which returns
the same numbers. The review-queue fill is timed on the last 1,000 rows logged (100 s of traffic at 10
requests a second), the queue filled up to them before, as `rollout serve`'s reviewer service fills it
every few seconds; `review_first_fill_s` is the fill of everything logged since the previous size, for
scale. Drift checks and reports compare a uniform sample of 20,000 rows (`monitoring.drift_sample`, seeded)
of windows larger than that; what still grows with the window is the read of its request ids (one
index-only range) and the fetch of the sampled rows by key. PostgreSQL's tables are vacuumed and analysed
after each load, as autovacuum would; SQLite's are not (roomsight never runs ANALYZE, and the queries name
their index where its planner could pick a wider one). The CLI figures are wall times of real `rollout`
processes, Python start-up and imports included, against the 1,000,000-row log, run after the measurements
above (so the counts are kept, as they are while `rollout serve` runs). promote and rollback record the
change in MLflow (a SQLite registry here) with the rollout report attached (its plots read the rollup), so
they pay for importing MLflow and matplotlib (`cli_startup_floor` has the MLflow import alone, measured
beside them); status imports neither. The write cost of the rollup triggers is in the store section (the
writer with and without them, side by side).

**This run (2026-12-07, 04:39 UTC) against the one before (2026-12-06, 16:45).** Three changes read here. The
shipped plan's limited and gradual steps ask for `step_candidate_served`, so `rollout status` reads the
rollup a second time, at the step's start. A past moment's counts (the replay figure) are the rollup's less
the shadow answers of its last review.settle_s that landed after it: two more index ranges of that much
traffic; this benchmark's logs carry no `shadow_at`, so the correction reads its rows and finds nothing to
take off. Each p99 at a past moment also asks of every row its walk passes whether its shadow answer had
landed, a read of the row where the index alone answered before: SQLite's replay figure at 1,000,000 rows
is 46.6 ms (6.7 ms before), the walk being, as before, over the top 1% of the rollout's latencies.
PostgreSQL's is 29.2 ms (8.9 ms). The machine was slower than at the run before (`rollout --help` 1.29 s, the
MLflow import 2.85 s, against 0.79 s and 1.82 s; `cli_startup_floor`): every figure is higher by about as
much, and the processes miss 3 s by more (promote 8.3 s). Growth from 10,000 to 1,000,000 rows: SQLite's
guard tick 1.1x and status evidence 1.0x, PostgreSQL's 1.1x and 1.7x. The growth ratios, measured within
the run, are the figures to read.
"""


class _AllPhotos:
    """The review queue queues only photos its store holds. A million JPEGs on disk would measure the
    disk, so this store says it holds every photo (a stand-in at the file-system boundary)."""

    def has(self, request_id: str) -> bool:
        return True


def _timed(fn: Callable[[], Any], repeats: int = REPEATS) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def _train(settings) -> tuple[Any, Any]:  # noqa: ANN001
    from training.pipeline import TrainConfig, train

    first = train(settings, TrainConfig(seed=0, epochs=1, synthetic_per_class=20))
    second = train(settings, TrainConfig(seed=1, epochs=1, synthetic_per_class=20))
    return first.registered.ref, second.registered.ref


def _descriptor_pool(settings, version: str) -> list[dict[str, float]]:  # noqa: ANN001
    from monitoring.drift import model_reference

    columns = model_reference(settings, version)["images"]["descriptors"]
    n = len(next(iter(columns.values())))
    return [{k: v[i] for k, v in columns.items() if v[i] is not None} for i in range(n)]


def _plan_file(home: Path) -> Path:
    """The shipped plan without exit conditions (the synthetic log would not pass its review gates) and with
    a wide budget, so that promote and rollback do their whole work and the tick never rolls back; what it
    watches (the quality analysis, the drift alarm) is kept, so the tick judges what it would in production."""
    import yaml

    from rollout.plan import default_plan_path

    plan = yaml.safe_load(default_plan_path().read_text())
    for step in plan["steps"]:
        step.pop("exit", None)
    plan["budget"] = BUDGET
    path = home / "bench-plan.yaml"
    path.write_text(yaml.safe_dump(plan))
    return path


def _cli(args: list[str], env: dict[str, str]) -> float:
    rollout = str(Path(sys.executable).with_name("rollout"))
    t0 = time.perf_counter()
    done = subprocess.run([rollout, *args], env=env, capture_output=True, text=True, timeout=600)
    took = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"rollout {' '.join(args)} failed: {done.stderr[-2000:]}")
    return round(took, 2)


class Store:
    """One database holding the benchmark's log, its routing state and its control plane."""

    def __init__(self, name: str, url: str, settings, plan_path: Path, candidate_uri: str, t0: float) -> None:  # noqa: ANN001
        from roomsight.db import engine_for
        from rollout.control import ControlPlane
        from rollout.plan import load_plan

        self.name, self.url, self.t0 = name, url, t0
        self.settings = settings.model_copy(update={"database_url": url})
        self.engine = engine_for(url)
        self.control = ControlPlane(self.settings, load_plan(plan_path), actor="bench")
        self.rollout_id = self.control.start(candidate_uri, reason="scale benchmark").after.rollout_id
        self.control.promote("limited", reason="scale benchmark")
        self.other_id = "beside-" + self.rollout_id[7:]
        self.logged = 0
        self.first_fill_s = 0.0

    def measure(self) -> dict[str, Any]:
        from monitoring import drift
        from monitoring.drift_checks import evidence as drift_evidence
        from monitoring.drift_checks import run_check
        from monitoring.review.queue import fill
        from rollout.evidence import log_evidence
        from rollout.guard import Guard
        from roomsight.tables import review_counts
        from tests.test_evidence_sql import old_log_evidence

        guard = Guard(self.control.with_actor("guard"))
        window = self.control.plan.budget.window
        fill_s, added = _timed(lambda: fill(self.engine, self.settings, self.rollout_id, photos=_AllPhotos()), repeats=1)
        refill_s, _ = _timed(lambda: fill(self.engine, self.settings, self.rollout_id, photos=_AllPhotos()), repeats=1)
        with self.engine.begin() as conn:  # a reading with no counts kept groups the whole rollout once
            conn.execute(review_counts.delete().where(review_counts.c.rollout_id == self.rollout_id))
        first_tick_s, _ = _timed(guard.tick, repeats=1)
        tick_s, outcome = _timed(guard.tick)
        assert outcome is None, "the tick rolled the candidate back: the budget must hold for these figures"
        t0 = time.perf_counter()
        old = old_log_evidence(self.engine, self.rollout_id, window)
        old_s = time.perf_counter() - t0
        new = log_evidence(self.engine, self.settings, self.rollout_id, last=window)
        assert all(new[k] == v or math.isclose(new[k], v, rel_tol=1e-12) for k, v in old.items()), (old, new)
        check_s, _ = _timed(lambda: run_check(self.settings, self.engine, self.rollout_id), repeats=1)
        status_s, status = _timed(self.control.status, repeats=5)
        assert status.evidence["requests"] == self.logged and status.evidence["drift_alarm"] is not None
        replay_s, _ = _timed(lambda: log_evidence(self.engine, self.settings, self.rollout_id,
                                                  as_of=self.t0 + self.logged / RATE_HZ / 2))
        drift_ev_s, _ = _timed(lambda: drift_evidence(self.engine, self.settings, self.rollout_id))
        with tempfile.TemporaryDirectory(prefix="bench-scale-report-") as out:
            report_s, rep = _timed(lambda: drift.report(self.settings, self.engine, drift.Window(rollout_id=self.rollout_id),
                                                        out_dir=Path(out)), repeats=1)
        return {
            "guard_tick_ms": round(tick_s * 1000, 1), "guard_first_tick_ms": round(first_tick_s * 1000, 1),
            "guard_tick_old_ms": round(old_s * 1000, 1),
            "status_evidence_ms": round(status_s * 1000, 1), "replay_as_of_ms": round(replay_s * 1000, 1),
            "drift_evidence_ms": round(drift_ev_s * 1000, 1), "drift_check_s": round(check_s, 2),
            "drift_report_s": round(report_s, 2), "drift_report_compared": rep.result.compared(),
            "review_fill_ms": round(fill_s * 1000, 1), "review_fill_added": added, "review_refill_ms": round(refill_s * 1000, 1),
            "review_first_fill_s": self.first_fill_s,
        }

    def first_fill(self) -> None:
        """The queue filled over everything logged since the last fill (untimed by the targets: its cost
        is the rows it reads, all of them at the first size)."""
        from monitoring.review.queue import fill

        took, _ = _timed(lambda: fill(self.engine, self.settings, self.rollout_id, photos=_AllPhotos()), repeats=1)
        self.first_fill_s = round(took, 2)

    def cli(self, home: Path, plan_path: Path) -> dict[str, float]:
        env = {**os.environ, "ROOMSIGHT_HOME": str(home), "ROOMSIGHT_DATABASE_URL": self.url, "RAY_USAGE_STATS_ENABLED": "0",
               "MLFLOW_DISABLE_TELEMETRY": "true"}
        base = ["--plan", str(plan_path), "--actor", "bench"]
        return {"status_s": _cli([*base, "status"], env),
                "promote_s": _cli([*base, "promote", "--stage", "gradual", "--percent", "10", "--reason", "bench"], env),
                "rollback_s": _cli([*base, "rollback", "--reason", "bench"], env)}


def _warm_up(stores: list[Store]) -> None:
    """One drift check per store, not measured: the first in a process imports Evidently, which would
    count against whichever size and store came first."""
    from monitoring.drift_checks import run_check

    for s in stores:
        run_check(s.settings, s.engine, s.rollout_id)


def _startup_floor() -> dict[str, float]:
    """What any `rollout` process pays before its work, measured beside the commands: the CLI's own start
    (`rollout --help`), and importing MLflow, which promote and rollback need to record the change."""
    def wall(cmd: list[str]) -> float:
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True, timeout=300)
        return round(time.perf_counter() - t0, 2)

    return {"rollout_help_s": wall([str(Path(sys.executable).with_name("rollout")), "--help"]),
            "import_mlflow_s": wall([sys.executable, "-c", "import mlflow"])}


def _fill(stores: list[Store], size: int, pool: list[dict[str, float]], t0: float) -> float:
    """Top every store's two rollouts up to `size` rows each, in time order from t0; returns seconds."""
    from benchmarks import synthlog

    start = time.perf_counter()
    have = stores[0].logged
    n = size - have
    at = t0 + have / RATE_HZ
    streams = {"main": synthlog.rows(n, "main", at, seed=size, rate_hz=RATE_HZ, descriptor_pool=pool),
               "beside": synthlog.rows(n, "beside", at, seed=size + 1, rate_hz=RATE_HZ, descriptor_pool=pool)}
    while n > 0:
        k = min(20_000, n)
        rows = [r for _ in range(k) for r in (next(streams["main"]), next(streams["beside"]))]
        origin = [r["rollout_id"] for r in rows]
        for s in stores:
            for r, o in zip(rows, origin):
                r["rollout_id"] = s.rollout_id if o == "main" else s.other_id
            synthlog.insert(s.engine, rows)
        n -= k
    for s in stores:
        s.logged = size
        if s.engine.dialect.name == "postgresql":
            # What autovacuum does to a table that grew this much; without it the planner guesses.
            with s.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
    return time.perf_counter() - start


def run(quick: bool = False, out_dir: Path | None = None) -> dict:
    from benchmarks.bench_store import postgres
    from roomsight.config import load_settings

    sizes = QUICK_SIZES if quick else SIZES
    home = Path(tempfile.mkdtemp(prefix="roomsight-bench-scale-"))
    try:
        settings = load_settings(environ={"ROOMSIGHT_HOME": str(home)})
        champion, candidate = _train(settings)
        pool = _descriptor_pool(settings, champion.version)
        plan_path = _plan_file(home)
        out: dict[str, Any] = {"sizes": list(sizes), "rate_hz": RATE_HZ, "drift_sample": settings.monitoring.drift_sample}
        t0 = time.time() - max(sizes) / RATE_HZ  # the largest log ends about now
        with postgres() as pg_url:
            stores = [Store("sqlite", f"sqlite:///{home / 'log.db'}", settings, plan_path, candidate.uri, t0)]
            if pg_url:
                stores.append(Store("postgresql", pg_url, settings, plan_path, candidate.uri, t0))
            else:
                out["postgresql"] = "PostgreSQL binaries not installed"
            for s in stores:
                out[s.name] = {}
            for size in sizes:
                load_s = _fill(stores, size - FILL_STEP, pool, t0)
                for s in stores:
                    s.first_fill()
                load_s += _fill(stores, size, pool, t0)
                print(f"   {size:,} rows per rollout loaded in {load_s:.0f} s", flush=True)
                if size == sizes[0]:
                    _warm_up(stores)
                for s in stores:
                    out[s.name][str(size)] = s.measure()
                    print(f"   {s.name} {size:,}: {out[s.name][str(size)]}", flush=True)
            for s in stores:
                out[s.name]["cli_at_largest"] = s.cli(home, plan_path)
            out["cli_startup_floor"] = _startup_floor()
        return out
    finally:
        shutil.rmtree(home, ignore_errors=True)


def targets(r: dict) -> list:
    from benchmarks.run import Target

    small, large = (str(n) for n in (r["sizes"][0], r["sizes"][-1]))
    rows = f"{int(large):,}"
    out = []
    for store in ("sqlite", "postgresql"):
        f = r.get(store)
        if not isinstance(f, dict):
            continue

        def growth(key: str, f: dict = f) -> tuple[str, bool]:
            ratio = f[large][key] / max(f[small][key], 1e-9)
            return f"{f[small][key]} -> {f[large][key]} ({ratio:.1f}x)", ratio <= 3

        for key, what in (("guard_tick_ms", "guard tick (ms)"), ("status_evidence_ms", "status evidence (ms)"),
                          ("drift_evidence_ms", "drift evidence read by status (ms)"),
                          ("drift_check_s", "background drift check (s)"), ("review_fill_ms", f"review-queue fill of the last {FILL_STEP:,} rows (ms)")):
            shown, met = growth(key)
            out.append(Target(f"{store}: {what} grows <= 3x from {int(small):,} to {rows} rows", shown, met))
        out.append(Target(f"{store}: guard tick at {rows} rows < 50 ms", f"{f[large]['guard_tick_ms']} ms",
                          f[large]["guard_tick_ms"] < 50))
        out.append(Target(f"{store}: status evidence at {rows} rows < 2 s", f"{f[large]['status_evidence_ms']} ms",
                          f[large]["status_evidence_ms"] < 2000))
        out.append(Target(f"{store}: drift report at {rows} rows < 30 s", f"{f[large]['drift_report_s']} s",
                          f[large]["drift_report_s"] < 30))
        cli = f["cli_at_largest"]
        out.append(Target(f"{store}: `rollout status`, `promote`, `rollback` processes at {rows} rows < 3 s each",
                          ", ".join(f"{k.removesuffix('_s')} {v} s" for k, v in cli.items()), max(cli.values()) < 3))
    return out


def main() -> None:
    import json

    print(json.dumps(run(quick="--quick" in sys.argv), indent=1))


if __name__ == "__main__":
    main()

"""A writer killed with SIGKILL after acknowledging records loses none of them: the next writer on the
same journal directory replays them, exactly once."""

import os
import signal
import subprocess
import sys

from sqlalchemy import func, select

from roomsight.db import engine_for
from roomsight.tables import predictions
from serving.predlog import LogWriter

CHILD = r"""
import sys, time, uuid
from pathlib import Path
from roomsight.db import engine_for
from serving.predlog import LogWriter, PredictionRecord, ShadowUpdate
engine = engine_for(sys.argv[1])
# A flush interval far longer than the test: nothing reaches the database before the kill.
w = LogWriter(engine, flush_interval_s=3600, journal_dir=Path(sys.argv[2]))
for i in range(int(sys.argv[3])):
    rid = f"r{i:05d}"
    w.submit(PredictionRecord(request_id=rid, ts=time.time(), rollout_id="x", stage="shadow", listing_id=f"L{i}",
                              region="eu-west", served_by="champion", label="kitchen", score=0.9, latency_ms=1.0))
    if i % 2 == 0:
        w.submit_shadow(ShadowUpdate(rid, "ok", {"candidate_label": "bedroom", "disagreement": True}))
    print(rid, flush=True)   # acknowledged
time.sleep(3600)
"""


def test_sigkill_loses_no_acknowledged_record(tmp_path):
    url = f"sqlite:///{tmp_path / 'log.db'}"
    journal = tmp_path / "journal"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, url, str(journal), "300"], stdout=subprocess.PIPE, text=True)
    acked = []
    for line in proc.stdout:
        acked.append(line.strip())
        if len(acked) == 300:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    engine = engine_for(url)
    with engine.connect() as c:
        assert c.execute(select(func.count()).select_from(predictions)).scalar_one() == 0  # nothing was flushed

    w = LogWriter(engine, journal_dir=journal)  # the restart
    assert w.recovered == 300
    w.close()
    with engine.connect() as c:
        rows = {r.request_id: r for r in c.execute(select(predictions))}
    assert set(rows) == set(acked)
    assert rows["r00004"].candidate_label == "bedroom" and rows["r00005"].candidate_label is None
    assert not list(journal.glob("journal-*.jsonl")), "replayed journals are removed"

    w2 = LogWriter(engine, journal_dir=journal)  # a second restart replays nothing twice
    assert w2.recovered == 0
    w2.close()


def test_live_journal_is_not_replayed_by_another_writer(tmp_path):
    engine = engine_for(f"sqlite:///{tmp_path / 'log.db'}")
    journal = tmp_path / "journal"
    from tests.test_store import record

    live = LogWriter(engine, flush_interval_s=3600, journal_dir=journal)
    live.submit(record(1))
    other = LogWriter(engine, journal_dir=journal)  # e.g. a second ingress replica starting
    assert other.recovered == 0
    other.close()
    live.close()  # the live writer flushes its own on close
    with engine.connect() as c:
        assert c.execute(select(func.count()).select_from(predictions)).scalar_one() == 1


def test_an_orphan_being_replayed_is_not_replayed_by_another_writer_starting(tmp_path):
    """Two writers starting together on one journal directory (two ingress replicas after a crash) both
    replayed the same orphan: the second failed on the rows' keys, or on the file the first had deleted,
    and its replica did not start."""
    from serving.journal import orphans
    from serving.log_sql import recover
    from tests.test_store import record

    engine = engine_for(f"sqlite:///{tmp_path / 'log.db'}")
    journal = tmp_path / "journal"
    crashed = LogWriter(engine, flush_interval_s=3600, journal_dir=journal)
    crashed.submit(record(1))
    crashed._journal.close()  # the process dies: its row is only in the journal
    replaying = orphans(journal)
    path = next(replaying)  # the first writer to start holds the orphan while it replays it
    assert recover(engine, journal) == 0  # the second leaves it alone
    path.unlink()
    assert list(replaying) == []
    assert recover(engine, journal) == 0


def test_a_writer_replays_the_journal_of_one_that_dies_after_it_started(tmp_path):
    """A replica replaced while it still runs (unhealthy, or a redeploy with the database away) holds its
    journal when the new one starts, and dies after: its acknowledged rows waited for the next start,
    however far off, where a running writer now replays such orphans as it finds them."""
    import time

    from tests.test_store import record

    engine = engine_for(f"sqlite:///{tmp_path / 'log.db'}")
    journal = tmp_path / "journal"
    old = LogWriter(engine, flush_interval_s=3600, journal_dir=journal)
    old.submit(record(1))
    new = LogWriter(engine, flush_interval_s=0.02, journal_dir=journal, orphan_scan_s=0.05)
    assert new.recovered == 0  # still held by the old writer
    old._journal.close()  # the old replica dies
    deadline = time.monotonic() + 5
    while new.recovered == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    new.close()
    assert new.recovered == 1
    with engine.connect() as c:
        assert [r.request_id for r in c.execute(select(predictions))] == ["req-1"]
    assert [p.name for p in journal.glob("journal-*.jsonl")] == []

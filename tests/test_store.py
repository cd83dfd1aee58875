"""The prediction log writer and the rollout-state row, on a real SQLite database."""

import json
import threading
import time
from dataclasses import asdict

import pytest
from sqlalchemy import select

from roomsight.db import engine_for
from roomsight.errors import StateConflict
from roomsight.registry import ModelRef
from roomsight.tables import predictions
from serving.predlog import LogWriter, PredictionRecord, ShadowUpdate
from roomsight.rollout_state import RoutingState, Stage, read_state, write_state
from serving.state import StateWatcher


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    """Every store test runs on the embedded SQLite and on a real PostgreSQL server."""
    if request.param == "sqlite":
        return engine_for(f"sqlite:///{tmp_path / 'rs.db'}")
    url = request.getfixturevalue("postgres_url")
    eng = engine_for(url)
    from roomsight.tables import metadata

    with eng.begin() as conn:  # a clean slate per test on the shared server
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
    return eng


def record(i: int, **kw) -> PredictionRecord:
    base = dict(request_id=f"req-{i}", ts=time.time(), rollout_id="r1", stage="shadow", listing_id=f"L{i}",
                region="eu-west", served_by="champion", label="kitchen", score=0.9, latency_ms=12.0,
                champion_version="1", champion_label="kitchen", champion_scores={"kitchen": 0.9}, champion_ms=5.0,
                shadow="candidate")
    base.update(kw)
    return PredictionRecord(**base)


def rows(engine):
    with engine.connect() as c:
        return {r.request_id: r for r in c.execute(select(predictions))}


def test_writes_in_batches_and_applies_late_shadow_results(engine):
    w = LogWriter(engine, flush_interval_s=0.05, batch_size=7)
    for i in range(50):
        w.submit(record(i))
    # half the shadow results arrive before the flush (folded in), half after (UPDATE)
    for i in range(25):
        w.submit_shadow(ShadowUpdate(f"req-{i}", "ok", {"candidate_version": "2", "candidate_label": "bedroom",
                                                         "candidate_ms": 7.0, "disagreement": True}))
    assert w.flush()
    for i in range(25, 50):
        w.submit_shadow(ShadowUpdate(f"req-{i}", "ok", {"candidate_version": "2", "candidate_label": "kitchen",
                                                         "disagreement": False}))
    w.submit_shadow(ShadowUpdate("req-0", "ok", {"candidate_ms": 8.0}))  # a later partial update keeps other columns
    assert w.flush()
    w.close()
    got = rows(engine)
    assert len(got) == 50 and w.written == 50
    assert got["req-3"].candidate_label == "bedroom" and got["req-3"].disagreement is True
    assert got["req-40"].candidate_label == "kitchen" and got["req-40"].disagreement is False
    assert got["req-40"].champion_label == "kitchen", "an UPDATE must not clear the champion's columns"
    assert got["req-0"].candidate_label == "bedroom" and got["req-0"].candidate_ms == 8.0
    assert got["req-7"].champion_scores == {"kitchen": 0.9}


def test_rows_and_shadow_answers_written_late_are_marked_late(engine, tmp_path):
    """A row written behind the review fill's watermark was counted by the review sample and never drawn
    (replayed from a journal, held through an outage): the writer marks what it writes more than
    late_after_s after the row's time, the shadow answer included, and the sample leaves those out."""
    now = time.time()
    w = LogWriter(engine, flush_interval_s=0.05, late_after_s=30)
    w.submit(record(1, ts=now))
    w.submit(record(2, ts=now - 100))  # e.g. held through an outage
    w.submit(record(3, ts=now - 100, shadow="candidate"))
    assert w.flush()
    w.submit_shadow(ShadowUpdate("req-1", "ok", {"candidate_label": "bedroom", "disagreement": True}))
    assert w.flush()
    assert {k: r.late for k, r in rows(engine).items()} == {"req-1": None, "req-2": True, "req-3": True}
    w.submit_shadow(ShadowUpdate("req-3", "ok", {"candidate_label": "kitchen", "disagreement": False}))
    assert w.flush()
    w.close()
    assert rows(engine)["req-3"].late is True and rows(engine)["req-1"].late is None

    journal = tmp_path / "journal"
    crashed = LogWriter(engine, flush_interval_s=3600, journal_dir=journal)
    crashed.submit(record(4, ts=now - 100))
    crashed.submit(record(5, ts=time.time()))
    crashed._journal.close()  # the process dies: its rows are only in the journal
    LogWriter(engine, journal_dir=journal, late_after_s=30).close()  # the restart replays them
    assert rows(engine)["req-4"].late is True and rows(engine)["req-5"].late is None


def test_a_replayed_journal_does_not_mark_late_the_rows_and_answers_written_in_time(engine, tmp_path):
    """A journal segment outlives the writes it holds (it is deleted only once large): after a crash, its
    replay applies again shadow answers the database had in time. The rows they touch were read by the
    review fill; marked late now, they would leave the counts while their sampled items stay."""
    now = time.time()
    journal = tmp_path / "journal"
    # The row and its shadow answer are written in time (100 s old, within this writer's 200 s) ...
    crashed = LogWriter(engine, flush_interval_s=0.05, journal_dir=journal, late_after_s=200)
    crashed.submit(record(1, ts=now - 100))
    assert crashed.flush()
    crashed.submit_shadow(ShadowUpdate("req-1", "ok", {"candidate_label": "bedroom", "disagreement": True}))
    crashed.submit(record(2, ts=now - 100))  # ... this one's answer arrives after the crash's replay
    assert crashed.flush()
    crashed._stop.set()
    crashed._wake.set()
    crashed._thread.join()
    # The process dies with the last answer journaled (acknowledged) but not written, its journal left behind.
    crashed._journal.append("update", asdict(ShadowUpdate("req-2", "ok", {"candidate_label": "kitchen",
                                                                          "disagreement": False})))
    crashed._journal.close()
    assert rows(engine)["req-1"].late is None and rows(engine)["req-2"].shadow_status is None
    # ... and replayed when a 30 s bound has long passed: only what the replay writes is late.
    restarted = LogWriter(engine, journal_dir=journal, late_after_s=30)
    restarted.close()
    got = rows(engine)
    assert got["req-1"].candidate_label == "bedroom" and got["req-1"].late is None
    assert got["req-2"].candidate_label == "kitchen" and got["req-2"].late is True


def test_buffer_is_bounded_and_overflow_counted(engine):
    w = LogWriter(engine, flush_interval_s=60, buffer_max=5)
    accepted = [w.submit(record(i)) for i in range(8)]
    assert accepted == [True] * 5 + [False] * 3 and w.overflow == 3
    w.close()  # close drains what was accepted
    assert len(rows(engine)) == 5


def test_shadow_update_may_not_touch_other_columns(engine):
    w = LogWriter(engine)
    with pytest.raises(ValueError, match="may not set"):
        w.submit_shadow(ShadowUpdate("x", "ok", {"label": "hacked"}))
    w.close()


def test_compare_and_swap_one_winner(engine):
    s0 = RoutingState(champion=ModelRef("roomtype", "1"))
    v1 = write_state(engine, s0, None)
    with pytest.raises(StateConflict):
        write_state(engine, s0, None)
    nxt = s0.evolve(stage=Stage.SHADOW, candidate=ModelRef("roomtype", "2"), rollout_id="r")
    wins, losses = [], []
    barrier = threading.Barrier(4)

    def attempt():
        barrier.wait()
        try:
            wins.append(write_state(engine, nxt, v1.generation))
        except StateConflict:
            losses.append(1)

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(losses) == 3
    assert read_state(engine).generation == 2


def test_watcher_prepares_then_switches(engine):
    s0 = RoutingState(champion=ModelRef("roomtype", "1"))
    v = write_state(engine, s0, None)
    prepared = []
    w = StateWatcher(engine, 0.05, prepare=prepared.append)
    assert w.current.state.champion.version == "1"
    write_state(engine, s0.evolve(champion=ModelRef("roomtype", "5")), v.generation)
    deadline = time.time() + 5
    while w.current.generation != 2 and time.time() < deadline:
        time.sleep(0.02)
    w.stop()
    assert w.current.state.champion.version == "5"
    # the new state was prepared (models warmed) before it was exposed
    assert [s.champion.version for s in prepared] == ["1", "5"]


def test_watcher_switches_even_if_prepare_fails(engine):
    s0 = RoutingState(champion=ModelRef("roomtype", "1"))
    v = write_state(engine, s0, None)

    def broken(_state):
        raise RuntimeError("model load failed")

    w = StateWatcher(engine, 0.05, prepare=broken)
    write_state(engine, s0.evolve(champion=ModelRef("roomtype", "6")), v.generation)
    deadline = time.time() + 5
    while w.current.generation != 2 and time.time() < deadline:
        time.sleep(0.02)
    w.stop()
    assert w.current.state.champion.version == "6" and w.prepare_errors >= 1


def test_watcher_keeps_the_last_state_and_counts_reads_that_fail(engine, monkeypatch):
    import serving.state

    write_state(engine, RoutingState(champion=ModelRef("roomtype", "1")), None)
    w = StateWatcher(engine, 0.02)

    def down(_engine):
        raise OSError("database out of reach")

    monkeypatch.setattr(serving.state, "read_state", down)
    deadline = time.time() + 5
    while w.read_errors < 3 and time.time() < deadline:
        time.sleep(0.02)
    w.stop()
    assert w.read_errors >= 3 and w.current.state.champion.version == "1"


def test_watcher_holds_a_state_whose_champion_cannot_load(engine):
    from roomsight.errors import NotReady

    s0 = RoutingState(champion=ModelRef("roomtype", "1"))
    v = write_state(engine, s0, None)
    registry_up = threading.Event()

    def prepare(state):
        if state.champion.version == "7" and not registry_up.is_set():
            raise NotReady("champion roomtype/7 cannot be loaded")

    w = StateWatcher(engine, 0.05, prepare=prepare)
    write_state(engine, s0.evolve(champion=ModelRef("roomtype", "7")), v.generation)
    deadline = time.time() + 5
    while w.held < 3 and time.time() < deadline:
        time.sleep(0.02)
    assert w.held >= 3 and w.current.state.champion.version == "1"  # the old champion keeps answering
    registry_up.set()
    deadline = time.time() + 5
    while w.current.generation != 2 and time.time() < deadline:
        time.sleep(0.02)
    w.stop()
    assert w.current.state.champion.version == "7"


def test_a_record_the_database_refuses_is_set_aside_and_the_log_goes_on(pg_database, tmp_path):
    """PostgreSQL refuses a value its column cannot hold (here a label longer than 64 characters; SQLite
    stores it). Retried with its batch, such a record failed at every tick and stalled the log for every
    request after it; replayed from a journal, it stopped the ingress from starting."""
    engine = engine_for(pg_database)
    journal = tmp_path / "journal"
    w = LogWriter(engine, flush_interval_s=0.05, journal_dir=journal)
    for i in range(3):
        w.submit(record(i, label="kitchen" if i != 1 else "k" * 100))
    assert w.flush()
    w.submit_shadow(ShadowUpdate("req-0", "ok", {"candidate_label": "x" * 100, "disagreement": True}))
    w.submit(record(3))  # the log goes on
    assert w.flush()
    assert set(rows(engine)) == {"req-0", "req-2", "req-3"} and w.rejected == 2
    kept = [json.loads(line) for line in (journal / "rejected.jsonl").read_text().splitlines()]
    assert [(k["kind"], k["record"]["request_id"]) for k in kept] == [("row", "req-1"), ("update", "req-0")]
    assert "too long" in kept[0]["reason"]
    # A journal holding such a record no longer stops the next writer from starting.
    crashed = LogWriter(engine, flush_interval_s=3600, journal_dir=journal)
    crashed.submit(record(4, label="k" * 100))
    crashed.submit(record(5))
    crashed._journal.close()
    restarted = LogWriter(engine, journal_dir=journal)
    restarted.close()
    assert {"req-5"} <= set(rows(engine)) and "req-4" not in rows(engine) and restarted.rejected == 1
    assert sum(1 for _ in (journal / "rejected.jsonl").read_text().splitlines()) == 3
    w.close()

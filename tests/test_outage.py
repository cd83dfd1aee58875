"""Outages of the stores the serving path depends on, with the real servers stopped and started again.

The prediction log on a real PostgreSQL server: while the server is down, `submit` neither blocks nor
raises, the bounded buffer keeps what fits and counts what does not; once the server is back, everything
kept reaches the table exactly once.
"""

from __future__ import annotations

import time
from dataclasses import asdict

import pytest
from sqlalchemy import func, insert, select

from roomsight.db import engine_for
from roomsight.tables import predictions
from serving.predlog import LogWriter, PredictionRecord, ShadowUpdate

BATCH = 8
BUFFER = 30


@pytest.fixture
def pg(postgres_server):
    """The session's PostgreSQL server with an empty predictions table; running again after the test
    whatever happened in it, since later tests share the server."""
    with engine_for(postgres_server.url).begin() as conn:
        conn.execute(predictions.delete())
    yield postgres_server
    postgres_server.start()


def record(i: int) -> PredictionRecord:
    return PredictionRecord(request_id=f"out-{i}", ts=time.time(), rollout_id="r1", stage="shadow", listing_id=f"L{i}",
                            region="eu-west", served_by="champion", label="kitchen", score=0.9, latency_ms=12.0,
                            champion_version="1", champion_label="kitchen", shadow="candidate")


def shadow_result(i: int) -> ShadowUpdate:
    return ShadowUpdate(f"out-{i}", "ok", {"candidate_version": "2", "candidate_label": "bedroom", "disagreement": True})


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
    return predicate()


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_prediction_log_rides_out_a_postgres_outage(pg, mode: str) -> None:
    engine = engine_for(pg.url)
    w = LogWriter(engine, flush_interval_s=0.05, batch_size=BATCH, buffer_max=BUFFER)
    try:
        for i in range(5):
            assert w.submit(record(i))
        assert w.flush(), "the server is up: the first records are written"

        pg.stop(mode)
        slowest = 0.0
        rows_ok: dict[int, bool] = {}
        updates_ok: dict[int, bool] = {}

        def timed(call, arg) -> bool:
            nonlocal slowest
            t0 = time.perf_counter()
            ok = call(arg)
            slowest = max(slowest, time.perf_counter() - t0)
            return ok

        for i in range(5, 30):  # 25 rows: they fit
            rows_ok[i] = timed(w.submit, record(i))
        # Let the writer try (and fail) against the stopped server with all of them buffered, twice so that
        # one attempt surely began after the last submit.
        errors = w.write_errors
        assert wait_for(lambda: w.write_errors >= errors + 2), "the writer retries while the server is down"
        for i in range(5, 30):  # their shadow results arrive during the outage
            updates_ok[i] = timed(w.submit_shadow, shadow_result(i))
        for i in range(30, 45):  # more traffic: the buffer is full by now
            rows_ok[i] = timed(w.submit, record(i))
        assert w.flush(timeout=0.3) is False, "nothing can be written while the server is down"

        refused = [i for i, ok in rows_ok.items() if not ok] + [i for i, ok in updates_ok.items() if not ok]
        assert w.overflow == len(refused), "every refused record is counted, and nothing else"
        assert all(rows_ok[i] for i in range(5, 30)) and not any(rows_ok[i] for i in range(30, 45))
        # A shadow result for a row still waiting in the buffer folds into it and needs no room; only rows a
        # failed attempt already took out (one batch) need an UPDATE, which does.
        assert sum(updates_ok.values()) >= 25 - BATCH
        assert w.pending <= BUFFER
        # Generous for a loaded CI machine; a submit that touched the database would raise here instead.
        assert slowest < 0.5, f"submit must not wait for the database ({slowest * 1000:.0f} ms)"

        pg.start()
        assert w.flush(timeout=30), "everything buffered is written once the server is back"
    finally:
        w.close()

    with engine.connect() as conn:
        got = {r.request_id: r for r in conn.execute(select(predictions))}
        total = conn.execute(select(func.count()).select_from(predictions)).scalar_one()
    kept = [i for i in range(5)] + [i for i, ok in rows_ok.items() if ok]
    assert sorted(got) == sorted(f"out-{i}" for i in kept) and total == len(kept) == w.written == 30
    for i, ok in updates_ok.items():
        row = got[f"out-{i}"]
        if ok:
            assert (row.shadow_status, row.candidate_label, row.disagreement) == ("ok", "bedroom", True), i
        else:
            assert row.shadow_status is None and row.candidate_label is None, i
    assert got["out-3"].shadow_status is None  # written before the outage, never updated


def test_a_batch_already_in_the_table_does_not_stall_the_log(pg) -> None:
    """A server stopping mid-COMMIT can apply a batch whose acknowledgement never arrives; the writer
    retries it. Here the table already holds two of the rows, as that leaves it: the retry must write the
    rest instead of failing on the key forever."""
    engine = engine_for(pg.url)
    with engine.begin() as conn:
        conn.execute(insert(predictions), [asdict(record(i)) for i in (1, 4)])
    w = LogWriter(engine, flush_interval_s=0.05, batch_size=BATCH)
    try:
        for i in range(10):
            assert w.submit(record(i))
        assert w.flush(timeout=10), "the log must not stall on rows that are already written"
        assert w.submit(record(10)) and w.flush(timeout=10)
    finally:
        w.close()
    with engine.connect() as conn:
        ids = [r[0] for r in conn.execute(select(predictions.c.request_id))]
    assert sorted(ids) == sorted(f"out-{i}" for i in range(11)) and w.written == 9

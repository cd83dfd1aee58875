"""A past moment counts a shadow answer only once it had landed: a row is logged when the answer is sent
and the shadow model's answer is written on it later, so a replay that counted it from the row's `ts` knew,
at that moment, more than the guard could have. Real SQLite log through the real log writer; no Ray."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict

import numpy as np
import pytest

from roomsight.config import Settings
from roomsight.db import engine_for
from rollout.control import ControlPlane
from rollout.evidence import candidate_window, log_evidence
from rollout.guard import Guard
from rollout.plan import Gate
from rollout.replay import replay
from serving.log_sql import recover
from serving.predlog import LogWriter, PredictionRecord, ShadowUpdate
from tests.plans import open_plan

# The replay's corrections reach back review.settle_s (rollout.evidence): the default's.
SETTINGS = Settings()
T0 = 1_700_000_017.25
RID = "r-known"


def shadowed(ts: float, rollout_id: str = RID, **columns: object) -> PredictionRecord:
    """A request the champion answered, with the candidate asked in shadow (its answer still to come)."""
    return PredictionRecord(request_id=str(uuid.uuid4()), ts=ts, rollout_id=rollout_id, stage="shadow",
                            listing_id="L", region="eu-west", served_by="champion", label="kitchen", score=0.9,
                            latency_ms=10, champion_version="1", champion_label="kitchen", champion_ms=4.0,
                            shadow="candidate", **columns)


def answered(disagree: bool, ms: float) -> dict[str, object]:
    return {"candidate_version": "2", "candidate_label": "bathroom" if disagree else "kitchen", "candidate_ms": ms,
            "disagreement": disagree}


def logged(engine, rows: list[PredictionRecord], answers: list[ShadowUpdate]) -> None:  # noqa: ANN001
    """The rows written through the real log writer, then their shadow answers landed on them."""
    w = LogWriter(engine, flush_interval_s=0.05)
    for r in rows:
        w.submit(r)
    assert w.flush()
    for u in answers:
        w.submit_shadow(u)
    assert w.flush()
    w.close()


def test_a_moment_counts_a_shadow_answer_only_once_it_landed(tmp_path):
    engine = engine_for(f"sqlite:///{tmp_path / 'log.db'}")
    early, late, failed = shadowed(T0), shadowed(T0 + 10), shadowed(T0 + 15)
    # Logged before the column existed: its shadow answer counts from its ts.
    legacy = shadowed(T0 + 2, shadow_status="ok", **answered(False, 6.0))
    logged(engine, [early, late, failed, legacy], [
        ShadowUpdate(early.request_id, "ok", answered(False, 5.0), T0 + 1),
        ShadowUpdate(late.request_id, "ok", answered(True, 50.0), T0 + 40),
        ShadowUpdate(failed.request_id, "timeout", {"candidate_error": "shadow call timed out"}, T0 + 45)])

    then = log_evidence(engine, SETTINGS, RID, as_of=T0 + 20, since=T0 + 5)
    assert then["requests"] == 4
    assert (then["compared"], then["agreement"]) == (2, 1.0)  # the late disagreement was still to come
    assert (then["candidate_requests"], then["candidate_errors"]) == (2, 0)
    assert then["candidate_p99_ms"] == pytest.approx(5.99)
    assert (then["step_compared"], then["step_candidate_requests"]) == (0, 0)
    w20 = candidate_window(engine, RID, 10, as_of=T0 + 20)
    assert (w20.calls, w20.errors) == (2, 0)
    assert log_evidence(engine, SETTINGS, RID, last=10, as_of=T0 + 20)["candidate_p99_ms"] == w20.p99_ms

    after = log_evidence(engine, SETTINGS, RID, as_of=T0 + 50, since=T0 + 5)
    assert (after["compared"], after["agreement"]) == (3, 1 - 1 / 3)
    assert (after["candidate_requests"], after["candidate_errors"]) == (4, 1)
    assert (after["step_compared"], after["step_candidate_requests"]) == (1, 2)
    w50 = candidate_window(engine, RID, 10, as_of=T0 + 50)
    assert (w50.calls, w50.errors) == (4, 1)
    now = log_evidence(engine, None, RID, since=T0 + 5)  # the guard's reading: every answer landed
    assert {k: now[k] for k in after} == after


def test_a_shadow_answer_folded_into_its_row_before_it_was_written_keeps_when_it_landed(tmp_path):
    engine = engine_for(f"sqlite:///{tmp_path / 'log.db'}")
    w = LogWriter(engine, flush_interval_s=60)  # the row still waits when its shadow answer comes
    row = shadowed(T0)
    w.submit(row)
    w.submit_shadow(ShadowUpdate(row.request_id, "ok", answered(True, 7.0), T0 + 30))
    assert w.flush()
    w.close()
    assert log_evidence(engine, SETTINGS, RID, as_of=T0 + 10)["compared"] == 0
    assert log_evidence(engine, SETTINGS, RID, as_of=T0 + 30)["agreement"] == 0.0


def test_the_review_counts_at_a_moment_hold_only_the_rows_compared_by_then(tmp_path):
    from monitoring.review.cell_counts import CellCounts

    engine = engine_for(f"sqlite:///{tmp_path / 'log.db'}")
    early, late = shadowed(T0, photo_id="p1"), shadowed(T0 + 10, photo_id="p2")
    logged(engine, [early, late], [ShadowUpdate(early.request_id, "ok", answered(False, 5.0), T0 + 1),
                                   ShadowUpdate(late.request_id, "ok", answered(True, 50.0), T0 + 40)])
    with engine.connect() as conn:
        cells = CellCounts(conn, RID, 0.5)
        then, after = cells.as_of(T0 + 20, T0 + 20), cells.as_of(T0 + 50, T0 + 50)
    assert [(r.stratum, r.n, r.settled) for r in then] == [("spot_check", 1, 1)]
    assert sorted((r.stratum, r.n, r.settled) for r in after) == [("disagreement", 1, 1), ("spot_check", 1, 1)]


def test_replay_acts_on_a_shadow_answer_no_earlier_than_it_landed(settings):
    """The guard rolled back on disagreements it read once their answers had landed: the replay, which
    judged the rows from their ts, rolled back before the guard could have known of them."""
    steps = list(open_plan().steps)
    steps[0] = steps[0].model_copy(update={"watch": (Gate(metric="agreement", min=0.9, on_fail="rollback"),)})
    plan = open_plan(steps=tuple(steps))
    cp = ControlPlane(settings, plan, actor="olga")
    rid = cp.start("models:/roomtype/2").after.rollout_id
    begun = time.time()
    rows = [shadowed(begun + 0.01 + i * 1e-4, rid) for i in range(20)]
    landed = begun + 0.15
    logged(engine_for(settings.db_url), rows,
           [ShadowUpdate(r.request_id, "ok", answered(True, 8.0), landed) for r in rows])
    time.sleep(max(0.0, landed + 0.15 - time.time()))
    assert Guard(cp.with_actor("guard")).tick().action == "auto-rollback"

    again = replay(cp, rid)
    assert [a for _, a, _ in again.decisions] == ["auto-rollback"] and again.matches
    assert again.decisions[0][0] >= landed, "\n".join(f"{l.time - begun:.4f} {l.text}" for l in again.lines)


def test_a_journal_from_before_shadow_at_counts_its_shadow_answer_from_its_request(tmp_path):
    """A journal written before updates carried shadow_at, read back by an upgraded process: its update was
    stamped with the time it was read back, hours after its request, so the counts (the rollup, corrected
    only over the last review.settle_s) counted the answer while `_p99` and the budget window (filtered by
    when it landed) left it out: a p99 read at the wrong rank, and a window of 1 call where the counts
    said 2."""
    engine = engine_for(f"sqlite:///{tmp_path / 'log.db'}")
    recent = shadowed(T0 + 100, rollout_id=RID)
    logged(engine, [recent], [ShadowUpdate(recent.request_id, "ok", answered(False, 5.0), T0 + 101)])
    # A writer of the previous version died holding this journal: a row, then its shadow update (no shadow_at).
    legacy = shadowed(T0, rollout_id=RID)
    journal = tmp_path / "journal"
    journal.mkdir()
    row = asdict(legacy)
    row.pop("shadow_at")
    upd = asdict(ShadowUpdate(legacy.request_id, "ok", answered(False, 100.0)))
    upd.pop("shadow_at")
    (journal / "journal-1-old.jsonl").write_text(
        json.dumps({"k": "row", "p": row}) + "\n" + json.dumps({"k": "update", "p": upd}) + "\n")
    assert recover(engine, journal) == 1

    as_of = T0 + 1000  # both answers had long landed, as every reading then saw them (settle_s back: 0 rows)
    ev = log_evidence(engine, SETTINGS, RID, as_of=as_of)
    win = candidate_window(engine, RID, 200, as_of=as_of)
    # The counts (rollup, uncorrected: the legacy row is older than settle_s) say 2 candidate calls ...
    assert ev["candidate_requests"] == 2
    # ... the p99 walks rows filtered by shadow_known (only the recent one) with rank base n = 2 from the
    # counts: numpy's p99 of the two calls counted is 99.05; evidence reports 5.0.
    assert ev["candidate_p99_ms"] == float(np.percentile([5.0, 100.0], 99)), ev["candidate_p99_ms"]
    # ... and the window (shadow_known) says 1 call where the counts say 2, at the same moment.
    assert win.calls == ev["candidate_requests"], (win.calls, ev["candidate_requests"])


@pytest.fixture(params=["sqlite", "postgresql"])
def log_engine(request, tmp_path):  # noqa: ANN001, ANN201
    url = f"sqlite:///{tmp_path / 'log.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_database")
    return engine_for(url)


def test_a_photo_sent_again_counts_at_a_moment_when_only_its_second_send_was_compared(log_engine):
    """A photo sent twice, whose first send's shadow answer landed after the moment and second send's
    before it: the review counts at that moment held neither (the first was not compared yet, and the
    second was not the photo's first, by what is compared now), where the reading then counted the
    second."""
    from monitoring.review.cell_counts import CellCounts
    from roomsight import rollup

    first, again = shadowed(T0, photo_id="p1"), shadowed(T0 + 5, photo_id="p1")
    # `first`'s answer lands after `again`'s, within settle_s.
    logged(log_engine, [first, again], [ShadowUpdate(again.request_id, "ok", answered(False, 6.0), T0 + 6),
                                        ShadowUpdate(first.request_id, "ok", answered(False, 5.0), T0 + 30)])
    with log_engine.connect() as conn:
        # At T0 + 20 `again` was the photo's only compared row: the reading then counted it once; later, `first`.
        assert sum(r.n for r in CellCounts(conn, RID, 0.5).as_of(T0 + 20, T0 + 20)) == 1
        assert sum(r.n for r in CellCounts(conn, RID, 0.5).as_of(T0 + 40, T0 + 40)) == 1
        c = rollup.known_counts(conn, RID, T0 + 20, T0 + 20, SETTINGS.review.settle_s)
        assert (c.requests, c.compared, c.candidate_calls) == (2, 1, 1), c

"""review: defects found in e9798ac..main, each demonstrated on a real SQLite log. No Ray."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict

import numpy as np

from roomsight.config import Settings
from roomsight.db import engine_for
from rollout.evidence import candidate_window, log_evidence
from serving.log_sql import recover
from serving.predlog import LogWriter, PredictionRecord, ShadowUpdate

SETTINGS = Settings()
T0 = 1_700_000_017.25
RID = "r-review"


def shadowed(ts: float, **columns: object) -> PredictionRecord:
    return PredictionRecord(request_id=str(uuid.uuid4()), ts=ts, rollout_id=RID, stage="shadow",
                            listing_id="L", region="eu-west", served_by="champion", label="kitchen", score=0.9,
                            latency_ms=10, champion_version="1", champion_label="kitchen", champion_ms=4.0,
                            shadow="candidate", **columns)


def answered(ms: float) -> dict[str, object]:
    return {"candidate_version": "2", "candidate_label": "kitchen", "candidate_ms": ms, "disagreement": False}


def test_a_journal_written_before_shadow_at_replayed_later_breaks_the_as_of_counts(tmp_path):
    """serving/log_records.py: a pre-upgrade journal's update gets shadow_at = when it is read back (the
    recovery, possibly hours after ts), far beyond review.settle_s after its request. README and
    roomsight.tables.shadow_known promise such legacy requests count "from their own time"; and
    rollup.known_counts (which only corrects the last settle_s) still counts the answer while `_p99` and
    `_last_calls` (filtered by shadow_known) leave it out: the rank base n disagrees with the rows read."""
    engine = engine_for(f"sqlite:///{tmp_path / 'log.db'}")
    w = LogWriter(engine, flush_interval_s=0.05)
    recent = shadowed(T0 + 100)
    w.submit(recent)
    assert w.flush()
    w.submit_shadow(ShadowUpdate(recent.request_id, "ok", answered(5.0), T0 + 101))
    assert w.flush()
    w.close()
    # A writer of the previous version died holding this journal: a row, then its shadow update (no shadow_at).
    legacy = shadowed(T0)
    journal = tmp_path / "journal"
    journal.mkdir()
    row = asdict(legacy)
    row.pop("shadow_at")
    upd = asdict(ShadowUpdate(legacy.request_id, "ok", answered(100.0)))
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


def test_a_photo_sent_again_is_counted_at_a_moment_when_its_first_send_was_not_yet_compared(tmp_path):
    """monitoring/review/cell_counts.py as_of: the `known` filter applies to the row counted, but
    first_of_photo_sql's `earlier` subquery still sees every row compared *now*. A photo sent twice, whose
    first send's shadow answer landed after the moment and second send's before it, is counted by no row
    at that moment, though the reading then counted the second send (the first was not compared yet)."""
    from monitoring.review.cell_counts import CellCounts

    engine = engine_for(f"sqlite:///{tmp_path / 'log.db'}")
    w = LogWriter(engine, flush_interval_s=0.05)
    first, again = shadowed(T0, photo_id="p1"), shadowed(T0 + 5, photo_id="p1")
    for r in (first, again):
        w.submit(r)
    assert w.flush()
    w.submit_shadow(ShadowUpdate(again.request_id, "ok", answered(6.0), T0 + 6))
    w.submit_shadow(ShadowUpdate(first.request_id, "ok", answered(5.0), T0 + 30))  # within settle_s
    assert w.flush()
    w.close()
    with engine.connect() as conn:
        then = CellCounts(conn, RID, 0.5).as_of(T0 + 20, T0 + 20)
    # At T0 + 20 `again` was the photo's only compared row: the reading then counted it once.
    assert sum(r.n for r in then) == 1, then


def test_a_past_rollout_waiting_in_the_outbox_is_not_reported_while_mlflow_is_down(tmp_path) -> None:
    """rollout/report/build.py report_input / resolve_rollout: the outbox branch is reached only after
    control.history() (an MLflow search) returned. Changes wait in the outbox because MLflow is down, and
    while it is down history raises, so `rollout report --rollout ID` still fails: the README's "a past
    rollout none of whose changes MLflow has yet is reported from the routing database's copies" holds
    only once MLflow is back (and before the catch-up empties the outbox)."""
    from types import SimpleNamespace

    import pytest

    from roomsight.registry import ModelRef
    from roomsight.rollout_state import RoutingState, Stage
    from roomsight.tables import rollout_outbox
    from rollout import outbox
    from rollout.control import Status
    from rollout.plan import load_plan
    from rollout.records import Event
    from rollout.report.build import report_input

    engine = engine_for(f"sqlite:///{tmp_path / 'waiting.db'}")
    stable = RoutingState(champion=ModelRef("roomtype", "1"))
    shadow = RoutingState(champion=stable.champion, stage=Stage.SHADOW, candidate=ModelRef("roomtype", "2"),
                          rollout_id="r-waiting", step=0)
    for gen, (action, before, after) in enumerate([("start", stable, shadow), ("rollback", shadow, stable)], 1):
        _, row = outbox.new_row(Event(action, before, after, "guard", "", False, [], {}, gen, "stable", "x"), 1.7e9 + gen)
        with engine.begin() as conn:
            conn.execute(rollout_outbox.insert().values(**row))

    def mlflow_down(*_a, **_k):
        raise ConnectionError("MLflow unreachable")

    control = SimpleNamespace(
        plan=load_plan(), engine=engine, history=mlflow_down,
        current=lambda: SimpleNamespace(state=stable, generation=2),
        status=lambda: Status(stable, 2, 0.0, {}, None, None, [], [], unrecorded=2),
        unrecorded_events=lambda rid=None: outbox.without_run(engine, rid))
    try:
        inp = report_input(control, "r-waiting")  # type: ignore[arg-type]
    except ConnectionError:
        pytest.fail("the outbox copies were never read: history() raised first (MLflow down)")
    assert inp.unrecorded_shown


def test_review_settle_s_does_not_bound_when_a_shadow_answer_lands(tmp_path):
    """roomsight.rollup.known_counts (and roomsight.tables.shadow_known's docstring) rely on "a shadow
    answer lands at most review.settle_s after its request", which the config validator is said to ensure
    (settle_s > 2 (shadow_max_wait_s + shadow_timeout_s)). But serving.shadow_dispatch._run awaits a
    batch's groups (role, model, version, priority) one after the other, each under its own
    shadow_timeout_s: a batch straddling shadow -> limited holds three groups (candidate at idle priority,
    candidate at normal priority, champion), and its last outcome lands max_wait + 3 timeouts after the
    request. Scaled down (timeout 0.1 s): the settings validate, and the last answer lands past settle_s."""
    import asyncio
    import time as _time
    from unittest.mock import MagicMock

    from roomsight.registry import ModelRef
    from roomsight.rollout_state import RoutingState, Stage
    from serving.models import ModelAnswer  # noqa: F401  (the dispatcher's answer type)
    from serving.routing import CANDIDATE, CHAMPION, call_priority
    from serving.shadow_dispatch import ShadowDispatcher, ShadowJob

    settings = Settings(serve={"shadow_max_wait_s": 0.01, "shadow_timeout_s": 0.1, "shadow_batch_size": 8,
                               "shadow_batch_wait_s": 0.005},
                        review={"settle_s": 0.23})  # > 2 * (0.01 + 0.1): accepted
    champ, cand = ModelRef("m", "1"), ModelRef("m", "2")
    shadow = RoutingState(champion=champ, stage=Stage.SHADOW, candidate=cand, rollout_id="r", step=0)
    limited = RoutingState(champion=champ, stage=Stage.LIMITED, candidate=cand, rollout_id="r", step=1,
                           regions=("eu-west",), region_percent=100.0)

    class HangingCalls:
        def priority(self, state, role):  # noqa: ANN001, ANN201
            return call_priority(state, role)

        async def predict_many(self, role, ref, priority, images, timeout):  # noqa: ANN001, ANN201
            await asyncio.wait_for(asyncio.sleep(10), timeout)  # the model is overloaded: every call times out

    class Log:
        def __init__(self) -> None:
            self.updates = []

        def submit_shadow(self, upd):  # noqa: ANN001, ANN201
            self.updates.append(upd)

    log = Log()
    d = ShadowDispatcher(settings.serve, HangingCalls(), log, MagicMock())  # type: ignore[arg-type]
    primary = MagicMock()

    async def run() -> float:
        ts = _time.time()  # the three requests' rows are logged now
        for i, (role, state) in enumerate([(CANDIDATE, shadow), (CANDIDATE, limited), (CHAMPION, limited)]):
            assert d.offer(ShadowJob(role, state, b"", f"req-{i}", primary, "eu-west"))
        d.pump()
        while len(log.updates) < 3:
            await asyncio.sleep(0.01)
        return ts

    ts = asyncio.run(run())
    assert [u.shadow_status for u in log.updates] == ["timeout"] * 3
    late = max(u.shadow_at for u in log.updates) - ts
    assert late <= settings.review.settle_s, f"a shadow outcome landed {late:.3f} s after its request (settle_s 0.23)"

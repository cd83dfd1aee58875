"""The budget's window holds the candidate's calls made once it answered users: its shadow calls before
that ran at shadow priority under the shadow timeout, and decided (or diluted) the first judgements after
the promotion. Real SQLite log; no Ray."""

from __future__ import annotations

import uuid

from roomsight.db import engine_for
from roomsight.registry import ModelRef
from roomsight.rollout_state import RoutingState
from rollout import stages
from rollout.evidence import SHADOW_ONLY, candidate_window, log_evidence
from serving.predlog import LogWriter, PredictionRecord
from serving.routing import choose
from tests.plans import open_plan

T0 = 1_700_000_017.25
RID = "r-budget"


def call(ts: float, reason: str, *, failed: bool = False, ms: float = 8.0) -> PredictionRecord:
    """A candidate call: in shadow while it answered no user (`reason` "shadow"), else answering one."""
    shadow = reason == "shadow"
    return PredictionRecord(
        request_id=str(uuid.uuid4()), ts=ts, rollout_id=RID, stage="shadow" if shadow else "limited", listing_id="L",
        region="eu-west", served_by="champion" if shadow or failed else "candidate", label="kitchen", score=0.9,
        latency_ms=10, routing_reason=reason, shadow="candidate" if shadow else None,
        shadow_status=("timeout" if failed else "ok") if shadow else None, shadow_at=ts + 0.5 if shadow else None,
        candidate_version="2", candidate_label=None if failed else "kitchen", candidate_ms=None if failed else ms,
        candidate_error="shadow call timed out" if failed else None)


def test_the_budget_window_leaves_out_the_calls_before_the_candidate_answered_users(tmp_path):
    engine = engine_for(f"sqlite:///{tmp_path / 'log.db'}")
    w = LogWriter(engine, flush_interval_s=0.05)
    # In shadow, at idle priority: slow, and timing out under load.
    for i in range(60):
        w.submit(call(T0 + i, "shadow", failed=i % 4 == 0, ms=4000.0))
    promoted = T0 + 100
    for i in range(30):
        w.submit(call(promoted + i, "slice", failed=i == 0))
    assert w.flush()
    w.close()

    window = candidate_window(engine, RID, 200)
    assert (window.calls, window.errors, window.p99_ms) == (30, 1, 8.0)
    assert log_evidence(engine, None, RID, last=200)["candidate_error_rate"] == 1 / 30
    assert candidate_window(engine, RID, 200, as_of=promoted - 1).calls == 0  # only shadow calls then
    # Among the last N: the window is N answering calls once there are N of them.
    assert candidate_window(engine, RID, 20).calls == 20
    # The rollout's own counts keep every call: they are not the budget's.
    assert log_evidence(engine, None, RID)["candidate_requests"] == 90


def test_the_window_knows_the_routing_reason_the_ingress_logs_while_the_candidate_answers_no_user():
    began = stages.start(RoutingState(champion=ModelRef("m", "1")), ModelRef("m", "2"), "r", open_plan(), now=0)
    assert not began.answers_traffic
    assert choose(began, "L1", "eu-west").reason == SHADOW_ONLY

"""The budget guard: pure breach rule, and a real rollback when the logged evidence breaks the budget."""

import time
import uuid

from roomsight import registry
from roomsight.db import engine_for
from rollout.control import ControlPlane
from rollout.guard import Guard, breach
from rollout.plan import Budget, load_plan
from serving.predlog import LogWriter, PredictionRecord
from serving.routing import Stage

BUDGET = Budget(max_error_rate=0.05, max_p99_ms=500, window=50)


def test_breach_rules():
    assert breach(BUDGET, 10, 1.0, None) is None, "too few calls to judge"
    assert breach(BUDGET, 50, 0.04, 100) is None
    assert "error rate 10.0%" in breach(BUDGET, 50, 0.10, 100)
    assert "p99 latency 900 ms" in breach(BUDGET, 50, 0.0, 900)


def candidate_calls(settings, rollout_id, n, failing):
    w = LogWriter(engine_for(settings.db_url), flush_interval_s=0.05)
    for i in range(n):
        bad = i < failing
        w.submit(PredictionRecord(
            request_id=str(uuid.uuid4()), ts=time.time() + i * 1e-3, rollout_id=rollout_id, stage="limited",
            listing_id=f"L{i}", region="eu-west", served_by="champion" if bad else "candidate", label="kitchen",
            score=0.9, latency_ms=10, candidate_version="2", candidate_label=None if bad else "kitchen",
            candidate_ms=None if bad else 8.0, candidate_error="RuntimeError: boom" if bad else None))
    assert w.flush()
    w.close()


def test_guard_rolls_back_a_failing_candidate_and_records_it(settings):
    plan = load_plan().model_copy(update={"gates": {}, "budget": BUDGET})
    cp = ControlPlane(settings, plan, actor="alice")
    rid = cp.start("models:/roomtype/2").after.rollout_id
    guard = Guard(cp.with_actor("guard"))
    assert guard.tick() is None  # shadow: the guard has nothing to protect
    cp.promote("limited")
    candidate_calls(settings, rid, 40, failing=1)
    assert guard.tick() is None  # 2.5% errors: within budget
    candidate_calls(settings, rid, 40, failing=10)
    out = guard.tick()
    assert out is not None and out.action == "auto-rollback"
    assert cp.current().state.stage is Stage.STABLE
    assert registry.alias_version("roomtype", "candidate") is None
    event = cp.history()[0]
    assert event["action"] == "auto-rollback" and event["actor"] == "guard" and "error rate" in event["reason"]

"""The guard, the rollout's background analysis: its pure decision, and real rollbacks, pauses and
automatic promotions when the logged evidence says so (real MLflow registry and SQLite; no Ray)."""

import time
import uuid

import pytest

from roomsight import registry
from roomsight.db import engine_for
from roomsight.errors import RolloutError
from roomsight.registry import ModelRef
from roomsight.rollout_state import RoutingState, Stage, Versioned
from rollout import assess, conditions, stages
from rollout.control import ControlPlane, Outcome
from rollout.guard import Guard, decide
from rollout.plan import AutoAdvance, Budget, Gate
from serving.predlog import LogWriter, PredictionRecord
from tests.plans import open_plan, with_exit

BUDGET = Budget(max_error_rate=0.05, max_p99_ms=500, window=50)


def judged(outcome: str, on_fail: str = "rollback", name: str = "x") -> conditions.ConditionResult:
    return conditions.ConditionResult(name, "gate", outcome, "numbers", on_fail=on_fail)  # type: ignore[arg-type]


def test_decide_rolls_back_pauses_holds_and_advances():
    plan = open_plan()
    auto = plan.model_copy(update={"steps": (plan.steps[0].model_copy(update={"auto_advance": AutoAdvance(after="10m")}),)
                                   + plan.steps[1:]})
    s = stages.start(RoutingState(champion=ModelRef("m", "1")), ModelRef("m", "2"), "r", auto, now=0)
    assert decide(auto, s, [judged("fail", "pause"), judged("fail", "rollback")], None, 1).kind == "rollback"
    pause = decide(auto, s, [judged("fail", "pause", "drift_alarm <= 0"), judged("pass")], None, 1)
    assert pause.kind == "pause" and "drift_alarm <= 0" in pause.reason
    assert decide(auto, s.evolve(held="drift"), [judged("fail", "pause")], None, 1) is None, "already paused"
    assert decide(auto, s, [judged("inconclusive")], "pass", 599) is None, "its time is not up"
    assert decide(auto, s, [judged("inconclusive")], "inconclusive", 601) is None, "exit conditions not passed"
    assert decide(auto, s, [judged("pass")], "pass", 601).kind == "promote"
    assert decide(auto, s.evolve(held="drift"), [], "pass", 601) is None, "a paused rollout does not advance by itself"
    assert decide(plan, s, [], "pass", 10 ** 9) is None, "no auto_advance on the step"


class RacedControl(ControlPlane):
    """A control plane whose state someone changes between the guard's reading of it and its action; it
    records what would have been committed instead of writing it."""

    def __init__(self, *states: Versioned) -> None:  # no database, MLflow or notifier: nothing is written
        self.plan, self.clock, self.engine, self.settings = open_plan(), lambda: 100.0, None, None
        self.states, self.committed = list(states), []

    def current(self) -> Versioned:
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]

    def _commit(self, action, cur, after, **_):
        self.committed.append((action, after))
        return Outcome(action, cur.state, after)


@pytest.mark.parametrize("on_fail", ["rollback", "pause"])
def test_the_guard_does_not_act_on_a_state_changed_since_it_judged(monkeypatch, on_fail):
    # A person rolls the candidate back (or promotes it) while the guard judges the step it read: the guard's
    # own action must not land on the new state. A second rollback would restore the previous champion.
    plan = open_plan()
    began = stages.start(RoutingState(champion=ModelRef("m", "1"), previous_champion=ModelRef("m", "0")),
                         ModelRef("m", "2"), "r", plan, now=0)
    limited = stages.advance(began, plan, 1, now=0)
    after = stages.rollback(limited) if on_fail == "rollback" else stages.advance(limited, plan, 2, now=50)
    cp = RacedControl(Versioned(7, limited, 0.0), Versioned(8, after, 50.0))
    monkeypatch.setattr(assess, "judge", lambda *a, **k: assess.Judged({}, watch=[judged("fail", on_fail)]))
    assert Guard(cp).tick() is None
    assert cp.committed == []


def test_the_guard_judges_the_exits_its_promotion_must_pass():
    """After a --percent override the next promotion skips the steps the share has passed and must pass
    their exit conditions too; the guard judged the current step's alone, so a skipped step's failing
    condition left it trying, at every tick, a promotion the control plane refused."""
    plan = open_plan()
    steps = list(plan.steps)
    steps[2] = steps[2].model_copy(update={"auto_advance": AutoAdvance(after="60s")})
    plan = plan.model_copy(update={"steps": tuple(steps)})
    began = stages.start(RoutingState(champion=ModelRef("m", "1")), ModelRef("m", "2"), "r", plan, now=0)
    at_10 = stages.advance(stages.advance(began, plan, 1, now=0), plan, 2, now=0, percent=30)  # passes 25%
    cp = RacedControl(Versioned(7, at_10, 0.0))
    cp.plan = plan
    asked = {}

    def judge(*_, exit_steps, **__):  # noqa: ANN001, ANN202
        asked["exit_steps"] = exit_steps
        return assess.Judged({})

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(assess, "judge", judge)
        Guard(cp).tick()
    assert list(asked["exit_steps"]) == [2, 3], "step 3 (gradual 25%) is skipped by the promotion to 50%"


def test_the_guard_does_not_act_on_a_step_the_changed_plan_gives_another_kind():
    """The limited step taken out of the plan mid-rollout moves every later step down one: the guard judged the
    rollout on limited as on the new plan's timed gradual 10% and promoted it to 25% of all listings."""
    plan = open_plan()
    limited = stages.advance(stages.start(RoutingState(champion=ModelRef("m", "1")), ModelRef("m", "2"), "r", plan,
                                          now=0), plan, 1, now=0)
    steps = list(plan.steps[:1] + plan.steps[2:])
    steps[1] = steps[1].model_copy(update={"auto_advance": AutoAdvance(after="60s")})
    cp = RacedControl(Versioned(7, limited, 0.0))
    cp.plan = plan.model_copy(update={"steps": tuple(steps)})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(assess, "judge", lambda *a, **k: assess.Judged({}))
        assert Guard(cp).tick() is None
        assert cp.committed == []
        # ... and still takes the candidate off on a failure.
        mp.setattr(assess, "judge", lambda *a, **k: assess.Judged({}, watch=[judged("fail")]))
        assert Guard(cp).tick().action == "auto-rollback"


def test_neither_the_guard_nor_a_person_promotes_on_a_plan_changed_to_the_same_kind_at_its_step(caplog):
    """The limited step taken out while the rollout is on gradual 10% leaves the new plan's timed gradual 25% at
    its index: the kind matched, and the guard promoted it to 50% of all listings, past the 25% it never took."""
    plan = open_plan()
    began = stages.start(RoutingState(champion=ModelRef("m", "1")), ModelRef("m", "2"), "r", plan, now=0)
    at_10 = stages.advance(began, plan, 2, now=0)
    steps = list(plan.steps[:1] + plan.steps[2:])
    steps[2] = steps[2].model_copy(update={"auto_advance": AutoAdvance(after="60s")})
    cp = RacedControl(Versioned(7, at_10, 0.0))
    cp.plan = plan.model_copy(update={"steps": tuple(steps)})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(assess, "judge", lambda *a, **k: assess.Judged({}, exit=[judged("pass")]))
        guard = Guard(cp)
        assert guard.tick() is None and guard.tick() is None
        told = [r.getMessage() for r in caplog.records if "not promoting" in r.getMessage()]
        assert len(told) == 1 and "plan it started with" in told[0], "said once, not at every tick"
        with pytest.raises(RolloutError, match="plan it started with.*Roll back, or restore the plan it started with"):
            cp.promote(reason="a person, on the plan on disk")
        assert cp.committed == []
        # ... and still takes the candidate off on a failure.
        mp.setattr(assess, "judge", lambda *a, **k: assess.Judged({}, watch=[judged("fail")]))
        assert Guard(cp).tick().action == "auto-rollback"


def candidate_calls(settings, rollout_id, n, failing):
    """`n` candidate calls answered now, the first `failing` of them failed (logged in the past, as they
    would be: a replay judges each moment on the rows logged by then)."""
    w = LogWriter(engine_for(settings.db_url), flush_interval_s=0.05)
    start = time.time() - n * 1e-4
    for i in range(n):
        bad = i < failing
        w.submit(PredictionRecord(
            request_id=str(uuid.uuid4()), ts=start + i * 1e-4, rollout_id=rollout_id, stage="limited",
            listing_id=f"L{i}", region="eu-west", served_by="champion" if bad else "candidate", label="kitchen",
            score=0.9, latency_ms=10, candidate_version="2", candidate_label=None if bad else "kitchen",
            candidate_ms=None if bad else 8.0, candidate_error="RuntimeError: boom" if bad else None))
    assert w.flush()
    w.close()


def test_guard_rolls_back_a_failing_candidate_and_records_it(settings):
    cp = ControlPlane(settings, open_plan(budget=BUDGET), actor="alice")
    rid = cp.start("models:/roomtype/2").after.rollout_id
    guard = Guard(cp.with_actor("guard"))
    assert guard.tick() is None  # shadow: the guard has nothing to protect
    cp.promote("limited")
    candidate_calls(settings, rid, 40, failing=1)
    assert guard.tick() is None  # 2.5% errors: within budget
    assert [r.outcome for r in guard.last.watch] == ["pass"]
    candidate_calls(settings, rid, 40, failing=10)
    out = guard.tick()
    assert out is not None and out.action == "auto-rollback"
    assert cp.current().state.stage is Stage.STABLE
    assert registry.alias_version("roomtype", "candidate") is None
    event = cp.history()[0]
    assert event["action"] == "auto-rollback" and event["actor"] == "guard" and "error rate" in event["reason"]
    [budget] = event["conditions"]
    assert (budget["name"], budget["outcome"], budget["numbers"]["error_rate"]) == ("budget", "fail", 0.2)


def test_the_guard_rolls_back_while_mlflow_is_down_and_its_second_loop_records_it_once_mlflow_is_back(settings, monkeypatch):
    """The guard's rollback waited for MLflow, so a candidate failing during an MLflow outage kept answering;
    and a change MLflow missed was never recorded unless a person made another change."""
    from rollout import records

    cp = ControlPlane(settings, open_plan(budget=BUDGET), actor="alice")
    rid = cp.start("models:/roomtype/2").after.rollout_id
    cp.promote("limited")
    candidate_calls(settings, rid, 40, failing=10)
    real = records.record

    def down(*_a, **_k):  # noqa: ANN202
        raise ConnectionError("MLflow went away")

    monkeypatch.setattr(registry, "check_reachable", down)
    monkeypatch.setattr(records, "record", down)
    guard = Guard(cp.with_actor("guard"), interval_s=3600, catch_up_s=0.05)
    out = guard.tick()
    assert out is not None and out.action == "auto-rollback" and out.mlflow_pending == ("record",)
    assert cp.current().state.stage is Stage.STABLE and cp.unrecorded() == 1
    guard.start()
    try:
        time.sleep(0.3)
        assert cp.unrecorded() == 1  # still down: kept
        monkeypatch.setattr(records, "record", real)
        deadline = time.time() + 10
        while cp.unrecorded() and time.time() < deadline:
            time.sleep(0.05)
    finally:
        guard.stop()
    assert cp.unrecorded() == 0
    assert [(e["action"], e["actor"]) for e in cp.history()] == [("auto-rollback", "guard"), ("promote", "alice"),
                                                                ("start", "alice")]


def test_guard_watches_nothing_in_shadow(settings):
    """In shadow the candidate answers no one: its failures are the evidence for promoting it, not a reason
    to take it off."""
    cp = ControlPlane(settings, open_plan(budget=BUDGET), actor="alice")
    rid = cp.start("models:/roomtype/2").after.rollout_id
    candidate_calls(settings, rid, 40, failing=20)  # past the budget, were it watched
    guard = Guard(cp.with_actor("guard"))
    assert guard.tick() is None and cp.current().state.stage is Stage.SHADOW
    assert not guard.last.watch


def test_guard_pauses_where_the_plan_says_pause_then_advances_after_a_promotion(settings):
    watch = (Gate(metric="candidate_error_rate", max=0.02, on_fail="pause"),)
    clock = [1000.0]
    plan = with_exit(open_plan(watch=watch), 1, (Gate(metric="candidate_served", min=30),))
    steps = list(plan.steps)
    steps[1] = steps[1].model_copy(update={"auto_advance": AutoAdvance(after="60s")})
    plan = plan.model_copy(update={"steps": tuple(steps)})
    cp = ControlPlane(settings, plan, actor="alice", clock=lambda: clock[0])
    rid = cp.start("models:/roomtype/2").after.rollout_id
    cp.promote("limited")
    guard = Guard(cp.with_actor("guard"))
    candidate_calls(settings, rid, 40, failing=1)  # 2.5%: within the budget, over the watched 2%
    out = guard.tick()
    assert out is not None and out.action == "auto-pause" and cp.current().state.held.startswith("automatic: candidate_error_rate")
    assert guard.tick() is None, "paused once is enough"
    clock[0] += 120
    assert guard.tick() is None, "a paused rollout does not advance by itself"
    cp.promote("gradual", force=True, reason="errors were a bad deploy of the test client")
    assert cp.current().state.held is None and cp.current().state.stage is Stage.GRADUAL


def test_guard_promotes_a_step_whose_time_is_up(settings):
    clock = [1000.0]
    plan = with_exit(open_plan(), 1, (Gate(metric="candidate_served", min=30),))
    steps = list(plan.steps)
    steps[1] = steps[1].model_copy(update={"auto_advance": AutoAdvance(after="60s")})
    cp = ControlPlane(settings, plan.model_copy(update={"steps": tuple(steps)}), actor="alice", clock=lambda: clock[0])
    rid = cp.start("models:/roomtype/2").after.rollout_id
    cp.promote("limited")
    guard = Guard(cp.with_actor("guard"))
    candidate_calls(settings, rid, 40, failing=0)
    assert guard.tick() is None, "60 s have not passed"
    clock[0] += 61
    out = guard.tick()
    assert out is not None and out.action == "auto-promote" and out.after.stage is Stage.GRADUAL
    assert cp.history()[0]["actor"] == "guard" and "ran its 60 s" in cp.history()[0]["reason"]


def test_a_condition_watched_plan_wide_and_by_the_step_is_one_check_with_the_stronger_action(tmp_path):
    """Judged twice, it was two rows in status and two series of one name in /metrics (Prometheus keeps one
    silently); kept once, it must still roll back if either asks for a rollback."""
    from tests.conftest import settings_for

    settings = settings_for(tmp_path)
    gate = Gate(metric="candidate_error_rate", max=0.02)
    plan = open_plan(watch=(gate.model_copy(update={"on_fail": "pause"}),))
    steps = list(plan.steps)
    steps[1] = steps[1].model_copy(update={"watch": (gate,), "on_fail": "rollback"})
    plan = plan.model_copy(update={"steps": tuple(steps)})
    limited = stages.advance(stages.start(RoutingState(champion=ModelRef("m", "1")), ModelRef("m", "2"), "r", plan,
                                          now=0), plan, 1, now=0)
    watched = assess.judge(plan, limited, engine_for(settings.db_url), settings).watch
    named = [r for r in watched if r.name == gate.name]
    assert len(named) == 1 and named[0].on_fail == "rollback"

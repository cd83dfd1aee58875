"""Stage transitions, plans and gates: pure, no Ray, no MLflow."""

from pathlib import Path

import pytest

from roomsight.registry import ModelRef
from rollout import stages
from rollout.gates import all_passed, check
from rollout.plan import PlanError, load_plan
from serving.routing import RoutingState, Stage

CHAMP, CAND = ModelRef("roomtype", "1"), ModelRef("roomtype", "2")


@pytest.fixture
def plan():
    return load_plan()


def test_full_path_shadow_to_full(plan):
    s = RoutingState(champion=CHAMP)
    s = stages.start(s, CAND, "r1", plan)
    assert s.stage is Stage.SHADOW and s.candidate == CAND
    s = stages.promote(s, "limited", plan)
    assert (s.stage, s.regions, s.percent) == (Stage.LIMITED, ("eu-west",), 100)
    seen = []
    while s.stage is Stage.GRADUAL or not seen:
        s = stages.promote(s, "gradual", plan)
        seen.append(s.percent)
        if s.percent == 100:
            break
    assert seen == [10, 25, 50, 100]
    s = stages.promote(s, "full", plan)
    assert s.stage is Stage.STABLE and s.champion == CAND and s.previous_champion == CHAMP and s.candidate is None
    back = stages.rollback(s)
    assert back.champion == CHAMP and back.previous_champion is None


def test_refusals_say_why(plan):
    stable = RoutingState(champion=CHAMP)
    with pytest.raises(stages.TransitionError, match="no rollout in progress"):
        stages.promote(stable, "limited", plan)
    with pytest.raises(stages.TransitionError, match="already the champion"):
        stages.start(stable, CHAMP, "r", plan)
    shadow = stages.start(stable, CAND, "r1", plan)
    with pytest.raises(stages.TransitionError, match="unknown stage"):
        stages.promote(shadow, "everywhere", plan)
    with pytest.raises(stages.TransitionError, match="gradual follows limited"):
        stages.promote(shadow, "gradual", plan)
    with pytest.raises(stages.TransitionError, match="full follows gradual"):
        stages.promote(shadow, "full", plan)
    with pytest.raises(PlanError, match="unknown region"):
        stages.promote(shadow, "limited", plan, regions=("mars-north",))
    with pytest.raises(stages.TransitionError, match="in progress|shadow"):
        stages.start(shadow, ModelRef("roomtype", "3"), "r2", plan)
    with pytest.raises(stages.TransitionError, match="nothing to roll back"):
        stages.rollback(stable)


def test_gradual_never_shrinks(plan):
    s = stages.promote(stages.start(RoutingState(champion=CHAMP), CAND, "r", plan), "limited", plan)
    s = stages.promote(s, "gradual", plan, percent=40)
    with pytest.raises(stages.TransitionError, match="must grow"):
        stages.promote(s, "gradual", plan, percent=30)
    assert stages.promote(s, "gradual", plan).percent == 50  # next plan step above 40


def test_rollback_mid_rollout_keeps_champion(plan):
    s = stages.promote(stages.start(RoutingState(champion=CHAMP), CAND, "r", plan), "limited", plan)
    back = stages.rollback(s)
    assert back.stage is Stage.STABLE and back.champion == CHAMP and back.candidate is None


def test_default_plan_describes_every_stage(plan):
    text = "\n".join(plan.describe())
    for word in ("shadow", "limited", "gradual", "full", "eu-west", "10%, 25%, 50%, 100%", "agreement at least 0.6"):
        assert word in text


def test_bad_plan_names_the_key(tmp_path: Path):
    bad = tmp_path / "plan.yaml"
    bad.write_text("regions: [eu-west]\ngates:\n  limited:\n    - {metric: vibes, min: 1}\n")
    with pytest.raises(PlanError, match="gates.limited.0.*unknown metric 'vibes'"):
        load_plan(bad)
    bad.write_text("regions: [eu-west]\nlimited: {regions: [us-east]}\n")
    with pytest.raises(PlanError, match="not in `regions`"):
        load_plan(bad)
    bad.write_text("regions: [eu-west]\ngradual: {steps: [50, 10]}\n")
    with pytest.raises(PlanError, match="gradual.steps"):
        load_plan(bad)


def test_gates_pass_fail_and_missing_evidence(plan):
    gates = plan.gates_for("limited")
    good = {"compared": 100, "agreement": 0.9, "candidate_error_rate": 0.0, "reviewed": 40, "precision_margin": 0.02}
    assert all_passed(check(gates, good))
    results = check(gates, {**good, "agreement": 0.5})
    assert [r.metric for r in results if not r.passed] == ["agreement"]
    missing = check(gates, {"compared": 100})
    assert not all_passed(missing)
    assert "no evidence" in [r for r in missing if r.metric == "agreement"][0].describe()

"""A plan's fingerprint (rollout.plan_identity) and the routing state that keeps it: pure, no Ray, no SQL."""

import pytest
import yaml

from roomsight.registry import ModelRef
from roomsight.rollout_state import RoutingState
from rollout import stages
from rollout.api_models import RoutingStateOut
from rollout.plan import AutoAdvance, Gate, GradualTraffic, LimitedTraffic, PauseSpec, ShadowTraffic, default_plan_path, parse_plan
from rollout.plan_identity import SCHEME, fingerprint, path_of
from tests.plans import open_plan, with_exit

CHAMP, CAND = ModelRef("roomtype", "1"), ModelRef("roomtype", "2")


def _with_step(plan, index, **update):
    steps = list(plan.steps)
    steps[index] = steps[index].model_copy(update=update)
    return plan.model_copy(update={"steps": tuple(steps)})


def test_the_fingerprint_is_of_the_path_not_of_the_file_or_the_conditions():
    raw = yaml.safe_load(default_plan_path().read_text())
    plan = parse_plan(raw)
    reordered = parse_plan({k: raw[k] for k in reversed(list(raw))})
    assert fingerprint(plan) == fingerprint(reordered) == fingerprint(open_plan())
    assert fingerprint(plan).startswith(f"{SCHEME}:")
    tightened = with_exit(plan, 2, (Gate(metric="step_candidate_served", min=500),))
    renamed = plan.model_copy(update={"name": "other", "regions": (*plan.regions, "sa-east"), "watch": ()})
    assert fingerprint(tightened) == fingerprint(renamed) == fingerprint(plan)
    both_ways = _with_step(plan, 1, limited=LimitedTraffic(regions=("eu-west", "us-east")))
    assert fingerprint(both_ways) == fingerprint(_with_step(plan, 1, limited=LimitedTraffic(regions=("us-east", "eu-west"))))
    assert [s["kind"] for s in path_of(plan)] == ["shadow", "limited", "gradual", "gradual", "gradual", "gradual", "full"]


def _paused(plan, index, **pause):
    """`plan` with step `index` made a pause."""
    return _with_step(plan, index, gradual=None, limited=None, pause=PauseSpec(**pause))


@pytest.mark.parametrize("edit", [
    lambda p: p.model_copy(update={"steps": p.steps[:1] + p.steps[2:]}),  # a step taken out
    lambda p: p.model_copy(update={"steps": p.steps[:3] + p.steps[2:]}),  # ... or put in
    lambda p: _with_step(p, 0, shadow=ShadowTraffic(sample=0.5)),
    lambda p: _with_step(p, 1, limited=LimitedTraffic(regions=("us-east",))),
    lambda p: _with_step(p, 1, limited=LimitedTraffic(regions=("eu-west",), percent=50)),
    lambda p: _with_step(p, 3, gradual=GradualTraffic(percent=30)),
    lambda p: _with_step(p, 3, auto_advance=AutoAdvance(after="1h")),
    lambda p: _paused(p, 3, duration="1h"),
], ids=["removed", "inserted", "sample", "regions", "limited-percent", "gradual-percent", "auto-advance", "kind"])
def test_every_change_of_the_path_changes_the_fingerprint(edit):
    plan = open_plan()
    assert fingerprint(edit(plan)) != fingerprint(plan)


def test_a_pauses_duration_is_part_of_the_path():
    plan = open_plan()
    timed = [fingerprint(_paused(plan, 3, duration=d)) for d in ("1h", "3600s", "2h")]
    assert timed[0] == timed[1] != timed[2], "the same duration however it is written, another one not"
    assert fingerprint(_paused(plan, 3)) not in timed, "until promoted is not a duration"


def test_the_state_keeps_the_fingerprint_from_start_to_full_and_drops_it_on_rollback():
    plan = open_plan()
    s = stages.start(RoutingState(champion=CHAMP), CAND, "r", plan, 0)
    assert s.plan_fingerprint == fingerprint(plan)
    s = stages.advance(s, plan, 2, 1)
    assert s.plan_fingerprint == fingerprint(plan) and RoutingState.from_dict(s.to_dict()) == s
    assert RoutingStateOut.model_validate(s.to_dict()).plan_fingerprint == fingerprint(plan)
    assert stages.rollback(s).plan_fingerprint is None
    full = stages.advance(s, plan, len(plan.steps) - 1, 2)
    assert full.plan_fingerprint == fingerprint(plan), "the finished rollout still says which plan it ran"
    assert stages.off_plan(full, plan.model_copy(update={"steps": plan.steps[:1] + plan.steps[2:]})) is None, \
        "no rollout in progress: nothing to be off"


def test_a_state_written_before_fingerprints_reads_as_none_and_validates_as_before():
    """A row (and a recorded event's state) from a release before the fingerprint has no key for it."""
    old = {"champion": CHAMP.to_dict(), "stage": "gradual", "candidate": CAND.to_dict(), "rollout_id": "r", "step": 2,
           "since": 0.0, "regions": ["eu-west"], "region_percent": 100.0, "percent": 10.0, "shadow_sample": 1.0,
           "hold_ood_on_champion": True, "held": None, "previous_champion": None}
    state = RoutingState.from_dict(old)
    assert state.plan_fingerprint is None and state.to_dict()["plan_fingerprint"] is None
    assert RoutingStateOut.model_validate(old).plan_fingerprint is None

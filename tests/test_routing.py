"""Routing decisions are pure: no Ray, no I/O."""

import random

import pytest

from roomsight.registry import ModelRef
from roomsight.rollout_state import RoutingState, Stage
from serving.routing import CANDIDATE, CHAMPION, bucket, choose, on_candidate

CHAMP = ModelRef("roomtype", "1")
CAND = ModelRef("roomtype", "2")
LISTINGS = [f"L{i:06d}" for i in range(10_000)]


def state(stage: Stage, **kw) -> RoutingState:
    base = dict(champion=CHAMP, candidate=CAND, rollout_id="r-1", stage=stage)
    base.update(kw)
    return RoutingState(**base)


def test_stable_always_champion_no_shadow():
    s = RoutingState(champion=CHAMP)
    d = choose(s, "L1", "eu-west", u=0.0)
    assert (d.served_by, d.shadow) == (CHAMPION, None)


def test_shadow_sampling_follows_u():
    s = state(Stage.SHADOW, shadow_sample=0.3)
    assert choose(s, "L1", "eu-west", u=0.29).shadow == CANDIDATE
    assert choose(s, "L1", "eu-west", u=0.31).shadow is None
    assert all(choose(s, lid, "eu-west", u=0.0).served_by == CHAMPION for lid in LISTINGS[:500])


def test_bucket_is_uniform_and_depends_on_rollout():
    values = [bucket(lid, "r-1") for lid in LISTINGS]
    assert all(0 <= v < 100 for v in values)
    assert abs(sum(v < 10 for v in values) / len(values) - 0.10) < 0.02
    other = [bucket(lid, "r-2") for lid in LISTINGS]
    assert sum(a == b for a, b in zip(values, other)) == 0


@pytest.mark.parametrize("percent", [1, 10, 25, 50, 90])
def test_gradual_share_within_two_points(percent):
    s = state(Stage.GRADUAL, percent=percent)
    share = sum(on_candidate(s, lid, "us-east") for lid in LISTINGS) / len(LISTINGS)
    assert abs(share * 100 - percent) <= 2


def test_assignment_sticky_and_monotone():
    steps = [10, 25, 50, 100]
    previous: set[str] = set()
    for pct in steps:
        s = state(Stage.GRADUAL, percent=pct)
        on = {lid for lid in LISTINGS if on_candidate(s, lid, "us-east")}
        # sticky: asking again gives the same answer
        assert on == {lid for lid in LISTINGS if on_candidate(s, lid, "us-east")}
        assert previous <= on, "a listing moved back to the champion as the percentage grew"
        previous = on
    assert len(previous) == len(LISTINGS)


def test_limited_only_in_regions_and_within_percent():
    s = state(Stage.LIMITED, regions=("eu-west",), region_percent=50)
    eu = [on_candidate(s, lid, "eu-west") for lid in LISTINGS]
    us = [on_candidate(s, lid, "us-east") for lid in LISTINGS]
    assert not any(us)
    assert abs(sum(eu) / len(eu) - 0.5) <= 0.02


def test_limited_to_gradual_never_moves_a_listing_back():
    limited = state(Stage.LIMITED, regions=("eu-west",), region_percent=100)
    gradual = state(Stage.GRADUAL, regions=("eu-west",), region_percent=100, percent=10)
    for lid in LISTINGS[:2000]:
        if on_candidate(limited, lid, "eu-west"):
            assert on_candidate(gradual, lid, "eu-west")


def test_candidate_slice_shadows_the_champion_when_sampled():
    s = state(Stage.LIMITED, regions=("eu-west",), region_percent=100, shadow_sample=0.5)
    d = choose(s, "L1", "eu-west", u=0.1)
    assert (d.served_by, d.shadow, d.reason) == (CANDIDATE, CHAMPION, "slice")
    d = choose(s, "L1", "us-east", u=0.1)
    assert (d.served_by, d.shadow, d.reason) == (CHAMPION, CANDIDATE, "outside-slice")


def test_ood_photos_held_on_champion_when_plan_says_so():
    held = state(Stage.GRADUAL, percent=100, hold_ood_on_champion=True)
    d = choose(held, "L1", "us-east", ("night_time",), u=0.99)
    assert (d.served_by, d.shadow, d.held_flags) == (CHAMPION, CANDIDATE, ("night_time",))
    free = state(Stage.GRADUAL, percent=100, hold_ood_on_champion=False)
    assert choose(free, "L1", "us-east", ("night_time",), u=0.99).served_by == CANDIDATE


def test_a_held_photo_runs_the_candidate_in_shadow_whatever_the_sample():
    # The held photo is the evidence the review needs on exactly these inputs: a low shadow sample must
    # not leave it out.
    held = state(Stage.GRADUAL, percent=100, hold_ood_on_champion=True, shadow_sample=0.1)
    d = choose(held, "L1", "us-east", ("low_resolution",), u=0.99)
    assert (d.served_by, d.shadow, d.reason) == (CHAMPION, CANDIDATE, "ood-held")


def test_buckets_are_the_same_in_every_process_and_release():
    # Replicas and restarts within one rollout must agree on who is on the candidate, or a listing
    # would flip between models; a per-process hash or a changed digest would break it.
    assert bucket("L000001", "r-1") == pytest.approx(22.52116366296989, abs=1e-12)
    assert bucket("listing-42", "2026-rollout") == pytest.approx(62.254905772724015, abs=1e-12)
    assert bucket("L000001", "r-2") == pytest.approx(7.17930739449377, abs=1e-12)


def test_state_roundtrip_and_validation():
    s = state(Stage.LIMITED, regions=("eu-west",), region_percent=40, previous_champion=ModelRef("roomtype", "0"))
    assert RoutingState.from_dict(s.to_dict()) == s
    with pytest.raises(ValueError):
        RoutingState(champion=CHAMP, stage=Stage.SHADOW)  # no candidate
    with pytest.raises(ValueError):
        state(Stage.GRADUAL, percent=120)
    with pytest.raises(ValueError):
        state(Stage.LIMITED, regions=("eu-west",), region_percent=-1)


def test_a_pause_keeps_the_traffic_it_found():
    gradual = state(Stage.GRADUAL, regions=("eu-west",), region_percent=100, percent=25)
    paused = gradual.evolve(stage=Stage.PAUSE)
    assert all(on_candidate(paused, lid, r) == on_candidate(gradual, lid, r)
               for lid in LISTINGS[:2000] for r in ("eu-west", "us-east"))


def test_a_state_written_before_steps_routes_as_it_did():
    old_limited = {"champion": CHAMP.to_dict(), "candidate": CAND.to_dict(), "stage": "limited", "rollout_id": "r-1",
                   "regions": ["eu-west"], "percent": 50.0, "shadow_sample": 1.0}
    s = RoutingState.from_dict(old_limited)
    assert (s.region_percent, s.percent, s.step) == (50.0, 0.0, None)
    old_gradual = {**old_limited, "stage": "gradual", "percent": 10.0}
    g = RoutingState.from_dict(old_gradual)
    assert (g.region_percent, g.percent) == (100.0, 10.0)
    assert g.candidate_share("eu-west") == 1.0 and g.candidate_share("us-east") == 0.1


def test_shadow_share_matches_sample_rate():
    rng = random.Random(7)
    s = state(Stage.SHADOW, shadow_sample=0.1)
    n = sum(choose(s, "L", "eu-west", u=rng.random()).shadow is not None for _ in range(10_000))
    assert abs(n / 10_000 - 0.1) < 0.02


def test_only_flagged_photos_are_held_on_the_champion():
    """Holding out-of-domain photos on the champion holds those flagged: every other photo of the slice is the
    candidate's, or the candidate would answer no one while the plan holds out-of-domain photos."""
    s = state(Stage.GRADUAL, percent=100, hold_ood_on_champion=True, shadow_sample=0.5)
    d = choose(s, "L1", "us-east", (), u=0.99)
    assert (d.served_by, d.shadow, d.reason, d.held_flags) == (CANDIDATE, None, "slice", ())


def test_a_shadow_sample_of_zero_never_shadows_and_of_one_always_does():
    """`u` is a draw in [0, 1): 0 itself is one, and a sample rate of 0 must not run the candidate on it."""
    assert choose(state(Stage.SHADOW, shadow_sample=0.0), "L1", "eu-west", u=0.0).shadow is None
    assert choose(state(Stage.SHADOW, shadow_sample=1.0), "L1", "eu-west", u=0.999999).shadow == CANDIDATE

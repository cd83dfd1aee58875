"""Step transitions and conditions: pure, no Ray, no MLflow."""

import numpy as np
import pytest

from monitoring.review.stats import ModelPrecision, Precision, Reviewed, Summary, gate_metrics, summarize
from roomsight.errors import PlanError, TransitionError
from roomsight.registry import ModelRef
from roomsight.rollout_state import RoutingState, Stage
from rollout import conditions, stages
from rollout.plan import MIN_BUDGET_CALLS, AnalysisRef, Budget, Gate, LimitedTraffic, ShadowTraffic, load_plan
from tests.plans import open_plan, with_exit

CHAMP, CAND = ModelRef("roomtype", "1"), ModelRef("roomtype", "2")


@pytest.fixture
def plan():
    return load_plan()


def test_walks_every_step_to_full(plan):
    s = stages.start(RoutingState(champion=CHAMP), CAND, "r1", plan, now=100.0)
    assert (s.stage, s.step, s.since, s.candidate) == (Stage.SHADOW, 0, 100.0, CAND)
    assert not s.answers_traffic
    seen = []
    t = 100.0
    while s.in_progress:
        t += 10
        s = stages.advance(s, plan, stages.target_step(s, plan), now=t)
        seen.append((s.stage.value, s.regions, s.region_percent, s.percent))
    assert seen == [("limited", ("eu-west",), 100, 0), ("gradual", ("eu-west",), 100, 10), ("gradual", ("eu-west",), 100, 25),
                    ("gradual", ("eu-west",), 100, 50), ("gradual", ("eu-west",), 100, 100), ("full", (), 0, 0)]
    assert (s.champion, s.previous_champion, s.candidate, s.step, s.since) == (CAND, CHAMP, None, 6, t)
    with pytest.raises(TransitionError, match="no rollout in progress"):
        stages.target_step(s, plan)
    back = stages.rollback(s)
    assert back.champion == CHAMP and back.previous_champion is None and back.stage is Stage.STABLE


def test_skipping_applies_every_step_on_the_way(plan):
    s = stages.start(RoutingState(champion=CHAMP), CAND, "r", plan, now=0)
    target = stages.target_step(s, plan, "gradual")
    assert target == 2 and list(stages.exits_to_check(s, target)) == [0, 1]
    s = stages.advance(s, plan, target, now=1)
    assert (s.stage, s.regions, s.percent) == (Stage.GRADUAL, ("eu-west",), 10), "the skipped limited step's region is kept"
    s = stages.advance(s, plan, stages.target_step(s, plan, "full"), now=2)
    assert s.stage is Stage.FULL and s.champion == CAND


def test_refusals_say_why(plan):
    stable = RoutingState(champion=CHAMP)
    with pytest.raises(TransitionError, match="no rollout in progress"):
        stages.target_step(stable, plan)
    with pytest.raises(TransitionError, match="already the champion"):
        stages.start(stable, CHAMP, "r", plan, 0)
    shadow = stages.start(stable, CAND, "r1", plan, 0)
    with pytest.raises(TransitionError, match="unknown stage 'everywhere'"):
        stages.target_step(shadow, plan, "everywhere")
    with pytest.raises(TransitionError, match="no later pause step"):
        stages.target_step(shadow, plan, "pause")
    with pytest.raises(PlanError, match="unknown region"):
        stages.advance(shadow, plan, 1, 0, regions=("mars-north",))
    with pytest.raises(TransitionError, match="--regions applies to a limited step"):
        stages.advance(shadow, plan, 2, 0, regions=("eu-west",))
    with pytest.raises(TransitionError, match="in progress|shadow"):
        stages.start(shadow, ModelRef("roomtype", "3"), "r2", plan, 0)
    with pytest.raises(TransitionError, match="nothing to roll back"):
        stages.rollback(stable)
    with pytest.raises(TransitionError, match="was the plan changed"):
        stages.target_step(shadow.evolve(step=9), plan)


def test_no_later_step_names_the_step_as_it_stands_and_only_reachable_kinds(plan):
    """After `promote --regions eu-west,us-east --percent 50` the refusal named the plan's "limited eu-west
    100%", and an unknown stage was offered shadow and pause, which cannot come later."""
    s = stages.start(RoutingState(champion=CHAMP), CAND, "r", plan, 0)
    s = stages.advance(s, plan, 1, 0, regions=("eu-west", "us-east"), percent=50)
    for stage in ("shadow", "pause"):
        with pytest.raises(TransitionError) as info:
            stages.target_step(s, plan, stage)
        assert str(info.value) == (f"no later {stage} step in the plan after step 2/7 limited eu-west, us-east 50%; "
                                   "promote to one of gradual, full")
    with pytest.raises(TransitionError) as info:
        stages.target_step(s, plan, "bogus")
    assert str(info.value) == "unknown stage 'bogus'; promote to one of gradual, full"


def test_a_percent_override_skips_the_steps_it_passed(plan):
    s = stages.start(RoutingState(champion=CHAMP), CAND, "r", plan, 0)
    s = stages.advance(s, plan, 1, 0)
    s = stages.advance(s, plan, 2, 0, percent=40)
    assert s.percent == 40
    assert plan.steps[stages.target_step(s, plan)].gradual.percent == 50  # 25% is behind it
    with pytest.raises(TransitionError, match="must grow"):
        stages.advance(s, plan, 3, 0, percent=30)
    full = stages.advance(s, plan, stages.target_step(s, plan, "full"), 0)
    assert full.stage is Stage.FULL, "the gradual steps below the override are passed over"


def test_limited_widens_but_never_shrinks():
    base = open_plan()
    plan = base.model_copy(update={"steps": (base.steps[0], base.steps[1], base.steps[1], *base.steps[2:])})
    s = stages.advance(stages.start(RoutingState(champion=CHAMP), CAND, "r", plan, 0), plan, 1, 0, ("eu-west", "us-east"), 50)
    assert (s.regions, s.region_percent) == (("eu-west", "us-east"), 50)
    assert s.candidate_share("eu-west") == 0.5 and s.candidate_share("ap-south") == 0
    # A second limited step may not take listings back: fewer regions, a lower share, or the step's own
    # regions (eu-west alone) when none are given.
    for regions, percent in ((("eu-west",), 50), (("eu-west", "us-east"), 30), (None, None)):
        with pytest.raises(TransitionError, match="not shrink"):
            stages.advance(s, plan, 2, 1, regions, percent)
    wider = stages.advance(s, plan, 2, 1, ("eu-west", "us-east", "ap-south"), 80)
    assert (wider.regions, wider.region_percent, wider.step) == (("eu-west", "us-east", "ap-south"), 80, 2)


def test_hold_and_rollback_mid_rollout(plan):
    s = stages.advance(stages.start(RoutingState(champion=CHAMP), CAND, "r", plan, 0), plan, 1, 0)
    held = stages.hold(s, "drift")
    assert held.held == "drift" and held.regions == s.regions
    assert stages.advance(held, plan, 2, 1).held is None, "a promotion clears the hold"
    back = stages.rollback(held)
    assert back.stage is Stage.STABLE and back.champion == CHAMP and back.candidate is None and back.held is None


def start_on(plan, step: int, **overrides):
    """A rollout of CAND moved to `step` of `plan` (with the overrides of that promotion)."""
    s = stages.start(RoutingState(champion=CHAMP), CAND, "r", plan, 0)
    return s if step == 0 else stages.advance(s, plan, step, 0, **overrides)


def test_a_rollout_starts_with_its_plans_shadow_sample_and_out_of_domain_hold(plan):
    s = start_on(plan, 0)
    assert (s.shadow_sample, s.hold_ood_on_champion) == (1.0, True)
    shadow = plan.steps[0].model_copy(update={"shadow": ShadowTraffic(sample=0.25)})
    other = plan.model_copy(update={"hold_ood_on_champion": False, "steps": (shadow, *plan.steps[1:])})
    s = start_on(other, 0)
    assert (s.shadow_sample, s.hold_ood_on_champion) == (0.25, False)

def test_a_promotion_goes_forward_only(plan):
    s = start_on(plan, 1)
    for target in (0, 1, len(plan.steps)):
        with pytest.raises(TransitionError, match=f"step {target + 1} does not follow step 2/7"):
            stages.advance(s, plan, target, 1)


def test_a_percent_override_is_a_share_of_the_traffic(plan):
    """Refused in words, as every other mistake of a promotion: 0% would put a limited step on no listing, and
    over 100% fails the state's own check with a ValueError the command line does not expect."""
    s = start_on(plan, 0)
    for bad in (0, -5, 150):
        with pytest.raises(TransitionError, match=r"--percent must be in \(0, 100\], got"):
            stages.advance(s, plan, 1, 0, percent=bad)
    assert stages.advance(s, plan, 1, 0, percent=100).region_percent == 100


def test_a_percent_override_is_refused_on_a_step_without_a_share(plan):
    """Given to the full step, --percent would be dropped without a word."""
    s = start_on(plan, 5)
    with pytest.raises(TransitionError, match="--percent applies to limited and gradual steps; step 7/7 full is full"):
        stages.advance(s, plan, 6, 0, percent=50)


def test_a_gradual_step_at_the_share_already_reached_is_passed_over(plan):
    """After `promote --percent 25` on the 10% step, the 25% step adds no listing: the next promotion goes to 50%,
    a promotion past it does not stop on it, and targeting it alone is refused as no growth."""
    s = stages.advance(start_on(plan, 1), plan, 2, 0, percent=25)
    assert stages.target_step(s, plan) == 4
    assert stages.next_promotion(s, plan) == (4, range(2, 4))
    assert stages.advance(s, plan, 5, 0).percent == 100
    with pytest.raises(TransitionError, match="must grow"):
        stages.advance(s, plan, 3, 0)
    with pytest.raises(TransitionError, match="must grow"):
        stages.advance(s, plan, 4, 0, percent=25)


def test_gradual_gives_the_limited_regions_wholly_to_the_candidate(plan):
    s = start_on(plan, 1, percent=50)
    assert s.candidate_share("eu-west") == 0.5
    g = stages.advance(s, plan, 2, 1)
    assert (g.regions, g.region_percent, g.percent) == (("eu-west",), 100, 10)
    assert g.candidate_share("eu-west") == 1.0 and g.candidate_share("us-east") == 0.1


def test_a_later_limited_step_without_regions_keeps_the_regions_it_found():
    base = open_plan()
    first = base.steps[1].model_copy(update={"limited": LimitedTraffic(regions=("eu-west",), percent=50)})
    second = base.steps[1].model_copy(update={"limited": LimitedTraffic(percent=100)})
    plan = base.model_copy(update={"steps": (base.steps[0], first, second, *base.steps[2:])})
    s = start_on(plan, 1, regions=("eu-west", "us-east"))
    wider = stages.advance(s, plan, 2, 1)
    assert (wider.regions, wider.region_percent, wider.step) == (("eu-west", "us-east"), 100, 2)


def test_next_promotion_is_the_current_step_alone_when_there_is_nowhere_to_go(plan):
    s = start_on(plan, 0)
    assert stages.next_promotion(s, plan) == (1, range(0, 1))
    full = stages.advance(s, plan, 6, 1)
    assert stages.next_promotion(full, plan) == (None, range(6, 7))


def test_a_rollout_past_the_plans_last_step_says_the_plan_changed(plan):
    s = start_on(plan, 0)
    with pytest.raises(TransitionError, match="on step 8, but plan 'default' has 7 steps"):
        stages.target_step(s.evolve(step=len(plan.steps)), plan)


def test_a_rollout_on_a_step_the_changed_plan_gives_another_kind_says_the_plan_changed(plan):
    """The limited step taken out of the plan mid-rollout moves every later step down one: the rollout on
    limited (step 2) read step 2 as the new plan's gradual 10% and promoted from there to 25% of all listings,
    skipping 10%."""
    limited = start_on(plan, 1)
    shorter = plan.model_copy(update={"steps": plan.steps[:1] + plan.steps[2:]})
    with pytest.raises(TransitionError, match="on step 2, a limited step, but step 2 of plan 'default' is gradual: "
                                              "was the plan changed"):
        stages.target_step(limited, shorter)
    assert stages.off_plan(limited, plan) is None and stages.off_plan(limited, shorter) is not None
    with pytest.raises(TransitionError, match="was the plan changed"):
        stages.advance(limited, shorter, 2, 0)


def test_a_rollout_on_a_step_the_changed_plan_gives_the_same_kind_says_the_plan_changed(plan):
    """The limited step taken out while the rollout is on gradual 10% (step 3) leaves a gradual step there, 25%:
    the kind matched, and a promotion went on to the new plan's next step, 50% of all listings, past the 25% the
    rollout never took, judged on conditions it never started with."""
    at_10 = start_on(plan, 2)
    shorter = plan.model_copy(update={"steps": plan.steps[:1] + plan.steps[2:]})
    assert shorter.steps[2].kind is at_10.stage
    with pytest.raises(TransitionError, match=r"on step 3 of the plan it started with \(steps p1:\w+\), but plan "
                                              r"'default' has other steps.*Roll back, or restore the plan it started with"):
        stages.target_step(at_10, shorter)
    with pytest.raises(TransitionError, match="was the plan changed"):
        stages.advance(at_10, shorter, 3, 0)
    assert stages.off_plan(at_10, shorter) is not None and stages.next_promotion(at_10, shorter)[0] is None
    # The plan it started with, restored, is the rollout's again.
    assert stages.off_plan(at_10, plan) is None and stages.target_step(at_10, plan) == 3


def test_conditions_changed_mid_rollout_are_the_rollouts_to_judge_by(plan):
    """A gate tightened or a condition watched anew moves no traffic: the rollout goes on under it."""
    at_10 = start_on(plan, 2)
    stricter = with_exit(plan, 2, (Gate(metric="step_candidate_served", min=500),))
    assert stages.off_plan(at_10, stricter) is None and stages.target_step(at_10, stricter) == 3


@pytest.mark.parametrize("recorded", [None, "p0:0123456789abcdef"], ids=["before-fingerprints", "another-scheme"])
def test_a_rollout_without_a_comparable_fingerprint_is_compared_by_kind_as_before(plan, recorded):
    """A row written before fingerprints were kept (or by a version hashing another form) goes on as it did:
    the same kind at its index passes, another kind is refused."""
    at_10 = start_on(plan, 2).evolve(plan_fingerprint=recorded)
    shorter = plan.model_copy(update={"steps": plan.steps[:1] + plan.steps[2:]})
    assert stages.off_plan(at_10, shorter) is None and stages.target_step(at_10, shorter) == 3
    limited = start_on(plan, 1).evolve(plan_fingerprint=recorded)
    with pytest.raises(TransitionError, match="a limited step, but step 2 of plan 'default' is gradual"):
        stages.target_step(limited, shorter)
    moved = stages.advance(at_10, plan, 3, 1)
    assert moved.plan_fingerprint == recorded, "a promotion does not bless the plan at hand as the one it started with"


def test_only_a_rollout_in_progress_can_be_paused():
    with pytest.raises(TransitionError, match="no rollout in progress to pause"):
        stages.hold(RoutingState(champion=CHAMP), "drift")


def test_rolling_back_a_rollout_keeps_the_champion_and_the_one_before_it():
    """After CHAMP -> CAND went full, a third model's rollout rolled back leaves CAND the champion, with CHAMP
    still recorded as the one before it."""
    after_full = RoutingState(champion=CAND, previous_champion=CHAMP)
    s = stages.start(after_full, ModelRef("roomtype", "3"), "r3", load_plan(), 0)
    back = stages.rollback(s)
    assert (back.champion, back.previous_champion, back.candidate) == (CAND, CHAMP, None)


def test_a_second_rollback_does_not_restore_an_older_champion(plan):
    """A rollback mid-rollout kept the previous champion of the last completed rollout, and a rollback of the
    state it left restored it: a person's rollback landing just after the guard's took the candidate off,
    then demoted the champion no one had questioned. Only a rollback right after `full` restores one."""
    s = stages.advance(stages.start(RoutingState(champion=CAND, previous_champion=CHAMP), ModelRef("roomtype", "3"),
                                    "r", plan, 0), plan, 1, 0)
    back = stages.rollback(s)
    assert back.stage is Stage.STABLE and back.champion == CAND
    with pytest.raises(TransitionError, match="nothing to roll back"):
        stages.rollback(back)


def test_gates_pass_fail_and_inconclusive():
    values = {"compared": 100.0, "agreement": 0.9, "candidate_error_rate": 0.0}
    assert conditions.gate(Gate(metric="agreement", min=0.6), values).outcome == "pass"
    assert conditions.gate(Gate(metric="agreement", min=0.95), values).outcome == "fail"
    assert conditions.gate(Gate(metric="candidate_error_rate", max=0.02), {**values, "candidate_error_rate": 0.1}).outcome == "fail"
    # a count below its minimum is evidence still arriving, not a failure
    low = conditions.gate(Gate(metric="compared", min=300), values)
    assert low.outcome == "inconclusive" and "200 more wanted" in low.detail
    missing = conditions.gate(Gate(metric="precision_margin", min=0), values)
    assert missing.outcome == "inconclusive" and "no evidence" in missing.describe()
    results = [conditions.gate(Gate(metric="agreement", min=0.6), values), missing]
    assert conditions.overall(results) == "inconclusive"
    assert conditions.overall(results + [conditions.gate(Gate(metric="agreement", min=0.95), values)]) == "fail"
    assert conditions.overall([]) == "pass"


def test_a_rate_over_too_few_of_its_count_is_not_judged():
    """One failed call among the first read as a 100% error rate, and a watched gate rolled the rollout back
    on it: a rate over fewer than MIN_BUDGET_CALLS of its count is inconclusive, as the budget is."""
    first = {"candidate_requests": 1.0, "candidate_errors": 1.0, "candidate_error_rate": 1.0}
    early = conditions.gate(Gate(metric="candidate_error_rate", max=0.02), first)
    assert early.outcome == "inconclusive" and early.detail == "1 over 1 candidate_requests so far; judged from 20"
    assert conditions.gate(Gate(metric="agreement", min=0.5), {"compared": 19.0, "agreement": 1.0}).outcome == "inconclusive"
    judged = {"candidate_requests": 20.0, "candidate_errors": 1.0, "candidate_error_rate": 0.05}
    assert conditions.gate(Gate(metric="candidate_error_rate", max=0.02), judged).outcome == "fail"
    assert conditions.gate(Gate(metric="agreement", min=0.5), {"compared": 20.0, "agreement": 1.0}).outcome == "pass"


def test_a_precision_over_too_few_reviewed_answers_is_not_judged():
    """Over the first verdicts one wrong answer read as a class the candidate gets wrong (min_class_precision
    0), and a watched gate rolled the rollout back on it: the review rates wait for MIN_BUDGET_CALLS answers of
    their own count, and a class counts by its upper bound, so only once its verdicts show it low."""
    wrong = [Reviewed(truth="kitchen", champion="kitchen", candidate="bedroom", region="eu-west", disagreement=True)]
    right = [Reviewed(truth="kitchen", champion="kitchen", candidate="kitchen", region="eu-west", disagreement=False)]
    watched = {name: Gate(metric=name, min=0.5) for name in ("min_class_precision", "candidate_precision_lower",
                                                             "precision_margin", "candidate_win_rate")}
    watched["precision_margin"] = Gate(metric="precision_margin", min=0)

    def outcomes(items: list[Reviewed]) -> dict[str, str]:
        values = gate_metrics(summarize(items))
        return {name: conditions.gate(g, values).outcome for name, g in watched.items()}

    assert set(outcomes(wrong * 3 + right * 16).values()) == {"inconclusive"}
    early = conditions.gate(watched["precision_margin"], gate_metrics(summarize(wrong * 3 + right * 16)))
    assert early.detail.endswith("over 19 candidate_reviewed and 19 champion_reviewed so far; judged from 20")
    # Bedroom's one wrong answer shows nothing yet: the gate passes.
    assert outcomes(wrong + right * 20)["min_class_precision"] == "pass"
    # None right of 19 shows the class wrong, and the gate fails; at 20 so do the win rate's.
    assert outcomes(wrong * 19 + right * 20)["min_class_precision"] == "fail"
    assert set(outcomes(wrong * 20 + right * 20).values()) == {"fail"}


def _classes(counts: dict[str, tuple[int, int]]) -> Summary:
    """The candidate's verdicts as (right, answered) per class."""
    none = ModelPrecision(Precision(0, 0))
    mine = ModelPrecision(Precision(sum(c for c, _ in counts.values()), sum(n for _, n in counts.values())),
                          {k: Precision(c, n) for k, (c, n) in counts.items()})
    return Summary(reviewed=mine.overall.n, unusable=0, champion=none, candidate=mine, candidate_right=0,
                   champion_right=0, both_wrong=0, disagreements=0)


def test_a_correct_verdict_never_lowers_a_class_precision():
    """Read as it stood from 20 answers, below that by its upper bound: 12 right of 19 read 0.81, and a correct
    20th verdict read 0.65, turning a watched gate at 0.7 from pass to fail on good news."""
    gate = Gate(metric="min_class_precision", min=0.7)
    before, after = (gate_metrics(_classes({"kitchen": (c, n), "bedroom": (50, 50)})) for c, n in ((12, 19), (13, 20)))
    assert after["min_class_precision"] >= before["min_class_precision"]
    assert conditions.gate(gate, before).outcome == conditions.gate(gate, after).outcome == "pass"
    for n in range(1, 40):
        for c in range(n + 1):
            lower = gate_metrics(_classes({"kitchen": (c, n)}))["min_class_precision"]
            assert gate_metrics(_classes({"kitchen": (c + 1, n + 1)}))["min_class_precision"] >= lower - 1e-9


def test_a_watched_class_gate_rolls_back_good_rollouts_at_most_at_its_stated_rate():
    """Ten classes each right 80% of the time against a watched gate at 0.7, read after every verdict up to 40
    answers a class: the gate fails a rollout whose every class meets it at most 5% of the time (the point
    estimate from 20 answers failed most of them). A class right 40% of the time is shown low by 100 answers."""
    gate, rng, runs = Gate(metric="min_class_precision", min=0.7), np.random.default_rng(20261208), 200
    failed = 0
    for _ in range(runs):
        counts = {f"c{k}": (0, 0) for k in range(10)}
        for _ in range(400):
            k = f"c{rng.integers(10)}"
            c, n = counts[k]
            counts[k] = (c + int(rng.random() < 0.8), n + 1)
            if conditions.gate(gate, gate_metrics(_classes({k: v for k, v in counts.items() if v[1]}))).outcome == "fail":
                failed += 1
                break
    assert failed / runs <= 0.05, failed
    good = {f"c{k}": (90, 100) for k in range(9)}
    assert conditions.gate(gate, gate_metrics(_classes({**good, "bad": (40, 100)}))).outcome == "fail"


def test_the_candidates_p99_over_too_few_of_its_calls_is_not_judged():
    """The budget judges its p99 from MIN_BUDGET_CALLS calls; a gate on candidate_p99_ms read the one slow
    call of a cold replica as the p99, and a watched gate rolled the rollout back on it."""
    first = {"candidate_requests": 1.0, "candidate_p99_ms": 3000.0}
    early = conditions.gate(Gate(metric="candidate_p99_ms", max=500), first)
    assert early.outcome == "inconclusive" and early.detail == "3000 over 1 candidate_requests so far; judged from 20"
    judged = {"candidate_requests": 20.0, "candidate_p99_ms": 3000.0}
    assert conditions.gate(Gate(metric="candidate_p99_ms", max=500), judged).outcome == "fail"


def test_budget_condition():
    b = Budget(max_error_rate=0.05, max_p99_ms=500, window=50)
    assert conditions.budget(b, 10, 1.0, None).outcome == "inconclusive", "too few calls to judge"
    assert conditions.budget(b, 50, 0.04, 100).outcome == "pass"
    errors, slow = conditions.budget(b, 50, 0.10, 100), conditions.budget(b, 50, 0.0, 900)
    assert errors.outcome == "fail" and "error rate 10.0%" in errors.detail
    assert slow.outcome == "fail" and "p99 latency 900 ms" in slow.detail
    assert errors.on_fail == slow.on_fail == "rollback"
    # No call of the window timed (each failed, under a budget that allows it): no p99 to show, not 0 ms.
    untimed = conditions.budget(Budget(max_error_rate=1.0, max_p99_ms=500, window=50), 50, 1.0, None)
    assert untimed.outcome == "pass" and untimed.detail == "error rate 100.0%, p99 n/a over the last 50 calls"


def test_analysis_condition_carries_its_result():
    from analysis import AnalysisResult

    from analysis import AnalysisSpec
    from analysis.paired import Counts, decide

    result = decide("quality", AnalysisSpec(margin=0.05), Counts(300, 30, 30, 60), {})
    judged = conditions.judge((AnalysisRef(analysis="quality", on_fail="pause"),), {}, {"quality": result})[0]
    assert (judged.outcome, judged.on_fail, judged.analysis) == ("inconclusive", "pause", result)
    # The summary says how many more verdicts: said again, the detail read "...; about N more verdicts (about N
    # more verdicts wanted)".
    assert judged.detail == result.summary and judged.detail.count(f"about {result.needed} more verdicts") == 1


def test_a_gate_at_its_bound_passes():
    """`agreement >= 0.5` holds at 0.5, and the shipped plan's watched `drift_alarm <= 0` at 0: read strictly,
    a calm drift check would pause every rollout."""
    assert conditions.gate(Gate(metric="agreement", min=0.5), {"compared": 100.0, "agreement": 0.5}).outcome == "pass"
    assert conditions.gate(Gate(metric="drift_alarm", max=0), {"drift_alarm": 0.0}).outcome == "pass"
    assert conditions.gate(Gate(metric="drift_alarm", max=0), {"drift_alarm": 1.0}).outcome == "fail"


def test_a_count_past_its_max_fails():
    """A count only grows: below a min it is evidence still arriving, past a max it stays past."""
    assert conditions.gate(Gate(metric="requests", max=100), {"requests": 101.0}).outcome == "fail"


def test_the_budget_is_judged_from_its_least_calls_and_holds_at_its_limits():
    b = Budget(max_error_rate=0.05, max_p99_ms=500, window=50)
    assert conditions.budget(b, 20, 0.10, 100).outcome == "fail", "20 calls are MIN_BUDGET_CALLS: judged"
    assert conditions.budget(b, 50, 0.05, 500).outcome == "pass", "at the budget is within it"


def test_a_limited_step_without_regions_says_how_to_give_them_when_skipped_too(plan):
    """Its refusal said "give --regions", which a promotion past it to a gradual step refuses."""
    limited = plan.steps[1].model_copy(update={"limited": plan.steps[1].limited.model_copy(update={"regions": ()})})
    open_regions = plan.model_copy(update={"steps": (plan.steps[0], limited, *plan.steps[2:])})
    s = start_on(open_regions, 0)
    for target, regions in ((2, None), (1, None)):
        with pytest.raises(TransitionError, match="needs regions: promote to it with --regions, or set them in the plan"):
            stages.advance(s, open_regions, target, 0, regions)
    assert stages.advance(s, open_regions, 1, 0, ("eu-west",)).regions == ("eu-west",)


def test_an_empty_list_of_regions_is_refused_not_read_as_the_plans(plan):
    """The CLI refused `--regions ''`, but the control plane read an empty list (the API's `"regions": []`)
    as none given, and a limited step took the plan's regions, which nobody had asked for."""
    s = start_on(plan, 0)
    with pytest.raises(TransitionError, match="regions given as an empty list"):
        stages.advance(s, plan, 1, 0, ())
    assert stages.advance(s, plan, 1, 0, None).regions == plan.steps[1].limited.regions


def test_a_latency_or_share_over_a_handful_of_requests_is_not_judged():
    """One slow call read as the champion's p99, one flagged photo as an out-of-domain share of 1."""
    slow, ood = Gate(metric="champion_p99_ms", max=500), Gate(metric="ood_share", max=0.3)
    assert conditions.gate(slow, {"champion_p99_ms": 900.0, "champion_requests": 3.0}).outcome == "inconclusive"
    assert conditions.gate(slow, {"champion_p99_ms": 900.0, "champion_requests": 20.0}).outcome == "fail"
    assert conditions.gate(ood, {"ood_share": 1.0, "requests": 1.0}).outcome == "inconclusive"
    assert conditions.gate(ood, {"ood_share": 1.0, "requests": 20.0}).outcome == "fail"
    step_ood = Gate(metric="step_ood_share", max=0.3)
    # Counted by the step's requests: the rollout's many say nothing of a share over the step's first few.
    short = {"step_ood_share": 1.0, "step_requests": MIN_BUDGET_CALLS - 1.0, "requests": 500.0}
    assert conditions.gate(step_ood, short).outcome == "inconclusive"
    assert conditions.gate(step_ood, {**short, "step_requests": float(MIN_BUDGET_CALLS)}).outcome == "fail"

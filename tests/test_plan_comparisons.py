"""A plan's gates on comparisons (compared, agreement and their step_ forms) and on verdicts, and its analyses,
stand only on steps where the models are compared: a shadow step's sample, which holds on the steps after it.
Elsewhere such a gate read inconclusive for ever, and as an exit held its step until someone forced the
promotion: refused at load, naming its key."""

from __future__ import annotations

import pytest

from roomsight.errors import PlanError
from roomsight.registry import ModelRef
from roomsight.rollout_state import RoutingState
from rollout import stages
from rollout.plan import load_plan
from tests.test_plan_steps import steps_plan

LIMITED = "- limited: {regions: [eu-west]}\n"
ANALYSES = "analyses: {quality: {margin: 0.05}}\n"


@pytest.mark.parametrize("steps, extra, key, step", [
    # No shadow step: the candidate's answers are never compared with the champion's.
    (LIMITED + "  exit: [{metric: compared, min: 30}]\n- full: {}\n", "", "steps.0.exit.0.metric", 0),
    (LIMITED + "  watch: [{metric: agreement, min: 0.5}]\n- full: {}\n", "", "steps.0.watch.0.metric", 0),
    (LIMITED + "- gradual: {percent: 50}\n  exit: [{metric: step_agreement, min: 0.5}]\n- full: {}\n", "",
     "steps.1.exit.0.metric", 1),
    # A shadow step of no sample compares nothing, in it or after it.
    ("- shadow: {sample: 0}\n  exit: [{metric: step_compared, min: 30}]\n- full: {}\n", "", "steps.0.exit.0.metric", 0),
    ("- shadow: {sample: 0}\n" + LIMITED + "  exit: [{metric: agreement, min: 0.5}]\n- full: {}\n", "",
     "steps.1.exit.0.metric", 1),
    # Watched plan-wide, where the candidate answers users: after every shadow step.
    (LIMITED + "- full: {}\n", "watch: [{metric: agreement, min: 0.5}]\n", "watch.0.metric", None),
    # Verdicts come from the review queue, which samples compared requests only; so do the analyses.
    (LIMITED + "  exit: [{metric: reviewed, min: 30}]\n- full: {}\n", "", "steps.0.exit.0.metric", 0),
    (LIMITED + "  exit: [{metric: precision_margin, min: 0}]\n- full: {}\n", "", "steps.0.exit.0.metric", 0),
    (LIMITED + "  watch: [{analysis: quality}]\n- full: {}\n", ANALYSES, "steps.0.watch.0.analysis", 0),
], ids=["no-shadow-exit", "no-shadow-watch", "no-shadow-later-step", "sample-0-itself", "sample-0-after", "plan-wide",
        "verdicts", "review-margin", "analysis"])
def test_a_gate_on_comparisons_where_nothing_is_compared_is_refused(tmp_path, steps, extra, key, step):
    with pytest.raises(PlanError, match=r"both models answered.*no shadow step before it sets a `sample`") as info:
        load_plan(steps_plan(tmp_path, steps, extra))
    assert (info.value.key, info.value.step) == (key, step)


def test_a_shadow_sample_holds_on_the_steps_after_it_so_their_gates_on_comparisons_load(tmp_path):
    steps = ("- shadow: {sample: 0.1}\n  exit: [{metric: compared, min: 30}]\n"
             + LIMITED + "  exit: [{metric: step_compared, min: 30}, {metric: step_agreement, min: 0.5}]\n"
             "- gradual: {percent: 50}\n  watch: [{metric: agreement, min: 0.5}]\n- full: {}\n")
    plan = load_plan(steps_plan(tmp_path, steps, "watch: [{metric: agreement, min: 0.5}]\n"))
    # ... as the rollout's state carries it: what routing samples from.
    state = stages.start(RoutingState(champion=ModelRef("m", "1")), ModelRef("m", "2"), "r", plan, now=0)
    for target in range(1, len(plan.steps)):
        state = stages.advance(state, plan, target, now=target)
        assert state.shadow_sample == 0.1, plan.step_label(target)


def test_without_a_shadow_step_the_rollout_samples_nothing_to_compare():
    """What the refusal stands on: a plan that begins with limited starts at a sample of 0 and no later
    step sets one."""
    plan = load_plan().unconditional()
    no_shadow = plan.model_copy(update={"steps": plan.steps[1:]})
    state = stages.start(RoutingState(champion=ModelRef("m", "1")), ModelRef("m", "2"), "r", no_shadow, now=0)
    assert state.shadow_sample == 0.0
    for target in range(1, len(no_shadow.steps)):
        state = stages.advance(state, no_shadow, target, now=target)
        assert state.shadow_sample == 0.0, no_shadow.step_label(target)


@pytest.mark.parametrize("gates, key", [
    ("gates:\n  limited: [{metric: compared, min: 30}]\n", "gates.limited.0.metric"),
    ("gates:\n  gradual: [{metric: candidate_served, min: 1}, {metric: agreement, min: 0.5}]\n",
     "gates.gradual.1.metric"),
    ("gates:\n  full: [{analysis: quality}]\n", "gates.full.0.analysis"),
])
def test_an_old_plan_that_compares_nothing_names_its_own_gate(tmp_path, gates, key):
    """An old plan's `shadow: {sample: 0}` with a gate on comparisons was refused by the steps it became
    ("steps.0 (shadow).exit.0"), keys the old file does not have."""
    from tests.test_plan_steps import plan_file

    old = plan_file(tmp_path, "regions: [eu-west]\nshadow: {sample: 0}\nlimited: {regions: [eu-west]}\n"
                    + ANALYSES + gates)
    # The advice is the old file's too: it has a `shadow` section to raise the sample of, no shadow step to add.
    with pytest.raises(PlanError, match=r"both models answered.*`shadow: \{sample: 0\}` compares none") as info:
        load_plan(old)
    assert info.value.key == key and f"{key.rsplit('.', 1)[0]}: " in str(info.value) and "steps." not in str(info.value)


@pytest.mark.parametrize("steps, key, message", [
    # The candidate answers users from the first limited step on: before, it serves none, whatever it shadows.
    ("- shadow: {sample: 1.0}\n  exit: [{metric: candidate_served, min: 20}]\n" + LIMITED + "- full: {}\n",
     "steps.0.exit.0.metric", r"candidate_served counts the candidate's answers to users, and it answers none"),
    ("- shadow: {sample: 0.5}\n- pause: {}\n  exit: [{metric: step_candidate_served, min: 20}]\n" + LIMITED
     + "- full: {}\n", "steps.1.exit.0.metric", r"step_candidate_served counts the candidate's answers"),
    # With no sample it makes no call at all there: its error rate, latency and calls never come.
    ("- shadow: {sample: 0}\n  exit: [{metric: candidate_error_rate, max: 0.02}]\n" + LIMITED + "- full: {}\n",
     "steps.0.exit.0.metric", r"candidate_error_rate is read from the candidate's calls, and it makes none"),
    ("- shadow: {sample: 0}\n  watch: [{metric: candidate_p99_ms, max: 900}]\n" + LIMITED + "- full: {}\n",
     "steps.0.watch.0.metric", r"candidate_p99_ms is read from the candidate's calls"),
], ids=["served-in-shadow", "served-in-pause-before-limited", "calls-at-sample-0", "p99-at-sample-0"])
def test_a_gate_on_the_candidates_work_where_it_does_none_is_refused(tmp_path, steps, key, message):
    with pytest.raises(PlanError, match=message) as info:
        load_plan(steps_plan(tmp_path, steps))
    assert info.value.key == key


def test_the_candidates_calls_are_judged_where_it_shadows_or_serves(tmp_path):
    steps = ("- shadow: {sample: 0.1}\n"
             "  exit: [{metric: candidate_error_rate, max: 0.02}, {metric: step_candidate_requests, min: 20}]\n"
             + LIMITED + "  exit: [{metric: step_candidate_served, min: 20}]\n- full: {}\n")
    assert load_plan(steps_plan(tmp_path, steps, "watch: [{metric: candidate_served, min: 1}]\n"))
    unsampled = ("- shadow: {sample: 0}\n" + LIMITED + "  exit: [{metric: candidate_error_rate, max: 0.02}]\n"
                 "- full: {}\n")
    assert load_plan(steps_plan(tmp_path, unsampled))


def test_an_old_plan_names_its_own_gate_on_answers_the_shadow_step_never_gives(tmp_path):
    from tests.test_plan_steps import plan_file

    served = "[{metric: candidate_served, min: 20}]"
    old = plan_file(tmp_path, f"regions: [eu-west]\nlimited: {{regions: [eu-west]}}\ngates:\n  limited: {served}\n"
                    f"  gradual: {served}\n")
    with pytest.raises(PlanError, match=r"gates\.limited\.0: candidate_served counts") as info:
        load_plan(old)
    assert info.value.key == "gates.limited.0.metric"

"""A plan said in words, step by step, for `rollout plan show` and the rollout report."""

from __future__ import annotations

from typing import Any

from roomsight.durations import format_duration
from roomsight.rollout_state import RoutingState, Stage
from rollout.metrics import METRICS
from rollout.plan import AnalysisRef, Condition, Gate, Plan, Step


def describe_condition(cond: Condition, plan: Plan) -> str:
    if isinstance(cond, AnalysisRef):
        return f"analysis {cond.analysis!r} passes ({plan.analyses[cond.analysis].describe()})"
    assert isinstance(cond, Gate)
    bound = f"at least {cond.min:g}" if cond.min is not None else f"at most {cond.max:g}"
    return f"{cond.metric} {bound} ({METRICS[cond.metric]})"


def step_line(step: Step) -> str:
    """One step in words: its kind and what traffic it sets."""
    kind = step.kind
    if kind is Stage.SHADOW:
        return (f"shadow: the champion answers every request; the candidate also runs on {step.shadow.sample:.0%} "
                "of them, off the critical path, and both answers are logged.")
    if kind is Stage.LIMITED:
        where = ", ".join(step.limited.regions) or "the regions named at promotion"
        return f"limited: the candidate answers {step.limited.percent:g}% of listings in {where}; the champion the rest."
    if kind is Stage.GRADUAL:
        return (f"gradual: the candidate answers {step.gradual.percent:g}% of listings everywhere "
                "(and keeps its limited regions); the champion the rest.")
    if kind is Stage.PAUSE:
        # `auto_advance` on an untimed pause times it as a duration would: the guard moves on, not a person.
        how = "until someone promotes" if step.wait_s is None else f"for {format_duration(step.wait_s)}"
        return f"pause: traffic stays as it is {how}."
    return "full: the candidate becomes the champion."


def as_recorded(plan: Plan) -> dict[str, Any]:
    """The plan's name and its steps in words, as a rollout's start records them: its report names the steps the
    rollout had, whatever the plan file says by then."""
    return {"name": plan.name, "steps": [step_line(step) for step in plan.steps]}


def describe(plan: Plan) -> list[str]:
    lines = [f"Plan {plan.name!r} for regions {', '.join(plan.regions)}, in {len(plan.steps)} steps:"]
    for i, step in enumerate(plan.steps):
        lines.append(f"{i + 1}. {step_line(step)}")
        for cond in step.watch:
            lines.append(f"   Watched on this step: {describe_condition(cond, plan)}{_on_fail(cond, step)}.")
        if step.exit:
            lines.append("   To leave it: " + "; ".join(describe_condition(c, plan) for c in step.exit) + ".")
        elif step.kind is not Stage.FULL:
            lines.append("   To leave it: nothing beyond a promotion.")
        if step.auto_advance:
            lines.append(f"   After {format_duration(step.auto_advance.after)} on it, the guard promotes by itself once "
                         "the conditions to leave it pass.")
        elif step.kind is Stage.PAUSE and step.pause.duration is not None:
            lines.append("   When the time is up, the guard moves on by itself once the conditions to leave it pass.")
    b = plan.budget
    lines.append(f"While the candidate answers users, the guard watches, every few seconds: errors above "
                 f"{b.max_error_rate:.0%} or p99 latency above {b.max_p99_ms:g} ms over its last {b.window} calls "
                 "(rolls back)" + "".join(f"; {describe_condition(c, plan)}{_plan_on_fail(c, plan)}" for c in plan.watch) + ".")
    if plan.hold_ood_on_champion:
        lines.append("Out-of-domain photos stay on the champion while the candidate answers users; the candidate sees "
                     "them in shadow only.")
    lines.append("Listings are assigned to the candidate by a hash of the listing id and the rollout id: "
                 "sticky, and a listing never moves back as the share grows.")
    if plan.analyses:
        lines.append("Analyses read pass, fail or inconclusive (too little evidence yet); only pass lets a step end.")
    return lines


def _on_fail(cond: Condition, step: Step | None) -> str:
    action = cond.on_fail or (step.on_fail if step else "rollback")
    return " (a failure rolls back)" if action == "rollback" else " (a failure pauses the rollout for a person to decide)"


def _plan_on_fail(cond: Condition, plan: Plan) -> str:
    """What a failure of a plan-wide watched condition does: its own on_fail, else that of the step it fails
    on (rollout.assess), among the steps where the candidate answers users (from the first limited one)."""
    if cond.on_fail:
        return _on_fail(cond, None)
    first = next((i for i, s in enumerate(plan.steps) if s.kind is Stage.LIMITED), len(plan.steps))
    actions = {s.on_fail for s in plan.steps[first:] if s.kind is not Stage.FULL}
    if len(actions) > 1:
        return " (a failure rolls back or pauses, as the step's on_fail says)"
    return _on_fail(cond, plan.steps[first] if actions else None)


def step_label(plan: Plan, state: RoutingState) -> str:
    """'3/7 gradual 40%': the plan step a state is on, with the traffic the state has there (an override
    included); the stage alone outside a rollout."""
    if state.step is None or state.rollout_id is None or state.step >= len(plan.steps):
        return state.stage.value
    base = f"{state.step + 1}/{len(plan.steps)} {state.stage}"
    if state.stage is Stage.LIMITED:
        return f"{base} {', '.join(state.regions)} {state.region_percent:g}%"
    return f"{base} {state.percent:g}%" if state.stage is Stage.GRADUAL else base

"""The order a rollout can take a plan's steps in: traffic only grows, a step the guard enters on its own
needs nothing a person would give at promotion, and a step asks only for evidence its traffic can give.
Each problem names its step and key."""

from __future__ import annotations

from typing import TYPE_CHECKING

from roomsight.errors import PlanError
from roomsight.rollout_state import Stage
from rollout.metrics import SOURCES

if TYPE_CHECKING:
    from rollout.plan import Condition, Step

# Metrics that only requests both models answered give (rollout.metrics): the comparisons, and the verdicts,
# since the review queue samples compared requests only (monitoring.review.sampling).
COMPARISON_METRICS = frozenset({"compared", "agreement", "step_compared", "step_agreement"}) | SOURCES["review"]


def _step_error(i: int, step: Step, message: str, key: str = "") -> PlanError:
    """A problem with step `i`, named for people ("steps.2 (gradual).gradual.percent: ...") and as a key."""
    return PlanError(f"steps.{i} ({step.kind}){key}: {message}", f"steps.{i}{key}", i)


def check_order(steps: tuple[Step, ...], regions: tuple[str, ...]) -> None:
    """Steps in an order a rollout can take: traffic only grows (a listing never moves back to the champion)."""
    if not steps:
        raise PlanError("`steps` is empty: a plan needs at least a full step", "steps")
    if steps[-1].kind is not Stage.FULL:
        raise _step_error(len(steps) - 1, steps[-1], "the last step must be `full`, which makes the candidate the "
                          "champion")
    answering, limited, gradual_pct = False, None, 0.0
    for i, step in enumerate(steps):
        kind = step.kind
        if step.auto_advance and (kind is Stage.FULL or (step.pause is not None and step.pause.duration is not None)):
            raise _step_error(i, step, "the guard would not follow it: `full` ends the rollout, and a pause with a "
                              "`duration` moves on when that ends (give one or the other)", ".auto_advance")
        if kind is Stage.FULL and i != len(steps) - 1:
            raise _step_error(i, step, "`full` can only be the last step")
        if kind is Stage.FULL and (step.exit or step.watch):
            # The rollout ends on entering it: nothing would ever judge them, though the plan in words listed them.
            part = "exit" if step.exit else "watch"
            raise _step_error(i, step, f"`full` ends the rollout, so its {part} would never be judged; what must hold "
                              "to reach it is the exit of the step before it", f".{part}")
        if kind is Stage.PAUSE and i == 0:
            raise _step_error(i, step, "a pause holds the traffic of the step before it, and the first step has none")
        if kind is Stage.SHADOW and answering:
            raise _step_error(i, step, "shadow after the candidate has answered users would take listings back; "
                              "shadow steps come first")
        if kind is Stage.LIMITED:
            if gradual_pct:
                raise _step_error(i, step, "limited after gradual would take listings back; limited steps come "
                                  "before gradual")
            unknown = sorted(set(step.limited.regions) - set(regions))
            if unknown:
                raise _step_error(i, step, f"{unknown} are not in the plan's `regions`", ".limited.regions")
            if limited is not None and (not set(limited.regions) <= set(step.limited.regions or limited.regions)
                                        or step.limited.percent < limited.percent):
                raise _step_error(i, step, "a later limited step may widen the regions or raise the percent, not "
                                  "shrink them", ".limited")
            if not (step.limited.regions or (limited and limited.regions)) and i and steps[i - 1].wait_s is not None:
                raise _step_error(i, step, "its regions are named at promotion (--regions), but the step before "
                                  "advances on its own, where no one names them: give them here", ".limited.regions")
            if not step.limited.regions and i == 0:
                raise _step_error(i, step, "its regions are named at promotion (--regions), but the first step is "
                                  "entered by `rollout start`, which names none: give them here", ".limited.regions")
            limited, answering = step.limited, True
        if kind is Stage.GRADUAL:
            if limited is None:
                raise _step_error(i, step, "gradual before any limited step; the candidate first answers a limited "
                                  "region")
            if step.gradual.percent <= gradual_pct:
                raise _step_error(i, step, f"{step.gradual.percent:g} does not grow from the previous gradual "
                                  f"step's {gradual_pct:g} (listings never move back)", ".gradual.percent")
            gradual_pct, answering = step.gradual.percent, True


def comparing(steps: tuple[Step, ...]) -> list[bool]:
    """Whether, on each step, the other model also runs on a sample of the requests: a shadow step's `sample`
    holds on every step after it (rollout.stages), and before any shadow step there is none."""
    out: list[bool] = []
    sample = 0.0
    for step in steps:
        if step.shadow is not None:
            sample = step.shadow.sample
        out.append(sample > 0)
    return out


# The candidate's calls, which it makes on the compared sample and for the users it answers; and its answers
# to users alone (rollout.metrics). Where it makes none, a gate on them reads inconclusive for ever too.
CALL_METRICS = frozenset({"candidate_requests", "candidate_error_rate", "candidate_p99_ms", "step_candidate_requests",
                          "step_candidate_error_rate"})
SERVED_METRICS = frozenset({"candidate_served", "step_candidate_served"})
NO_SAMPLE = ("no shadow step before it sets a `sample` above 0 (it holds on the steps after it); add one, or drop "
             "the condition")


def answering(steps: tuple[Step, ...]) -> list[bool]:
    """Whether the candidate answers users on each step: from the first limited step on (check_order), a
    pause holding the traffic of the step before it."""
    out: list[bool] = []
    for step in steps:
        out.append(step.kind in (Stage.LIMITED, Stage.GRADUAL) or bool(out and out[-1]))
    return out


def unjudgeable(cond: Condition, compares: bool, answers: bool) -> tuple[str, str] | None:
    """Why `cond` could never be judged on a step where the models are compared on a sample (`compares`) and
    the candidate answers users (`answers`), and its field; None when it can be."""
    metric, analysis = getattr(cond, "metric", None), getattr(cond, "analysis", None)
    what, field = (f"analysis {analysis}", "analysis") if analysis else (metric, "metric")
    if (analysis or metric in COMPARISON_METRICS) and not compares:
        # Photos held on the champion as out-of-domain are still shadowed, but they are no sample of the
        # traffic: agreement over them alone is not what the gate asks.
        return (f"{what} is read from requests both models answered, and this step has the models compared on no "
                f"sample of them: {NO_SAMPLE}", field)
    if metric in SERVED_METRICS and not answers:
        return (f"{what} counts the candidate's answers to users, and it answers none on this step (it does from "
                "the first limited step on); move the condition to a step that serves users, or drop it", field)
    if metric in CALL_METRICS and not (compares or answers):
        return (f"{what} is read from the candidate's calls, and it makes none on this step: it answers no users, "
                f"and {NO_SAMPLE}", field)
    return None


def check_evidence(steps: tuple[Step, ...], conditions: list[tuple[str, str, int | None, Condition]]) -> None:
    """No condition on evidence its step's traffic never gives: comparisons, verdicts and analyses (they read
    verdicts) where nothing is compared, the candidate's calls where it makes none, its answers to users where
    it answers none. Each would read inconclusive for ever, and as an exit hold its step until someone forced
    the promotion. `conditions`: (where, key, step, condition), as Plan._conditions lists them; a plan-wide one
    (step None) is watched where the candidate answers users, after the shadow steps."""
    compares, answers = comparing(steps), answering(steps)
    for where, key, step, cond in conditions:
        found = unjudgeable(cond, compares[-1 if step is None else step], step is None or answers[step])
        if found is not None:
            raise PlanError(f"{where}: {found[0]}", f"{key}.{found[1]}", step)

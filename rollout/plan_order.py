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


def uncompared(cond: Condition) -> tuple[str, str] | None:
    """(what, field) of a condition read from requests both models answered; None for any other."""
    metric, analysis = getattr(cond, "metric", None), getattr(cond, "analysis", None)
    if analysis:
        return f"analysis {analysis}", "analysis"
    return (metric, "metric") if metric in COMPARISON_METRICS else None


NO_SAMPLE = ("no shadow step before it sets a `sample` above 0 (it holds on the steps after it); add one, or drop "
             "the condition")


def uncompared_error(where: str, what: str, why: str = NO_SAMPLE) -> str:
    # Photos held on the champion as out-of-domain are still shadowed, but they are no sample of the
    # traffic: agreement over them alone is not what the gate asks.
    return (f"{where}: {what} is read from requests both models answered, and this step has the models compared "
            f"on no sample of them: {why}")


def check_comparisons(steps: tuple[Step, ...], conditions: list[tuple[str, str, int | None, Condition]]) -> None:
    """No gate on comparisons or verdicts, nor an analysis (it reads verdicts), where nothing is compared: it
    would read inconclusive for ever, and as an exit hold its step until someone forced the promotion. `conditions`: (where, key, step, condition), as
    Plan._conditions lists them; a plan-wide one (step None) is watched after the shadow steps."""
    compares = comparing(steps)
    for where, key, step, cond in conditions:
        found = uncompared(cond)
        if found is not None and not compares[-1 if step is None else step]:
            raise PlanError(uncompared_error(where, found[0]), f"{key}.{found[1]}", step)

"""Step transitions as pure functions: routing state + plan + command -> the next routing state, or a
TransitionError saying why not. No I/O; the control plane stores what these return.

Moving to a later step applies the traffic of every step on the way, so skipping a step never skips the
regions it would have added, and traffic only grows: a listing once on the candidate stays there.
"""

from __future__ import annotations

from roomsight.errors import TransitionError
from roomsight.registry import ModelRef
from roomsight.rollout_state import RoutingState, Stage
from rollout.plan import Plan, Step
from rollout.plan_identity import comparable, fingerprint
from rollout.plan_text import step_label


def start(state: RoutingState, candidate: ModelRef, rollout_id: str, plan: Plan, now: float) -> RoutingState:
    if state.in_progress:
        raise TransitionError(f"rollout {state.rollout_id} is in {state.stage} with candidate "
                              f"{state.candidate.uri if state.candidate else '?'}: promote it to full or roll it back first")
    if candidate == state.champion:
        raise TransitionError(f"{candidate.uri} is already the champion")
    begun = RoutingState(champion=state.champion, stage=Stage.SHADOW, candidate=candidate, rollout_id=rollout_id,
                         step=0, since=now, shadow_sample=0.0, hold_ood_on_champion=plan.hold_ood_on_champion,
                         previous_champion=state.previous_champion, plan_fingerprint=fingerprint(plan))
    return _apply(begun, plan, 0, now)


def target_step(state: RoutingState, plan: Plan, stage: str | None = None) -> int:
    """The step a promotion goes to: the next one, or with `stage` the first later step of that kind.
    Gradual steps the share has already passed (a --percent override) are skipped."""
    current = _current(state, plan)
    later = [i for i in range(current + 1, len(plan.steps))
             if not (plan.steps[i].kind is Stage.GRADUAL and plan.steps[i].gradual.percent <= state.percent)]
    if stage is not None and stage not in {k.value for k in Stage} - {Stage.STABLE.value}:
        raise TransitionError(f"unknown stage {stage!r}; {_targets(plan, later)}")
    for i in later:
        if stage is None or plan.steps[i].kind.value == stage:
            return i
    # The step as the rollout stands (an override's regions and percent), as `rollout status` says it:
    # the plan's own words for the step would not match what the user just did.
    where = step_label(plan, state)
    if stage is None:
        raise TransitionError(f"no later step in the plan after step {where}; the rollout is complete")
    raise TransitionError(f"no later {stage} step in the plan after step {where}; {_targets(plan, later)}")


def _targets(plan: Plan, later: list[int]) -> str:
    """The stage kinds a promotion can still reach, in plan order: naming any other would only fail next."""
    kinds = list(dict.fromkeys(plan.steps[i].kind.value for i in later))
    return f"promote to one of {', '.join(kinds)}" if kinds else "no later step in the plan to promote to"


def advance(state: RoutingState, plan: Plan, target: int, now: float, regions: tuple[str, ...] | None = None,
            percent: float | None = None) -> RoutingState:
    """The state on step `target` (after the current one), with optional overrides of that step's traffic."""
    current = _current(state, plan)
    if not current < target < len(plan.steps):
        raise TransitionError(f"step {target + 1} does not follow step {step_label(plan, state)}")
    if regions is not None and not regions:
        # Read as absent, an empty list (`"regions": []` over the API) moved listings to the plan's regions, unasked.
        raise TransitionError("regions given as an empty list: name at least one, or leave them out for the step's own")
    if percent is not None and not 0 < percent <= 100:
        raise TransitionError(f"--percent must be in (0, 100], got {percent:g}")
    kind = plan.steps[target].kind
    if regions is not None and kind is not Stage.LIMITED:
        raise TransitionError(f"--regions applies to a limited step; step {plan.step_label(target)} is {kind}")
    if percent is not None and kind not in (Stage.LIMITED, Stage.GRADUAL):
        raise TransitionError(f"--percent applies to limited and gradual steps; step {plan.step_label(target)} is {kind}")
    out = state
    for i in range(current + 1, target + 1):
        last = i == target
        passed = plan.steps[i].gradual is not None and plan.steps[i].gradual.percent <= out.percent
        if not last and passed:
            continue  # a --percent override went past this step already
        out = _apply(out, plan, i, now, regions if last else None, percent if last else None)
    return out.evolve(held=None)


def exits_to_check(state: RoutingState, target: int) -> range:
    """The steps whose exit conditions a move to `target` must pass: the current one and every one skipped."""
    return range(state.step or 0, target)


def next_promotion(state: RoutingState, plan: Plan) -> tuple[int | None, range]:
    """The step the next promotion goes to (None: none can be made) and the steps whose exit conditions it
    must pass (the current one alone when there is nowhere to go), as `status` and the guard judge them."""
    try:
        target = target_step(state, plan)
    except TransitionError:
        return None, range(state.step or 0, (state.step or 0) + 1)
    return target, exits_to_check(state, target)


def hold(state: RoutingState, reason: str) -> RoutingState:
    """The guard's pause: traffic stays as it is and nothing advances by itself until someone acts."""
    if not state.in_progress:
        raise TransitionError("no rollout in progress to pause")
    return state.evolve(held=reason)


def rollback(state: RoutingState) -> RoutingState:
    """Take the candidate off all traffic; after `full`, restore the previous champion."""
    if state.in_progress:
        return RoutingState(champion=state.champion, previous_champion=state.previous_champion,
                            shadow_sample=state.shadow_sample, hold_ood_on_champion=state.hold_ood_on_champion)
    # Only right after full: a rollback mid-rollout keeps the previous champion of an older rollout, and a
    # second rollback (a person's, landing just after the guard's) would demote a champion nobody questioned.
    if state.stage is Stage.FULL and state.previous_champion is not None:
        return RoutingState(champion=state.previous_champion, shadow_sample=state.shadow_sample,
                            hold_ood_on_champion=state.hold_ood_on_champion)
    raise TransitionError("nothing to roll back: no rollout in progress, and the last one did not end in full "
                          "(or was rolled back already)")


def off_plan(state: RoutingState, plan: Plan) -> str | None:
    """Why `plan` is not the plan the rollout is on, with what to do, or None when it is. `step` indexes the
    plan the rollout started with; a plan changed since (a step taken out or put in before it, a share or a
    duration changed) names another step at that index: its conditions and the steps after it are not the
    rollout's, and a promotion from there skips the traffic of steps it never took. A rollout started before
    fingerprints were kept is compared by the kind of its step alone, one from before plan steps (no step)
    not at all, and a state outside a rollout has no plan to be on."""
    if state.step is None or not state.in_progress:
        return None
    where = f"the rollout is on step {state.step + 1}"
    if state.step >= len(plan.steps):
        why = f"{where}, but plan {plan.name!r} has {len(plan.steps)} steps"
    elif plan.steps[state.step].kind is not state.stage:
        why = f"{where}, a {state.stage} step, but step {state.step + 1} of plan {plan.name!r} is {plan.steps[state.step].kind}"
    elif comparable(state.plan_fingerprint) and state.plan_fingerprint != (now := fingerprint(plan)):
        why = (f"{where} of the plan it started with (steps {state.plan_fingerprint}), but plan {plan.name!r} has other "
               f"steps ({now}: a step taken out or put in, or a kind, share, region or duration changed)")
    else:
        return None
    return (f"{why}: was the plan changed during the rollout? Roll back, or restore the plan it started with "
            "(`rollout plan show` prints a plan's fingerprint); until then nothing promotes it, the guard included")


def _current(state: RoutingState, plan: Plan) -> int:
    if not state.in_progress or state.candidate is None:
        raise TransitionError("no rollout in progress: start one with `rollout start --candidate URI`")
    why = off_plan(state, plan)
    if why is not None:
        raise TransitionError(why)
    return state.step or 0  # a row from before plan steps has no step: it is on the first


def _apply(state: RoutingState, plan: Plan, index: int, now: float, regions: tuple[str, ...] | None = None,
           percent: float | None = None) -> RoutingState:
    step: Step = plan.steps[index]
    kind = step.kind
    moved = state.evolve(stage=kind, step=index, since=now)
    if kind is Stage.SHADOW:
        return moved.evolve(shadow_sample=step.shadow.sample)
    if kind is Stage.PAUSE:
        return moved
    if kind is Stage.LIMITED:
        chosen = tuple(regions) if regions else (step.limited.regions or state.regions)
        if not chosen:
            # Said for a step skipped on the way too, where --regions (which names the target's) cannot help.
            raise TransitionError(f"step {plan.step_label(index)} needs regions: promote to it with --regions, or set "
                                  "them in the plan")
        plan.check_regions(chosen)
        pct = percent if percent is not None else step.limited.percent
        if not set(state.regions) <= set(chosen) or pct < state.region_percent:
            raise TransitionError("limited can widen (more regions, higher percent) but not shrink: listings never move "
                                  "back; roll back instead")
        return moved.evolve(regions=chosen, region_percent=pct)
    if kind is Stage.GRADUAL:
        pct = percent if percent is not None else step.gradual.percent
        if pct <= state.percent:
            raise TransitionError(f"gradual is at {state.percent:g}%; a step must grow it (listings never move back)")
        # The limited regions stay the candidate's, whole: moving on never takes a listing back.
        return moved.evolve(percent=pct, region_percent=100.0 if state.regions else 0.0)
    assert kind is Stage.FULL and state.candidate is not None
    return RoutingState(champion=state.candidate, stage=Stage.FULL, rollout_id=state.rollout_id, step=index, since=now,
                        previous_champion=state.champion, shadow_sample=state.shadow_sample,
                        hold_ood_on_champion=state.hold_ood_on_champion, plan_fingerprint=state.plan_fingerprint)

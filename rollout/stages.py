"""Stage transitions as pure functions: current routing state + command -> next routing state, or a
TransitionError saying why not. No I/O; the control plane stores what these return."""

from __future__ import annotations

from roomsight.registry import ModelRef
from rollout.plan import Plan
from serving.routing import RoutingState, Stage

ORDER = {Stage.STABLE: 0, Stage.SHADOW: 1, Stage.LIMITED: 2, Stage.GRADUAL: 3}
TARGETS = ("limited", "gradual", "full")


class TransitionError(ValueError):
    """The command does not apply to the current stage; the message says what would."""


def start(state: RoutingState, candidate: ModelRef, rollout_id: str, plan: Plan) -> RoutingState:
    if state.stage is not Stage.STABLE:
        raise TransitionError(f"rollout {state.rollout_id} is in {state.stage} with candidate "
                              f"{state.candidate.uri if state.candidate else '?'}: promote it to full or roll it back first")
    if candidate == state.champion:
        raise TransitionError(f"{candidate.uri} is already the champion")
    return state.evolve(stage=Stage.SHADOW, candidate=candidate, rollout_id=rollout_id, regions=(), percent=0.0,
                        shadow_sample=plan.shadow.sample, hold_ood_on_champion=plan.hold_ood_on_champion)


def promote(state: RoutingState, target: str, plan: Plan, regions: tuple[str, ...] | None = None,
            percent: float | None = None) -> RoutingState:
    if target not in TARGETS:
        raise TransitionError(f"unknown stage {target!r}; promote to one of {', '.join(TARGETS)}")
    if state.stage is Stage.STABLE or state.candidate is None:
        raise TransitionError("no rollout in progress: start one with `rollout start --candidate URI`")
    if percent is not None and not 0 < percent <= 100:
        raise TransitionError(f"--percent must be in (0, 100], got {percent:g}")

    if target == "limited":
        if state.stage not in (Stage.SHADOW, Stage.LIMITED):
            raise TransitionError(f"limited follows shadow; the rollout is already in {state.stage}")
        chosen = tuple(regions) if regions else plan.limited.regions
        if not chosen:
            raise TransitionError("limited needs regions: give --regions or set limited.regions in the plan")
        plan.check_regions(chosen)
        pct = percent if percent is not None else plan.limited.percent
        if state.stage is Stage.LIMITED:
            _no_shrink(set(state.regions) - set(chosen), pct, state.percent)
        return state.evolve(stage=Stage.LIMITED, regions=chosen, percent=pct)

    if target == "gradual":
        if state.stage not in (Stage.LIMITED, Stage.GRADUAL):
            raise TransitionError(f"gradual follows limited; the rollout is in {state.stage}")
        current = state.percent if state.stage is Stage.GRADUAL else 0.0
        if percent is None:
            nxt = [s for s in plan.gradual.steps if s > current]
            if not nxt:
                raise TransitionError(f"gradual is at {current:g}%, the plan's last step: promote to full")
            percent = nxt[0]
        if percent <= current:
            raise TransitionError(f"gradual is at {current:g}%; a step must grow it (listings never move back)")
        return state.evolve(stage=Stage.GRADUAL, percent=percent)

    # full
    if state.stage is not Stage.GRADUAL:
        raise TransitionError(f"full follows gradual; the rollout is in {state.stage}")
    return RoutingState(champion=state.candidate, previous_champion=state.champion,
                        shadow_sample=state.shadow_sample, hold_ood_on_champion=state.hold_ood_on_champion)


def rollback(state: RoutingState) -> RoutingState:
    """Take the candidate off all traffic; after `full`, restore the previous champion."""
    if state.stage is not Stage.STABLE:
        return RoutingState(champion=state.champion, previous_champion=state.previous_champion,
                            shadow_sample=state.shadow_sample, hold_ood_on_champion=state.hold_ood_on_champion)
    if state.previous_champion is not None:
        return RoutingState(champion=state.previous_champion, shadow_sample=state.shadow_sample,
                            hold_ood_on_champion=state.hold_ood_on_champion)
    raise TransitionError("nothing to roll back: no rollout in progress and no previous champion recorded")


def _no_shrink(dropped: set[str], new_pct: float, old_pct: float) -> None:
    if dropped or new_pct < old_pct:
        raise TransitionError("limited can widen (more regions, higher percent) but not shrink: listings never move back; "
                              "roll back instead")

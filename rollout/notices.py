"""The RolloutEvent of a committed change: what the notifier tells the outside world, taken from the same
outcome the MLflow record is written from (and naming the stages as that record does)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from roomsight.events import RolloutEvent
from serving.routing import Stage

if TYPE_CHECKING:
    from rollout.control import Outcome


def rollout_event(o: Outcome, actor: str, reason: str | None) -> RolloutEvent:
    # `step` arrives with plans as steps (#32): until the routing state holds one, events carry None.
    candidate = o.after.candidate or o.before.candidate
    return RolloutEvent(
        action=o.action, rollout_id=o.before.rollout_id or o.after.rollout_id or "",
        from_stage=o.before.stage.value,
        to_stage="full" if (o.action == "promote" and o.after.stage is Stage.STABLE) else o.after.stage.value,
        champion=o.after.champion.uri, candidate=candidate.uri if candidate else None, actor=actor,
        reason=reason or "", ts=time.time(), forced=o.forced, step=getattr(o.after, "step", None),
        regions=tuple(o.after.regions), percent=o.after.percent, numbers=dict(o.evidence),
        gates=tuple(g.to_dict() for g in o.gates), run_id=o.run_id)

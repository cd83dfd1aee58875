"""The RolloutEvent of a committed change: what the notifier tells the outside world, taken from the same
outcome the MLflow record is written from."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from roomsight.events import RolloutEvent
from rollout.records import candidate_of, rollout_of

if TYPE_CHECKING:
    from rollout.control import Outcome


def rollout_event(o: Outcome, actor: str, reason: str | None) -> RolloutEvent:
    candidate = candidate_of(o.before, o.after)
    return RolloutEvent(
        action=o.action, rollout_id=rollout_of(o.action, o.before, o.after),
        from_stage=o.before.stage.value, to_stage=o.after.stage.value, from_step=o.from_step, to_step=o.to_step,
        champion=o.after.champion.uri, candidate=candidate.uri if candidate else None, actor=actor,
        reason=reason or "", ts=time.time(), forced=o.forced, step=o.after.step,
        regions=tuple(o.after.regions), region_percent=o.after.region_percent, percent=o.after.percent,
        numbers=dict(o.evidence), conditions=tuple(g.to_dict() for g in o.gates), run_id=o.run_id)

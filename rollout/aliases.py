"""MLflow's view of routing: the `champion` and `candidate` aliases and each version's tags (stage, step,
regions, shares), derived from the routing state. Routing never reads them; people and tools do, so they
follow every change (rollout.control) and catch up when MLflow missed one (rollout.outbox)."""

from __future__ import annotations

from roomsight import registry
from roomsight.registry import CANDIDATE, CHAMPION
from roomsight.rollout_state import RoutingState


def move(model_name: str, before: RoutingState, after: RoutingState, step: str) -> None:
    """Make MLflow say what `after` says: who is champion, who is candidate (on plan step `step`), where; and
    tag the versions `before` routed to and `after` does not as rolled back (the candidate) or retired."""
    if registry.alias_version(model_name, CHAMPION) != after.champion.version:
        registry.set_alias(after.champion, CHAMPION)
    registry.set_version_tags(after.champion, {"stage": "champion", "regions": "all", "percent": "100"})
    if after.candidate is not None:
        registry.set_alias(after.candidate, CANDIDATE)
        registry.set_version_tags(after.candidate, {
            "stage": after.stage.value, "step": step, "regions": ",".join(after.regions),
            "region_percent": f"{after.region_percent:g}", "percent": f"{after.percent:g}",
            "rollout_id": after.rollout_id or ""})
    else:
        registry.delete_alias(model_name, CANDIDATE)
    for ref in {before.champion, before.candidate} - {after.champion, after.candidate, None}:
        assert ref is not None
        was_candidate = ref == before.candidate
        registry.set_version_tags(ref, {"stage": "rolled-back" if was_candidate else "retired", "percent": "0", "regions": ""})

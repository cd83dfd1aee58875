"""The rollout's configured series, as Prometheus metric families: the stage and step routed on, the models'
versions, and the candidate's share of each region's listings (RoutingState.candidate_share, the routing
rule itself). The Serve app's `/metrics` and the control API's both publish them, so either target alone
says where the rollout stands.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric

from roomsight.rollout_state import RoutingState, Stage


def rollout_families(state: RoutingState | None, regions: Iterable[str]) -> list[Metric]:
    """The rollout's configured series for `state`, with the candidate's share for each of `regions` and
    each region the state names; none before there is a state."""
    if state is None:
        return []
    stage = GaugeMetricFamily("roomsight_rollout_stage", "Rollout stage being routed on: 1 for the current one",
                              labels=["stage"])
    for s in Stage:
        stage.add_metric([s.value], 1.0 if s is state.stage else 0.0)
    step = GaugeMetricFamily("roomsight_rollout_step", "The plan step the rollout is on, counted from 1 (0: no rollout)")
    step.add_metric([], float(state.step + 1) if state.in_progress and state.step is not None else 0.0)
    info = InfoMetricFamily("roomsight_rollout", "The rollout being routed on and its models' versions",
                            value={"rollout_id": state.rollout_id or "", "champion": state.champion.version,
                                   "candidate": state.candidate.version if state.candidate else ""})
    share = GaugeMetricFamily("roomsight_rollout_candidate_share",
                              "Configured share of a region's listings the candidate answers (0 to 1)", labels=["region"])
    for region in sorted(set(regions) | set(state.regions)):
        share.add_metric([region], state.candidate_share(region))
    return [stage, step, info, share]

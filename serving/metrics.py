"""Prometheus metrics of one ingress replica, on its own registry so tests and replicas never share
counters by accident.

Every name starts with `roomsight_`. What the Serve app observes is counted here (answers by stage,
region and model; refusals; shadow outcomes; latency). What the rollout has configured is read from the
routing state at every scrape, as `roomsight_rollout_*` gauges (roomsight.rollout_metrics), so a
dashboard can set the candidate's configured share beside the share it actually answered. The control
plane's own series (conditions and analyses as judged, reviews pending) come from the control API
(rollout.api_metrics).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from roomsight.rollout_metrics import rollout_families
from roomsight.rollout_state import RoutingState

_LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24)
# A region is whatever a caller sends: past this many, new ones share one series, so a client cannot grow
# the replica's memory and the scrape without bound.
MAX_REGION_SERIES = 200
OTHER_REGIONS = "(other)"


class ServeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("roomsight_requests", "Answered predictions", ["stage", "region", "served_by"], registry=r)
        self.rejected = Counter("roomsight_rejected", "Requests refused with a 4xx", ["reason"], registry=r)
        self.disagreements = Counter("roomsight_disagreements", "Shadow comparisons that disagreed", ["stage", "region"], registry=r)
        self.shadow = Counter("roomsight_shadow", "Shadow calls by outcome", ["model", "status"], registry=r)
        self.fallbacks = Counter("roomsight_candidate_fallbacks", "Candidate failures answered by the champion", registry=r)
        self.ood = Counter("roomsight_ood_flags", "Out-of-domain flags raised", ["flag"], registry=r)
        self.latency = Histogram("roomsight_latency_seconds", "End-to-end latency inside the ingress", ["served_by"],
                                 buckets=_LATENCY_BUCKETS, registry=r)
        self.model_latency = Histogram("roomsight_model_latency_seconds", "Model replica call latency", ["model"],
                                       buckets=_LATENCY_BUCKETS, registry=r)
        self.shadow_inflight = Gauge("roomsight_shadow_inflight", "Shadow calls in flight", registry=r)
        self.log_pending = Gauge("roomsight_log_pending", "Prediction records not yet written", registry=r)
        self.answered_regions: set[str] = set()

    def region(self, region: str) -> str:
        """The region's label: itself, or OTHER_REGIONS once MAX_REGION_SERIES others have been seen."""
        if region in self.answered_regions:
            return region
        if len(self.answered_regions) < MAX_REGION_SERIES:
            self.answered_regions.add(region)
            return region
        return OTHER_REGIONS

    def answered(self, stage: str, region: str, served_by: str) -> None:
        self.requests.labels(stage, self.region(region), served_by).inc()

    def disagreed(self, stage: str, region: str) -> None:
        self.disagreements.labels(stage, self.region(region)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class RolloutCollector(Collector):
    """`rollout_families` of the state being routed on, at every scrape."""

    def __init__(self, state: Callable[[], RoutingState | None], regions: Iterable[str]) -> None:
        self._state, self._regions = state, regions

    def collect(self) -> Iterator[Metric]:
        yield from rollout_families(self._state(), list(self._regions))

"""Prometheus metrics of one ingress replica, on its own registry so tests and replicas never share
counters by accident."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24)


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

    def render(self) -> bytes:
        return generate_latest(self.registry)

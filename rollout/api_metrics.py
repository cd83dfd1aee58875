"""Prometheus metrics of the control plane, published by `rollout api` at `GET /metrics`.

Everything is read at scrape time, as the control plane judges it: `ControlPlane.status()` (the step,
the exit and watched conditions through `rollout.assess.judge`, the evidence) and the review queue's
counts. Nothing here computes a decision: `control_families` only turns a `Status` into series, so
/metrics, `rollout status` and the guard can never disagree. Outcomes are labelled gauges (1 for the
outcome a condition has now, 0 for the other two), so `== 1` selects the current one and a change of
outcome shows up as one series going to 0 and another to 1.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import get_args

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from analysis import Outcome
from monitoring.review import queue
from roomsight.rollout_metrics import rollout_families
from rollout.conditions import ConditionResult, overall
from rollout.control import ControlPlane, Status

OUTCOMES: tuple[str, ...] = get_args(Outcome)


def control_families(status: Status, regions: Iterable[str], reviews: queue.Progress | None) -> list[Metric]:
    """The rollout's series for a status (pure): where it stands, each condition's and each analysis's
    outcome, the evidence numbers, and the rollout's review items (`reviews`: none outside a rollout)."""
    state = status.state
    out = rollout_families(state, regions)

    started = GaugeMetricFamily("roomsight_rollout_step_started_seconds", "When the current step began (unix seconds)")
    held = GaugeMetricFamily("roomsight_rollout_held", "1 while the guard holds the rollout where it is (a pause)")
    if state.in_progress:
        if state.since is not None:
            started.add_metric([], state.since)
        held.add_metric([], 1.0 if state.held else 0.0)
    out += [started, held]

    conditions = GaugeMetricFamily(
        "roomsight_rollout_condition", "Each condition on the current step as the control plane judges it: 1 for "
        "its outcome now (role exit: to leave the step; watch: what the guard acts on)",
        labels=["condition", "kind", "role", "outcome"])
    for role, results in (("exit", status.exit), ("watch", status.watch)):
        for r in results:
            for outcome in OUTCOMES:
                conditions.add_metric([r.name, r.kind, role, outcome], 1.0 if r.outcome == outcome else 0.0)
    exit_outcome = GaugeMetricFamily("roomsight_rollout_exit_outcome", "All exit conditions of the current step "
                                     "together: pass once the step may be left", labels=["outcome"])
    if state.in_progress:
        for outcome in OUTCOMES:
            exit_outcome.add_metric([outcome], 1.0 if overall(status.exit) == outcome else 0.0)
    out += [conditions, exit_outcome, *_analysis_families(status.exit + status.watch)]

    evidence = GaugeMetricFamily("roomsight_rollout_evidence", "The evidence numbers the gates read (rollout status)",
                                 labels=["metric"])
    for name, value in sorted(status.evidence.items()):
        if value is not None:
            evidence.add_metric([name], float(value))
    out.append(evidence)

    items = GaugeMetricFamily("roomsight_review_items", "The rollout's review items: waiting for a reviewer "
                              "(pending), held under a live lease (in_review), with a verdict (resolved)",
                              labels=["status"])
    if reviews is not None:
        for label, n in (("pending", reviews.pending), ("in_review", reviews.claimed), ("resolved", reviews.done)):
            items.add_metric([label], float(n))
    out.append(items)
    return out


def _analysis_families(results: list[ConditionResult]) -> list[Metric]:
    """Each analysis once (an analysis named on exit and watch reads the same sample), with its bounds."""
    outcome = GaugeMetricFamily("roomsight_rollout_analysis", "Each analysis on the current step: 1 for its outcome now",
                                labels=["analysis", "outcome"])
    bounds = GaugeMetricFamily("roomsight_rollout_analysis_difference", "Candidate minus champion accuracy on the "
                               "traffic: the estimate and its any-time-valid bounds", labels=["analysis", "bound"])
    verdicts = GaugeMetricFamily("roomsight_rollout_analysis_verdicts", "Reviewed verdicts an analysis used",
                                 labels=["analysis"])
    seen = set()
    for a in (r.analysis for r in results):
        if a is None or a.name in seen:
            continue
        seen.add(a.name)
        for o in OUTCOMES:
            outcome.add_metric([a.name, o], 1.0 if a.outcome == o else 0.0)
        for bound, value in (("estimate", a.estimate), ("lower", a.lower), ("upper", a.upper)):
            if value is not None:
                bounds.add_metric([a.name, bound], value)
        verdicts.add_metric([a.name], float(a.n))
    return [outcome, bounds, verdicts]


class ControlCollector(Collector):
    """`control_families` of the control plane's status at every scrape."""

    def __init__(self, control: ControlPlane) -> None:
        self.control = control

    def collect(self) -> Iterator[Metric]:
        status = self.control.status()
        rid = status.state.rollout_id
        reviews = queue.progress(self.control.engine, rollout_id=rid) if rid else None
        yield from control_families(status, self.control.plan.regions, reviews)


def control_registry(control: ControlPlane) -> CollectorRegistry:
    """A registry holding the control plane's series; `generate_latest(registry)` reads them."""
    registry = CollectorRegistry(auto_describe=False)  # no trial collect (a status read) at registration
    registry.register(ControlCollector(control))
    return registry

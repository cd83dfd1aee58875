"""Putting a report together: the decision's input from the control plane, the pictures from the log,
the verdicts, the drift checks and the photo store; then the HTML, to a file or to an MLflow run."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitoring.review import queue
from monitoring.review.photos import PhotoStore
from roomsight.errors import RegistryError
from rollout.report import plots
from rollout.report.plots import Plot
from rollout.report.inputs import ReportInput, from_events, from_outcome, from_status
from rollout.report.regional_drift import RegionDrift, per_region
from rollout.report.render import render
from rollout.report.reviews import ReviewView, review_view
from rollout.report.series import Series, traffic
from rollout.report.thumbs import Photos, photos

if TYPE_CHECKING:  # the control plane calls attach_event_report: imported for types only
    from mlflow import MlflowClient

    from rollout.control import ControlPlane, Outcome

log = logging.getLogger(__name__)

HISTORY_LIMIT = 500  # recorded events searched for a rollout's own
REPORT_ARTIFACT = "report.html"


@dataclass
class Views:
    """What the report shows beside the decision: traffic over time, verdicts, drift, photos, plots."""

    series: Series | None = None  # None: no traffic logged
    reviews: ReviewView | None = None  # None: no rollout
    drift: list[RegionDrift] = field(default_factory=list)
    photos: Photos | None = None
    plots: list[Plot] = field(default_factory=list)
    unplotted: list[str] = field(default_factory=list)  # plots with nothing to show, in words


DriftSource = Callable[[str, dict[str, int]], list[RegionDrift]]


def gather(control: ControlPlane, inp: ReportInput, store: PhotoStore | None = None, drift: DriftSource | None = None) -> Views:
    """`drift(rollout_id, requests per region)` lets the live page reuse a recent check; default: check now."""
    views = Views()
    rid = inp.rollout_id
    if rid is None:
        return views
    engine, settings = control.engine, control.settings
    views.series = traffic(engine, rid)
    views.reviews = review_view(engine, rid)
    views.photos = photos(engine, store or PhotoStore.for_settings(settings), rid, views.reviews.rows)
    if views.series is not None:
        requests = {r: sum(s.requests) for r, s in views.series.regions.items()}
        views.drift = (drift or (lambda r, n: per_region(settings, engine, r, n)))(rid, requests)
    _plot(views, inp)
    return views


def _plot(views: Views, inp: ReportInput) -> None:
    s, t, ev = views.series, inp.thresholds, inp.events
    wanted: list[tuple[Callable[[], Plot | None], str]] = [
        (lambda: plots.agreement(s, ev, t.get("agreement_min")) if s else None,
         "Agreement: no request has been answered by both models yet."),
        (lambda: plots.precision(views.reviews.over_time if views.reviews else {}, ev),
         "Reviewed precision: no verdicts yet for this rollout."),
        (lambda: plots.share(s, ev) if s else None, "Share of traffic: no traffic logged yet."),
        (lambda: plots.errors(s, ev, t.get("max_error_rate")) if s else None,
         "Errors: the candidate has not run on any request yet."),
        (lambda: plots.latency(s, ev, t.get("max_p99_ms")) if s else None, "Latency: no model call timed yet."),
    ]
    for draw, words in wanted:
        plot = draw()
        if plot is None:
            views.unplotted.append(words)
        else:
            views.plots.append(plot)


# -- entry points -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Reading:
    """One reading of a report's events: the outbox's changes MLflow has no record of (oldest first, as
    `records.history` lists them), then MLflow's recorded events (newest first; None when out of reach, with
    its error). The outbox is read once, so what the report shows from it and what it counts agree; and
    before MLflow, so a change recorded between the two readings is in both (shown, and still counted as
    unrecorded) rather than in neither."""

    waiting: list[dict[str, Any]]
    recorded: list[dict[str, Any]] | None
    unreachable: RegistryError | None

    @property
    def events(self) -> list[dict[str, Any]]:
        """Newest first: MLflow's; with MLflow out of reach, the outbox's (the routing state, the log and the
        outbox are all in the routing database, so a report can still say where a rollout stands and why)."""
        return self.waiting[::-1] if self.recorded is None else self.recorded

    def waiting_of(self, rollout_id: str | None) -> list[dict[str, Any]]:
        """The changes waiting of `rollout_id` (all of them for None), oldest first."""
        return [e for e in self.waiting if rollout_id is None or e.get("rollout_id") == rollout_id]


def _read(control: ControlPlane) -> _Reading:
    waiting = control.events_without_run()
    try:
        return _Reading(waiting, control.history(HISTORY_LIMIT), None)
    except RegistryError as exc:
        return _Reading(waiting, None, exc)


def report_input(control: ControlPlane, rollout_id: str | None = None) -> ReportInput:
    """The rollout in progress (default, or when it is the one asked for), else the one asked for from its
    recorded events. A rollout that reached full keeps its id in the routing state but is no longer in
    progress: it is read from its events like any other past one. A past rollout none of whose changes
    MLflow has yet is read from the outbox's copies of them; with MLflow out of reach, every rollout is."""
    read = _read(control)
    events, from_outbox = read.events, read.unreachable is not None
    state = control.current().state
    if rollout_id is None or (state.in_progress and rollout_id == state.rollout_id):
        inp = from_status(control.status(), control.plan, events)
    elif not from_outbox and any(e.get("rollout_id") == rollout_id for e in events):
        inp = from_events(rollout_id, control.plan, events)
    else:  # MLflow has none of its changes yet, or is out of reach: the outbox's copies say what they were
        waiting = read.waiting_of(rollout_id)
        if not waiting and read.unreachable is not None:
            raise read.unreachable
        inp, from_outbox = from_events(rollout_id, control.plan, waiting), True
    # Not `status.unrecorded`: that counts changes recorded whose aliases wait too, which the events have; and
    # only the rollout's own, whose events the report shows (all of them when idle: it shows the latest of all).
    unrecorded = len(read.waiting_of(inp.rollout_id))
    return replace(inp, unrecorded=unrecorded, unrecorded_shown=from_outbox and unrecorded > 0,
                   history_unreachable=None if read.unreachable is None else str(read.unreachable))


def resolve_rollout(control: ControlPlane, given: str) -> str:
    """A rollout id, or the one id that begins with `given` (reports show 8 characters), among those
    logged, queued, recorded in MLflow or waiting in the outbox to be."""
    read = _read(control)
    ids = [e["rollout_id"] for e in (*(read.recorded or []), *read.waiting) if e.get("rollout_id")]
    return queue.resolve_rollout(control.engine, given, ids)


def html_for(control: ControlPlane, rollout_id: str | None = None, store: PhotoStore | None = None) -> str:
    inp = report_input(control, rollout_id)
    return render(inp, gather(control, inp, store))


def write_report(control: ControlPlane, out: Path, rollout_id: str | None = None, store: PhotoStore | None = None) -> Path:
    """Write one self-contained HTML report of a rollout (default: the live one) to `out`."""
    out.write_text(html_for(control, rollout_id, store), encoding="utf-8")
    return out


def attach_report(client: MlflowClient, run_id: str, html: str, artifact_file: str = REPORT_ARTIFACT) -> None:
    """Attach a report to an MLflow run (an event's run) as an artifact."""
    client.log_text(run_id, html, artifact_file)


def attach_event_report(control: ControlPlane, outcome: Outcome, reason: str | None) -> str | None:
    """The report at one recorded change (promote, rollback, automatic action), attached to its MLflow run.
    Returns the artifact's name, or None when it could not be written: a report must never fail or undo
    the change it describes, so a failure is logged and nothing else."""
    if outcome.run_id is None:
        return None
    try:
        from roomsight import registry

        inp = from_outcome(outcome, control.plan, control.history(HISTORY_LIMIT), control.actor, reason)
        # No drift report per region here: the command waits for this report, and the drift numbers the
        # change was decided on are in its evidence already. `rollout report` and the page run them.
        attach_report(registry.client(), outcome.run_id, render(inp, gather(control, inp, drift=_no_drift)))
        return REPORT_ARTIFACT
    except Exception:
        log.exception("could not write the rollout report for %s (run %s)", outcome.action, outcome.run_id)
        return None


def _no_drift(_rollout_id: str, _requests: dict[str, int]) -> list[RegionDrift]:
    return []


def latest_recorded(control: ControlPlane) -> str | None:
    """The rollout of the most recent recorded event (with MLflow out of reach: waiting in the outbox), if any."""
    return next((e["rollout_id"] for e in _read(control).events if e.get("rollout_id")), None)

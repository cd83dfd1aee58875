"""The drift report schedule (monitoring.watch) on a fake clock: which traffic each report reads. Without
Evidently, a model or SMTP."""

from __future__ import annotations

from monitoring import drift, watch
from monitoring.notify import Notifier
from roomsight.errors import DriftError
from tests.conftest import settings_for


class Clock:
    """time.time, time.monotonic and time.sleep of one moving moment."""

    def __init__(self, t: float) -> None:
        self.t = t

    def time(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


def test_a_report_that_overruns_its_period_leaves_no_traffic_unread(tmp_path, monkeypatch):
    """Each window reached back `since` from its start: after a report that took longer than the period, the
    next began after the last one had ended, and the traffic logged between went into no report."""
    clock = Clock(1_800_000_000.0)
    read: list[tuple[drift.Window, float]] = []

    def slow_report(_settings, _engine, window: drift.Window):  # noqa: ANN001, ANN202
        read.append((window, clock.t))  # an open window ends when it is read
        clock.t += 90
        raise DriftError("too few predictions")

    monkeypatch.setattr(drift, "report", slow_report)
    monkeypatch.setattr(watch, "time", clock)
    outcomes: list[watch.Outcome] = []
    watch.watch(settings_for(tmp_path), None, every_s=60, since_s=60, region=None, recipients=None, iterations=3,
                on_outcome=outcomes.append, notifier=Notifier([], 1.0))
    assert len(outcomes) == 3 and all(o.skipped for o in outcomes)
    for (earlier, at), (later, _) in zip(read, read[1:]):
        ended = earlier.until if earlier.until is not None else at
        assert later.since is not None and later.since <= ended, f"{later.since - ended:.0f} s of traffic in no report"

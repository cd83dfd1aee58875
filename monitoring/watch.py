"""Drift reports on a schedule: every period, report on the last `since` of traffic (and on all since the
previous report's window, when a run overran the period), email it, and tell the notifier when it raised the alarm.

One-shot sends (`rollout drift report --email`) use `send` and `alarm_event` too, so both paths produce
the same message and the same event.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine

from monitoring import drift, drift_mail, mailer
from monitoring.notify import Delivery, Notifier
from roomsight.config import Settings
from roomsight.errors import DriftError, MailError
from roomsight.events import DriftAlarm


@dataclass(frozen=True)
class Outcome:
    """What one scheduled run did: a report (and whether it was emailed, who was notified), or why there was none."""

    report: drift.DriftReport | None
    emailed: bool
    skipped: str | None = None
    notified: tuple[Delivery, ...] = ()


def send(settings: Settings, engine: Engine, window: drift.Window, rep: drift.DriftReport,
         recipients: Sequence[str]) -> None:
    """Email one report: the headline numbers as text and HTML, example photos inline, the Evidently HTML attached."""
    mailer.send(settings.smtp, recipients, **drift_mail.compose(settings, engine, window, rep))


def alarm_event(window: drift.Window, rep: drift.DriftReport) -> DriftAlarm:
    r = rep.result
    return DriftAlarm(window=r.window, reference_model=r.reference_model, n_current=r.n_current,
                      drifted_share=r.drifted_share, ood_share=r.ood_share, reference_ood_share=r.reference_ood_share,
                      reasons=tuple(r.reasons), ts=r.created_at, region=window.region, rollout_id=window.rollout_id,
                      drifted_columns=tuple(r.drifted_columns), flag_counts=dict(r.flag_counts), report=str(rep.html))


def watch(settings: Settings, engine: Engine, every_s: float, since_s: float, region: str | None,
          recipients: Sequence[str] | None, only_alarms: bool = False, iterations: int | None = None,
          on_outcome: Callable[[Outcome], None] = lambda _o: None, notifier: Notifier | None = None) -> None:
    """Run until interrupted (or `iterations` runs). Each window ends when its run starts and reaches back
    `since_s`, or further, to where the previous one ended. A window too small for a report, or a failed
    send, is reported through `on_outcome` and the schedule goes on. `recipients=None`: no email, alarms go
    to the notifier only."""
    notifier = notifier or Notifier.from_settings(settings)
    done, ended = 0, None
    while iterations is None or done < iterations:
        started = time.monotonic()
        now = time.time()
        # A run that overran the period (a slow comparison or SMTP server) started the next late: reaching back
        # `since_s` only, its window began after the last one ended, and what was logged between went unread.
        since = now - since_s if ended is None else min(now - since_s, ended)
        window = drift.Window(since=since, until=now, region=region)
        ended = now
        on_outcome(_once(settings, engine, window, recipients, only_alarms, notifier))
        done += 1
        if iterations is None or done < iterations:
            time.sleep(max(0.0, every_s - (time.monotonic() - started)))


def _once(settings: Settings, engine: Engine, window: drift.Window, recipients: Sequence[str] | None,
          only_alarms: bool, notifier: Notifier) -> Outcome:
    try:
        rep = drift.report(settings, engine, window)
    except DriftError as exc:
        return Outcome(None, False, skipped=str(exc))
    notified = tuple(notifier.send(alarm_event(window, rep))) if rep.result.alarm else ()
    if recipients is None or (only_alarms and not rep.result.alarm):
        return Outcome(rep, False, skipped=None if recipients is None else "no alarm", notified=notified)
    try:
        send(settings, engine, window, rep, recipients)
    except MailError as exc:
        return Outcome(rep, False, skipped=str(exc), notified=notified)
    return Outcome(rep, True, notified=notified)

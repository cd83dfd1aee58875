"""Drift reports on a schedule: every period, report on the last `since` of traffic and email it.

One-shot sends (`rollout drift report --email`) use `send` too, so both paths produce the same message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine

from monitoring import drift, mailer
from roomsight.config import Settings


@dataclass(frozen=True)
class Outcome:
    """What one scheduled run did: a report (and whether it was emailed), or why there was none."""

    report: drift.DriftReport | None
    emailed: bool
    skipped: str | None = None


def send(settings: Settings, rep: drift.DriftReport, recipients: Sequence[str]) -> None:
    """Email one report: the headline numbers in the body, the Evidently HTML attached."""
    res = rep.result
    subject = (f"[roomsight] drift {'ALARM' if res.alarm else 'ok'}: {res.drifted_share:.0%} columns drifted, "
               f"{res.ood_share:.0%} out-of-domain ({res.n_current} predictions)")
    mailer.send(settings.smtp, recipients, subject, mailer.summary_html(res.to_dict(), rep.html.name),
                attachments=[rep.html])


def watch(settings: Settings, engine: Engine, every_s: float, since_s: float, region: str | None,
          recipients: Sequence[str], only_alarms: bool = False, iterations: int | None = None,
          on_outcome: Callable[[Outcome], None] = lambda _o: None, sleep: Callable[[float], None] = time.sleep) -> None:
    """Run until interrupted (or `iterations` runs). A window too small for a report, or a failed send,
    is reported through `on_outcome` and the schedule goes on."""
    done = 0
    while iterations is None or done < iterations:
        started = time.monotonic()
        on_outcome(_once(settings, engine, drift.Window(since=time.time() - since_s, region=region), recipients,
                         only_alarms))
        done += 1
        if iterations is None or done < iterations:
            sleep(max(0.0, every_s - (time.monotonic() - started)))


def _once(settings: Settings, engine: Engine, window: drift.Window, recipients: Sequence[str],
          only_alarms: bool) -> Outcome:
    try:
        rep = drift.report(settings, engine, window)
    except drift.DriftError as exc:
        return Outcome(None, False, skipped=str(exc))
    if only_alarms and not rep.result.alarm:
        return Outcome(rep, False, skipped="no alarm")
    try:
        send(settings, rep, recipients)
    except mailer.MailError as exc:
        return Outcome(rep, False, skipped=str(exc))
    return Outcome(rep, True)

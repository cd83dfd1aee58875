"""Drift reports on a schedule: every period, report on the last `since` of traffic and email it.

One-shot sends (`rollout drift report --email`) use `report_and_send` too, so both paths produce the
same message.
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


def report_and_send(settings: Settings, engine: Engine, window: drift.Window, recipients: Sequence[str],
                    reference_version: str | None = None) -> drift.DriftReport:
    rep = drift.report(settings, engine, window, reference_version)
    if recipients or settings.smtp.recipients:
        res = rep.result
        subject = (f"[roomsight] drift {'ALARM' if res.alarm else 'ok'}: {res.drifted_share:.0%} columns drifted, "
                   f"{res.ood_share:.0%} out-of-domain ({res.n_current} predictions)")
        mailer.send(settings.smtp, recipients, subject, mailer.summary_html(res.to_dict(), rep.html.name),
                    attachments=[rep.html])
    return rep


def watch(settings: Settings, engine: Engine, every_s: float, since_s: float, region: str | None,
          recipients: Sequence[str], only_alarms: bool = False, iterations: int | None = None,
          on_outcome: Callable[[Outcome], None] = lambda _o: None, sleep: Callable[[float], None] = time.sleep) -> None:
    """Run until interrupted (or `iterations` runs). A window too small for a report is skipped, not fatal;
    a failed send is reported and retried at the next period."""
    done = 0
    while iterations is None or done < iterations:
        started = time.monotonic()
        window = drift.Window(since=time.time() - since_s, region=region)
        try:
            rep = drift.report(settings, engine, window)
        except drift.DriftError as exc:
            on_outcome(Outcome(None, False, skipped=str(exc)))
        else:
            emailed = False
            if not only_alarms or rep.result.alarm:
                try:
                    res = rep.result
                    subject = (f"[roomsight] drift {'ALARM' if res.alarm else 'ok'}: {res.drifted_share:.0%} columns "
                               f"drifted, {res.ood_share:.0%} out-of-domain ({res.n_current} predictions)")
                    mailer.send(settings.smtp, recipients, subject, mailer.summary_html(res.to_dict(), rep.html.name),
                                attachments=[rep.html])
                    emailed = True
                except mailer.MailError as exc:
                    on_outcome(Outcome(rep, False, skipped=str(exc)))
                    rep = None  # type: ignore[assignment]
            if rep is not None:
                on_outcome(Outcome(rep, emailed))
        done += 1
        if iterations is None or done < iterations:
            sleep(max(0.0, every_s - (time.monotonic() - started)))

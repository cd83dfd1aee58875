"""The Notifier: one event in, every interested target told, and nothing the caller has to handle.

Targets are webhooks (`notify.webhooks`) and, for rollout events, email (`notify.email_events` to
`smtp.recipients`). Each target is sent to on its own thread, so a slow one delays no other, and `send`
returns by `notify.wait_s` whatever happens: a delivery still trying then is given up. Every failure is
logged (a warning naming the target, never its URL) and counted; `send` never raises, because a command
whose change is already recorded must not fail for a chat message.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from monitoring import mailer
from monitoring.notify import messages, payloads
from monitoring.notify.webhook import Delivery, post
from roomsight.config import Settings, SmtpSettings, WebhookSettings
from roomsight.errors import MailError
from roomsight.events import DriftAlarm, RolloutEvent

log = logging.getLogger(__name__)
Event = RolloutEvent | DriftAlarm
# A target thread past the deadline is left to finish on its own (it is a daemon); this much longer is
# waited for it, since each of its network calls is already cut to the deadline.
_JOIN_GRACE_S = 0.5


class Target(Protocol):
    @property
    def label(self) -> str: ...  # how logs and counts name it: never a URL

    @property
    def events(self) -> tuple[str, ...]: ...  # the event kinds it takes

    def deliver(self, event: Event, delivery_id: str, deadline: float) -> Delivery: ...


@dataclass(frozen=True)
class WebhookTarget:
    hook: WebhookSettings

    @property
    def label(self) -> str:
        return self.hook.label

    @property
    def events(self) -> tuple[str, ...]:
        return self.hook.events

    def deliver(self, event: Event, delivery_id: str, deadline: float) -> Delivery:
        body = payloads.KINDS[self.hook.kind](event, delivery_id)
        headers = {"User-Agent": "roomsight", "X-Roomsight-Event": event.kind, "X-Roomsight-Delivery": delivery_id}
        return post(self.hook, event.kind, body, headers, deadline)


@dataclass(frozen=True)
class EmailTarget:
    smtp: SmtpSettings
    events: tuple[str, ...]  # rollout events only (settings validate it)

    @property
    def label(self) -> str:
        return f"email to {', '.join(self.smtp.recipients)}"

    def deliver(self, event: Event, delivery_id: str, deadline: float) -> Delivery:
        assert isinstance(event, RolloutEvent)
        subject, text, html = messages.rollout_email(event)
        smtp = self.smtp.model_copy(update={"timeout_s": max(0.1, min(self.smtp.timeout_s, deadline - time.monotonic()))})
        try:
            mailer.send(smtp, (), subject, text, html)
        except MailError as exc:
            return Delivery(self.label, event.kind, False, 1, error=str(exc))
        return Delivery(self.label, event.kind, True, 1)


class Notifier:
    """`send(event)` to every target that wants it; `sent` and `failed` count deliveries per target."""

    def __init__(self, targets: Sequence[Target] = (), wait_s: float = 15.0) -> None:
        self.targets = tuple(targets)
        self.wait_s = wait_s
        self.sent: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> Notifier:
        targets: list[Target] = [WebhookTarget(h) for h in settings.notify.webhooks]
        if settings.notify.email_events:
            targets.append(EmailTarget(settings.smtp, settings.notify.email_events))
        return cls(targets, settings.notify.wait_s)

    def wants(self, kind: str) -> bool:
        """Whether any target takes events of this kind (a drift watch with webhooks only needs no email)."""
        return any(kind in t.events for t in self.targets)

    def send(self, event: Event) -> list[Delivery]:
        """Deliver to every interested target within `wait_s`; returns how each went. Never raises."""
        try:
            return self._send(event)
        except Exception:  # a bug here must not fail a command whose change is already recorded
            log.exception("notification of %s failed", getattr(event, "kind", event))
            with self._lock:
                self.failed["notifier"] += 1
            return []

    def _send(self, event: Event) -> list[Delivery]:
        targets = [t for t in self.targets if event.kind in t.events]
        if not targets:
            return []
        delivery_id, deadline = str(uuid.uuid4()), time.monotonic() + self.wait_s
        results: dict[int, Delivery] = {}

        def run(i: int, target: Target) -> None:
            try:
                results[i] = target.deliver(event, delivery_id, deadline)
            except Exception as exc:
                log.debug("notification target %s raised", target.label, exc_info=True)
                results[i] = Delivery(target.label, event.kind, False, 1, error=f"{type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=run, args=(i, t), name=f"notify-{i}", daemon=True)
                   for i, t in enumerate(targets)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()) + _JOIN_GRACE_S)
        done = [results.get(i) or Delivery(t.label, event.kind, False, 0, error="still trying at the deadline "
                                           f"(notify.wait_s = {self.wait_s:g} s); given up")
                for i, t in enumerate(targets)]
        with self._lock:
            for d in done:
                (self.sent if d.ok else self.failed)[d.target] += 1
        for d in done:
            if d.ok:
                log.info("notification: %s", d.describe())
            else:
                log.warning("notification: %s", d.describe())
        return done

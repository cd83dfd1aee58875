"""Notifications: rollout events and drift alarms posted to webhooks (Slack or roomsight's generic JSON)
and, for rollout events, emailed. The control plane and the drift commands hold a `Notifier` built from
`notify.*` settings; payloads are pure functions of the event (`payloads`, `messages`), delivery sits at
the edge (`webhook`, `monitoring.mailer`)."""

from monitoring.notify.notifier import EmailTarget, Notifier, Target, WebhookTarget
from monitoring.notify.webhook import Delivery

__all__ = ["Delivery", "EmailTarget", "Notifier", "Target", "WebhookTarget"]

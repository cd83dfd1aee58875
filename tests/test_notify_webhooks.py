"""Webhook delivery over real HTTP to a receiver on localhost: both payload kinds arrive with their
headers; 5xx, 429 and timeouts are retried with a doubling backoff and given up after `retries`; a 4xx is
not retried; a slow receiver holds `send` no longer than `notify.wait_s`, and delays no other target; a
webhook gets only the events it asked for; failures are logged and counted, never raised, and no log line
holds the webhook's URL."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from monitoring.notify import Delivery, Notifier
from roomsight.config import load_settings
from roomsight.events import RolloutEvent
from tests.conftest import free_port
from tests.receiver import Receiver, Reply
from tests.test_notify_payloads import ALARM, PROMOTE

SECRET_PATH = "/services/T0001/B0002/Xyz-SECRET-part"


def notifier(*hooks: dict[str, Any], wait_s: float = 15) -> Notifier:
    """A notifier built the way commands build one: from settings, here given as the environment would."""
    settings = load_settings(environ={"ROOMSIGHT_HOME": "/tmp/roomsight-notify-hooks",
                                      "ROOMSIGHT_NOTIFY__WEBHOOKS": json.dumps(list(hooks)),
                                      "ROOMSIGHT_NOTIFY__WAIT_S": str(wait_s)})
    return Notifier.from_settings(settings)


def test_both_kinds_arrive_with_delivery_headers():
    with Receiver() as generic, Receiver() as slack:
        n = notifier({"url": generic.url + "/hook", "name": "bridge"}, {"url": slack.url + SECRET_PATH, "kind": "slack"})
        sent = n.send(PROMOTE) + n.send(ALARM)
    assert [d.ok for d in sent] == [True] * 4 and all(d.attempts == 1 for d in sent)
    (g1, g2), (s1, s2) = generic.received, slack.received
    assert g1.path == "/hook" and s1.path == SECRET_PATH
    assert g1.body["event"] == "promote" and g2.body["event"] == "drift-alarm" and g1.body["actor"] == "alice"
    assert set(s1.body) == {"text", "blocks"} and "promoted 1/7 shadow -&gt; 2/7 limited" in s1.body["text"]
    assert "drift alarm in ap-south" in s2.body["text"]
    for r in (g1, g2, s1, s2):
        assert r.headers["content-type"] == "application/json" and r.headers["user-agent"] == "roomsight"
        assert r.headers["x-roomsight-event"] == r.body.get("event", r.headers["x-roomsight-event"])
    assert g1.headers["x-roomsight-delivery"] == g1.body["id"] == s1.headers["x-roomsight-delivery"]
    assert n.sent == {"bridge": 2, "slack webhook at 127.0.0.1": 2} and not n.failed


def test_5xx_is_retried_with_a_doubling_backoff_then_delivered():
    with Receiver(Reply(503), Reply(500), Reply(200)) as hook:
        (d,) = notifier({"url": hook.url, "retries": 3, "backoff_s": 0.2}).send(PROMOTE)
    assert d.ok and d.attempts == 3 and d.status == 200
    first, second, third = hook.received
    assert second.at - first.at >= 0.2 and third.at - second.at >= 0.4  # 0.2 s, then doubled
    assert len({r.body["id"] for r in hook.received}) == 1  # one delivery id across retries: receivers can dedupe


def test_429_waits_as_long_as_retry_after_asks():
    with Receiver(Reply(429, headers={"Retry-After": "1"}), Reply(200)) as hook:
        (d,) = notifier({"url": hook.url, "retries": 1, "backoff_s": 0.01}).send(PROMOTE)
    assert d.ok and d.attempts == 2 and hook.received[1].at - hook.received[0].at >= 1.0


def test_gives_up_after_retries_logs_and_counts_without_the_url(caplog):
    with Receiver(Reply(500)) as hook, caplog.at_level(logging.DEBUG):
        n = notifier({"url": hook.url + SECRET_PATH, "retries": 2, "backoff_s": 0.01})
        (d,) = n.send(PROMOTE)
    assert not d.ok and d.attempts == 3 == len(hook.received) and d.status == 500
    assert n.failed == {"generic webhook at 127.0.0.1": 1} and not n.sent
    assert "promote not delivered to generic webhook at 127.0.0.1 after 3 attempts: HTTP 500" in caplog.text
    assert "SECRET" not in caplog.text and hook.url not in caplog.text


def test_a_4xx_is_final_and_a_redirect_is_not_followed():
    with Receiver(Reply(404), Reply(200)) as gone, Receiver(Reply(302, headers={"Location": "/elsewhere"})) as moved:
        n = notifier({"url": gone.url, "retries": 3, "backoff_s": 0.01}, {"url": moved.url, "retries": 3, "backoff_s": 0.01})
        missing, redirected = n.send(PROMOTE)
    assert (missing.ok, missing.attempts, missing.error) == (False, 1, "HTTP 404") and len(gone.received) == 1
    assert (redirected.ok, redirected.attempts, redirected.error) == (False, 1, "HTTP 302") and len(moved.received) == 1


def test_timeouts_are_retried_then_delivered():
    with Receiver(Reply(200, delay_s=30), Reply(200)) as hook:
        (d,) = notifier({"url": hook.url, "timeout_s": 0.5, "retries": 1, "backoff_s": 0.01}).send(PROMOTE)
    assert d.ok and d.attempts == 2


def test_refused_connection_is_retried_and_reported():
    (d,) = notifier({"url": f"http://127.0.0.1:{free_port()}/x", "retries": 1, "backoff_s": 0.01}).send(PROMOTE)
    assert not d.ok and d.attempts == 2 and d.status is None and "Connection refused" in d.error


def test_a_hung_receiver_holds_send_no_longer_than_wait_s_and_delays_no_other_target():
    """The hung receiver would hold each attempt for its full timeout_s and retry; the command's wait is cut
    at notify.wait_s, and the healthy webhook, sent on its own thread, is delivered at once."""
    with Receiver(Reply(200, delay_s=60)) as hung, Receiver() as healthy:
        n = notifier({"url": hung.url, "timeout_s": 20, "retries": 5, "backoff_s": 0.01}, {"url": healthy.url}, wait_s=1.5)
        started = time.monotonic()
        stuck, fine = n.send(PROMOTE)
        took = time.monotonic() - started
    assert took < 10, took  # the receiver answers after 60 s; one attempt alone may take 20 s
    assert fine.ok and healthy.received[0].at - started < 5
    assert not stuck.ok and stuck.attempts <= 1 and ("timed out" in stuck.error or "deadline" in stuck.error)
    assert n.failed == {"generic webhook at 127.0.0.1": 1} and n.sent == {"generic webhook at 127.0.0.1": 1}


def test_a_backoff_past_the_deadline_ends_the_delivery_instead_of_sleeping():
    with Receiver(Reply(503)) as hook:
        n = notifier({"url": hook.url, "retries": 5, "backoff_s": 30}, wait_s=5)
        started = time.monotonic()
        (d,) = n.send(PROMOTE)
    assert time.monotonic() - started < 4 and d.attempts == 1 and "due after the deadline" in d.error


def test_only_the_events_a_webhook_asked_for():
    with Receiver() as hook:
        n = notifier({"url": hook.url, "events": ["rollback", "auto-rollback", "drift-alarm"]})
        assert n.send(PROMOTE) == [] and n.wants("drift-alarm") and not n.wants("start")
        auto = RolloutEvent(**{**PROMOTE.to_dict(), "action": "auto-rollback", "actor": "guard", "conditions": ()})
        (d,) = n.send(auto)
    assert d.ok and [b["event"] for b in hook.bodies()] == ["auto-rollback"]


class Broken:
    label, events = "broken target", ("promote",)

    def deliver(self, event, delivery_id, deadline) -> Delivery:  # noqa: ANN001 - the Target protocol
        raise RuntimeError("a bug in a target")


def test_a_target_that_raises_is_a_counted_failure_not_an_exception():
    n = Notifier([Broken()], wait_s=2)
    (d,) = n.send(PROMOTE)
    assert not d.ok and "RuntimeError: a bug in a target" in d.error and n.failed == {"broken target": 1}
    assert Notifier().send(PROMOTE) == []  # nothing configured: nothing to do


def test_a_network_error_that_quotes_the_url_says_neither_it_nor_its_path():
    """A Slack URL's path is its credential: an error from the transport that repeats it must not reach the
    log or the delivery record."""
    from monitoring.notify.webhook import _scrubbed

    url = "https://hooks.slack.com/services/T0/B0/s3cr3t"
    said = _scrubbed(OSError(f"cannot POST {url}; then tried /services/T0/B0/s3cr3t"), url)
    assert said == "OSError: cannot POST <url>; then tried <path>"
    assert _scrubbed(TimeoutError("read timed out after 5 s"), url) == "timed out"

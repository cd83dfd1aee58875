"""POST one JSON body to one webhook, with retries. A timeout, a refused or dropped connection, a 429 or a
5xx is tried again after a backoff that doubles (longer if the receiver's Retry-After asks for it), up
to `retries` more times; any other answer is final (a 4xx will not change by asking again). Nothing runs
past the caller's deadline: each attempt's timeout is cut to the time left, and a wait that would end
after it ends the delivery instead.

Plain urllib, not httpx: httpx logs each request's full URL at INFO, and a Slack webhook URL is its own
credential. urllib honours the *_PROXY variables as httpx would. Redirects are not followed (a
redirected POST turns into a GET without its body): a 3xx is a failed delivery that names the status.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from typing import Any
from urllib.parse import urlsplit

from roomsight.config import WebhookSettings


@dataclass(frozen=True)
class Delivery:
    """How one notification went to one target; `target` is the target's label, never its URL."""

    target: str
    event: str
    ok: bool
    attempts: int
    status: int | None = None  # the last HTTP status, if any answer came
    error: str | None = None

    def describe(self) -> str:
        if self.ok:
            return f"{self.event} delivered to {self.target}"
        tries = f" after {self.attempts} attempt{'s' if self.attempts != 1 else ''}" if self.attempts else ""
        return f"{self.event} not delivered to {self.target}{tries}: {self.error}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises HTTPError with the 3xx status


def post(hook: WebhookSettings, event: str, body: Mapping[str, Any], headers: Mapping[str, str], deadline: float) -> Delivery:
    """Deliver `body` (JSON) before `deadline` (time.monotonic() seconds) or report why not."""
    data = json.dumps(body, default=str).encode()
    attempts, status, error = 0, None, "no time left before the deadline"
    while (left := deadline - time.monotonic()) > 0:
        attempts += 1
        status, error, retry_after = _attempt(hook.url, data, headers, min(hook.timeout_s, left))
        if error is None:
            return Delivery(hook.label, event, True, attempts, status)
        if status is not None and status != 429 and status < 500:
            break  # the receiver refused this request; asking again will not change that
        if attempts > hook.retries:
            break
        wait = max(hook.backoff_s * 2 ** (attempts - 1), retry_after or 0.0)
        if wait >= deadline - time.monotonic():
            error += "; gave up: the next attempt was due after the deadline (notify.wait_s)"
            break
        time.sleep(wait)
    return Delivery(hook.label, event, False, attempts, status, error)


def _attempt(url: str, data: bytes, headers: Mapping[str, str], timeout: float) -> tuple[int | None, str | None, float | None]:
    """(status, error or None, Retry-After seconds) of one POST."""
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", **headers},
                                     method="POST")
    try:
        with urllib.request.build_opener(_NoRedirect).open(request, timeout=timeout) as response:
            response.read()
            return response.status, None, None
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, f"HTTP {exc.code}", _retry_after(exc.headers)
    except urllib.error.URLError as exc:
        return None, _scrubbed(exc.reason, url), None
    except (OSError, http.client.HTTPException) as exc:
        return None, _scrubbed(exc, url), None


def _retry_after(headers: Message | None) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare from webhook receivers, and the backoff still applies


def _scrubbed(reason: object, url: str) -> str:
    """A network error in words, without the URL or its path (the secret part of a Slack URL)."""
    if isinstance(reason, TimeoutError):
        return "timed out"
    text = f"{type(reason).__name__}: {reason}" if isinstance(reason, BaseException) else str(reason)
    path = urlsplit(url).path
    text = text.replace(url, "<url>")
    return text.replace(path, "<path>") if len(path) > 1 else text

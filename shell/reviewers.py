"""Simulated reviewers for the demo: they label review-queue items through the same HTTP API a person's
page uses (claim, then verdict), answering with the ground truth the demo knows for each request.

Only the lookup of that truth reads the database (item -> request id): the page is blind to it, and a
person would be looking at the photo instead.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from sqlalchemy import Engine

from roomsight.config import Settings
from roomsight.verdicts import UNUSABLE


@dataclass
class ReviewServer:
    url: str
    tokens: dict[str, str]
    stop: Callable[[], None]


def demo_tokens(names: tuple[str, ...] = ("ana", "ben")) -> dict[str, str]:
    return {n: secrets.token_urlsafe(16) for n in names}


def start_review_server(settings: Settings, engine: Engine, sock: socket.socket) -> ReviewServer:
    """The reviewer page and API (monitoring.review.web) on `sock` (roomsight.listening.listen), in a
    background thread."""
    import uvicorn

    from monitoring.review.web import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(settings, engine), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="review-page", daemon=True)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)

    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        if not thread.is_alive():
            raise RuntimeError("the reviewer page stopped while starting; see the log above")
        time.sleep(0.05)
    if not server.started:
        stop()  # a server still starting is told to stop, not left running behind the error
        raise RuntimeError("the reviewer page did not start within 20 s")
    host, port = sock.getsockname()[:2]
    return ReviewServer(f"http://{host}:{port}", dict(settings.review.tokens), stop)


def review_all(server: ReviewServer, engine: Engine, truth: dict[str, str]) -> int:
    """Every reviewer claims and labels until the queue is empty; returns the number of verdicts."""
    from monitoring.review.queue import holder_request

    done = [0]
    lock = threading.Lock()

    def reviewer(name: str, token: str) -> None:
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            while True:
                item = client.post("/api/claim").json()["item"]
                if item is None:
                    return
                request_id = holder_request(engine, name, item["item_id"])
                label = truth.get(request_id or "", UNUSABLE)
                r = client.post("/api/verdict", json={"item_id": item["item_id"], "claim_id": item["claim_id"], "label": label})
                if r.status_code == 200:
                    with lock:
                        done[0] += 1

    # Rounds until one records nothing: a photo shown to two reviewers may come back for a second opinion
    # after the other reviewer has run out of items.
    while True:
        before = done[0]
        threads = [threading.Thread(target=reviewer, args=(n, t)) for n, t in server.tokens.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if done[0] == before:
            return done[0]

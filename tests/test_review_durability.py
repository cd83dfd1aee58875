"""The review server (`rollout review serve`, a real process on SQLite) killed with SIGKILL while
reviewers submit verdicts over HTTP loses no acknowledged verdict and stores none twice; photos shown to
two reviewers (and, on a conflict, a third) get exactly the verdicts they want.

Reviewers behave as the page does after a network error: they resend the same verdict once the server
is back. A verdict committed just before the kill then comes back "already recorded" (409); one that
never reached the database is recorded by the resend; claims whose answer was lost come free again when
their (short) lease runs out. No Ray."""

from __future__ import annotations

import json
import os
from collections import Counter
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, func, select

from monitoring.review import queue
from monitoring.review.photos import PhotoStore
from roomsight.tables import metadata, review_items, review_verdicts
from tests.conftest import free_port, settings_for
from tests.test_review_queue import CLASSES, ROLLOUT, log_rows

N_ITEMS = 300
LEASE_S = 2.0
TOKENS = {"ann": "ann-durable-token", "bob": "bob-durable-token", "cho": "cho-durable-token"}
KILL_AT = (60, 150)  # acknowledged verdicts before each SIGKILL
DEADLINE_S = 120.0  # a bound on the whole run, far above its usual ~15 s


def serve(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """`rollout review serve` in its own process, ready when a reviewer's call answers."""
    cmd = [sys.executable, "-c", "from shell.cli import main; main()",
           "review", "serve", "--port", str(port), "--rollout", ROLLOUT]
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"review server exited {proc.returncode}: {log.read_text()[-2000:]}"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/progress", timeout=2,
                         headers={"Authorization": f"Bearer {TOKENS['ann']}"}).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"review server not ready in 60 s: {log.read_text()[-2000:]}")


class Reviewers:
    """Reviewer threads that claim and judge until the queue is empty, resending across outages."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.acked: dict[str, tuple[str, str, str]] = {}  # claim_id -> (reviewer, item_id, label), on a 200
        self.already: set[str] = set()  # claim ids whose resend found the verdict recorded
        self.lost_claims = 0  # resends refused because the lease ran out and someone else took the item
        self.transport_errors = 0
        self.failures: list[str] = []
        self.lock = threading.Lock()
        self.deadline = time.monotonic() + DEADLINE_S
        self.threads = [threading.Thread(target=self._work, args=(who, tok, i), daemon=True)
                        for i, (who, tok) in enumerate(TOKENS.items())]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def join(self) -> None:
        for t in self.threads:
            t.join(max(1.0, self.deadline - time.monotonic() + 5))
        assert not any(t.is_alive() for t in self.threads), "reviewers still busy at the deadline"

    def _work(self, who: str, token: str, seed: int) -> None:
        rng = random.Random(seed)
        verdict: dict[str, Any] | None = None  # sent, no answer yet: resent until one arrives
        with httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as c:
            while time.monotonic() < self.deadline:
                try:
                    if verdict is None:
                        r = c.post("/api/claim")
                        if r.status_code != 200:
                            self._fail(who, "claim", r)
                            return
                        item = r.json()["item"]
                        if item is None:
                            p = c.get("/api/progress").json()
                            if p["pending"] + p["claimed"] == 0:
                                return
                            time.sleep(0.2)  # items held under leases that have yet to lapse
                            continue
                        verdict = {"item_id": item["item_id"], "claim_id": item["claim_id"], "label": rng.choice(CLASSES)}
                    r = c.post("/api/verdict", json=verdict)
                except httpx.TransportError:
                    with self.lock:
                        self.transport_errors += 1
                    time.sleep(0.05)  # the server is down: the same claim or verdict goes again
                    continue
                with self.lock:
                    if r.status_code == 200:
                        self.acked[verdict["claim_id"]] = (who, verdict["item_id"], verdict["label"])
                    elif r.status_code == 409 and "already recorded" in r.json()["error"]:
                        self.already.add(verdict["claim_id"])
                    elif r.status_code == 409:
                        self.lost_claims += 1
                    else:
                        self.failures.append(f"{who} verdict {r.status_code}: {r.text[:200]}")
                        return
                verdict = None

    def _fail(self, who: str, what: str, r: httpx.Response) -> None:
        with self.lock:
            self.failures.append(f"{who} {what} {r.status_code}: {r.text[:200]}")


def test_sigkill_loses_no_acknowledged_verdict_and_stores_none_twice(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOMSIGHT_")}
    env.update({"ROOMSIGHT_HOME": str(tmp_path), "ROOMSIGHT_REVIEW__TOKENS": json.dumps(TOKENS),
                "ROOMSIGHT_REVIEW__LEASE_S": str(LEASE_S), "ROOMSIGHT_REVIEW__DOUBLE_REVIEW_SHARE": "0.3"})
    s = settings_for(tmp_path, **{k: v for k, v in env.items() if k.startswith("ROOMSIGHT_")})
    assert s.review.lease_s == LEASE_S
    engine = create_engine(s.db_url, connect_args={"timeout": 30})
    metadata.create_all(engine)
    log_rows(engine, PhotoStore.for_settings(s), [{"champion": "kitchen", "candidate": "bedroom"}] * N_ITEMS)
    assert queue.fill(engine, s, ROLLOUT) == N_ITEMS

    port, log = free_port(), tmp_path / "serve.log"
    proc = serve(env, port, log)
    reviewers = Reviewers(f"http://127.0.0.1:{port}")
    reviewers.start()
    kills = 0
    try:
        for at in KILL_AT:
            while len(reviewers.acked) < at and time.monotonic() < reviewers.deadline and not reviewers.failures:
                time.sleep(0.005)
            os.kill(proc.pid, signal.SIGKILL)  # mid-traffic: claims and verdicts are in flight
            proc.wait()
            kills += 1
            proc = serve(env, port, log)  # the same database, the same address
        reviewers.join()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    assert not reviewers.failures, reviewers.failures
    assert kills == len(KILL_AT) and reviewers.transport_errors > 0, "the kills never met live traffic"
    with engine.connect() as c:
        stored = {r.claim_id: (r.reviewer, r.item_id, r.label) for r in c.execute(select(review_verdicts))}
        n_rows = c.execute(select(func.count()).select_from(review_verdicts)).scalar_one()
        statuses = dict(c.execute(select(review_items.c.status, func.count()).group_by(review_items.c.status)).all())
        wanted = dict(c.execute(select(review_items.c.id, review_items.c.reviews_wanted)).all())
    engine.dispose()

    # Every item finished, with exactly the verdicts it wanted (one; two when double-reviewed; three after a
    # conflict), each from a different reviewer, and no verdict twice.
    assert statuses == {"done": N_ITEMS}
    per_item = Counter(v[1] for v in stored.values())
    assert n_rows == len(stored) == sum(wanted.values()) and per_item == Counter(wanted)
    assert len({(v[0], v[1]) for v in stored.values()}) == n_rows
    assert any(w == 3 for w in wanted.values()), "no conflict went to a third reviewer"
    # Every acknowledged verdict is stored as acknowledged: same reviewer, item and label.
    missing = {k: v for k, v in reviewers.acked.items() if stored.get(k) != v}
    assert not missing, f"{len(missing)} acknowledged verdicts lost or altered, e.g. {list(missing.items())[:3]}"
    # A resend found its verdict recorded only where it really was; the rest of the table is acknowledged.
    assert reviewers.already <= set(stored) and not reviewers.already & set(reviewers.acked)
    assert set(stored) == set(reviewers.acked) | reviewers.already

"""Process deaths under real Ray Serve, by SIGKILL:

- the ingress replica (the process that answers and holds the prediction log) dies during a 1,000-request
  replay: Serve restarts it, and every request that got a 2xx answer is in the log, exactly once (the new
  replica replays the dead one's journal);
- the champion's model replica dies: Serve restarts it, requests recover, and the failures in between
  are clean 503s with a JSON message, counted.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select

from tests.test_skeleton_e2e import jpeg

pytestmark = pytest.mark.ray

REPLAY = 1000


def replica_pids(deployment: str) -> list[int]:
    """PIDs of a Serve deployment's live replicas (named actors in the `serve` namespace)."""
    import ray

    names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
             if a.get("namespace") == "serve" and f"#{deployment}#" in a["name"]]
    pids = []
    for name in names:
        try:
            actor = ray.get_actor(name, namespace="serve")
            pids.append(ray.get(actor.__ray_call__.remote(lambda _self: os.getpid()), timeout=30))
        except Exception:  # a replica that is going away
            continue
    return pids


def wait_healthy(client: httpx.Client, timeout: float = 120) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            if client.get("/healthz", timeout=5).json().get("status") == "ok":
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.5)
    raise AssertionError("the app did not come back within the timeout")


def test_sigkill_of_ingress_and_champion_replicas(settings, ray_session, serve_port):
    from ray import serve

    from roomsight.db import engine_for
    from roomsight.tables import predictions
    from rollout.control import ControlPlane
    from rollout.plan import load_plan
    from serving.runner import APP_NAME, start_serve

    s = settings.model_copy(update={
        "serve": settings.serve.model_copy(update={"port": serve_port, "state_poll_s": 0.2}),
        # A flush interval longer than the replay: what the killed replica acknowledged is still only in
        # its journal, so the test exercises the replay rather than a lucky early flush.
        "log": settings.log.model_copy(update={"flush_interval_s": 3600.0, "batch_size": 100_000})})
    ControlPlane(s, load_plan(), actor="crash-test").current()
    start_serve(s)
    engine = engine_for(s.db_url)
    bodies = [jpeg("kitchen", i) for i in range(16)]
    acked: list[str] = []  # request ids answered 2xx, in both phases; list.append is atomic under the GIL
    failed: list[int] = []
    kill_lock = threading.Lock()
    killed = threading.Event()

    def send(i: int) -> None:
        try:
            r = client.post("/predict", files={"image": ("p.jpg", bodies[i % 16], "image/jpeg")},
                            data={"listing_id": f"K{i}", "region": "eu-west"})
        except httpx.HTTPError:
            failed.append(-1)
            return
        if r.status_code == 200:
            acked.append(r.json()["request_id"])
        else:
            failed.append(r.status_code)
        with kill_lock:
            if len(acked) >= 300 and not killed.is_set():
                killed.set()
                (pid,) = replica_pids("ingress")
                os.kill(pid, signal.SIGKILL)

    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{serve_port}", timeout=60) as client:
            wait_healthy(client)
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(send, range(REPLAY)))
            assert killed.is_set()
            assert len(acked) >= REPLAY // 2, f"too few answers to mean anything: {len(acked)}, failures {failed[:20]}"
            wait_healthy(client)
            recovered = client.get("/healthz").json()["log"]["recovered"]
            assert recovered >= 300, f"the restarted replica replayed {recovered} journaled records"

            # The champion's replica dies: requests fail cleanly (503 + JSON) until Serve has restarted it.
            (pid,) = replica_pids("champion")
            os.kill(pid, signal.SIGKILL)
            errors, t0, recovered_at = 0, time.monotonic(), None
            while time.monotonic() - t0 < 120:
                r = client.post("/predict", files={"image": ("p.jpg", bodies[0], "image/jpeg")},
                                data={"listing_id": "C1", "region": "us-east"})
                if r.status_code == 200:
                    acked.append(r.json()["request_id"])
                    recovered_at = time.monotonic() - t0
                    break
                errors += 1
                assert r.status_code == 503 and "retry" in r.json()["error"], r.text
                time.sleep(0.2)
            assert recovered_at is not None, f"no answer within 120 s of the champion's death ({errors} errors)"
            for b in bodies[:5]:
                r = client.post("/predict", files={"image": ("p.jpg", b, "image/jpeg")}, data={"listing_id": "C2", "region": "us-east"})
                assert r.status_code == 200, r.text
                acked.append(r.json()["request_id"])
            print(f"champion SIGKILL: recovered after {recovered_at:.1f} s with {errors} failed requests")
    finally:
        serve.delete(APP_NAME)  # a graceful stop: the live replica flushes what it holds
    with engine.connect() as c:
        logged = {r[0] for r in c.execute(select(predictions.c.request_id).where(predictions.c.request_id.in_(acked)))}
        rows = c.execute(select(func.count()).select_from(predictions)
                         .where(predictions.c.request_id.in_(acked))).scalar_one()
    engine.dispose()
    missing = set(acked) - logged
    assert not missing, f"{len(missing)} acknowledged predictions lost of {len(acked)}"
    assert rows == len(acked), "an acknowledged prediction was logged twice"

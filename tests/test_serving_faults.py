"""A candidate that hangs, raises, answers garbage or has its replica killed never fails or stalls a
request the champion can answer; a shadowing candidate runs at idle CPU priority; the batch
endpoint answers each image on its own; the budget guard takes a failing candidate off traffic.
Real Ray Serve over HTTP, with the injectable candidate from serving.faults."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import select

from shell.traffic import wait_idle

from tests.conftest import serving_settings, settings_for
from tests.test_crash_recovery import replica_pids
from tests.test_skeleton_e2e import drained, jpeg, wait_for

pytestmark = pytest.mark.ray


def post(client: httpx.Client, i: int, region: str) -> tuple[int, dict, float]:
    t0 = time.perf_counter()
    r = client.post("/predict", files={"image": ("p.jpg", jpeg("kitchen", i), "image/jpeg")},
                    data={"listing_id": f"F{i}", "region": region})
    return r.status_code, r.json(), time.perf_counter() - t0


def test_faulty_candidate_is_isolated(settings, ray_session, serve_port):
    from ray import serve

    from roomsight.db import engine_for
    from roomsight.tables import predictions
    from rollout.control import ControlPlane
    from rollout.guard import Guard
    from rollout.plan import Budget, load_plan
    from serving.faults import FaultyModelDeployment
    from serving.runner import APP_NAME, start_serve

    port = serve_port
    s = serving_settings(settings, port, shadow_timeout_s=1.0, candidate_timeout_s=0.5)
    plan = load_plan().unconditional(hold_ood_on_champion=False, budget=Budget(max_error_rate=0.05, max_p99_ms=5000, window=50))
    cp = ControlPlane(s, plan, actor="fault-test")
    cp.current()
    start_serve(s, candidate=FaultyModelDeployment)
    candidate = serve.get_deployment_handle("candidate", app_name=APP_NAME)
    engine = engine_for(s.db_url)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            post(client, 0, "eu-west")  # champion warm
            cp.start("models:/roomtype/2")
            wait_for(client, "stage", "shadow")

            # shadow, candidate hanging: answers do not wait for it; one shadow call at a time times out, the
            # jobs waiting behind it are dropped when they are stale, and every outcome is logged
            candidate.set_fault.remote("hang").result()
            with ThreadPoolExecutor(4) as pool:
                results = list(pool.map(lambda i: post(client, i, "us-east"), range(1, 21)))
            assert all(code == 200 and body["served_by"] == "champion" for code, body, _ in results)
            assert max(t for _, _, t in results) < 1.0, "an answer waited for the hanging shadow candidate"
            assert client.get("/healthz").json()["shadow"]["inflight"] == 1  # never more than shadow_concurrency
            assert wait_idle(f"http://127.0.0.1:{port}", timeout=s.serve.shadow_max_wait_s + 5)
            with engine.connect() as c:
                statuses = [r.shadow_status for r in c.execute(select(predictions.c.shadow_status)
                                                               .where(predictions.c.stage == "shadow"))]
            assert statuses.count("timeout") >= 2 and statuses.count("timeout") + statuses.count("dropped") == 20, statuses

            # a shadowing candidate computes at idle CPU priority, so it cannot slow the champion
            candidate.set_fault.remote("none").result()
            post(client, 21, "us-east")
            time.sleep(0.5)
            assert candidate.priority.remote().result() == "idle"

            # limited, candidate raising: its region is answered by the champion instead, and that is logged
            cp.promote("limited", ("eu-west",))
            wait_for(client, "stage", "limited")
            code, body, _ = post(client, 29, "eu-west")
            assert code == 200 and body["served_by"] == "candidate"
            assert candidate.priority.remote().result() == "normal"  # answering traffic: normal priority again
            candidate.set_fault.remote("raise").result()
            results = [post(client, i, "eu-west") for i in range(30, 45)]
            assert all(code == 200 and body["served_by"] == "champion" for code, body, _ in results)
            # hanging while answering: the champion answers after candidate_timeout_s
            candidate.set_fault.remote("hang").result()
            code, body, took = post(client, 46, "eu-west")
            assert code == 200 and body["served_by"] == "champion" and took < 3.0
            # answering garbage (not a ModelAnswer): refused by the ingress, the champion answers
            candidate.set_fault.remote("garbage").result()
            results = [post(client, i, "eu-west") for i in range(50, 55)]
            assert all(code == 200 and body["served_by"] == "champion" and body["label"] for code, body, _ in results)
            drained(client)
            with engine.connect() as c:
                errors = c.execute(select(predictions.c.candidate_error, predictions.c.routing_reason)
                                   .where(predictions.c.stage == "limited")).all()
            assert sum(1 for e in errors if e.candidate_error and "injected fault" in e.candidate_error) == 15
            assert sum(1 for e in errors if e.candidate_error and "not a ModelAnswer" in e.candidate_error) == 5
            reasons = [e.routing_reason for e in errors]
            assert reasons.count("candidate-fallback") == 21 and reasons.count("slice") == 1  # 21 faults, 1 healthy answer
            assert 'roomsight_candidate_fallbacks_total 21.0' in client.get("/metrics").text

            # the candidate's replica process killed while it answers a region: no request fails
            candidate.set_fault.remote("none").result()
            (pid,) = replica_pids("candidate")
            os.kill(pid, signal.SIGKILL)
            results = [post(client, i, "eu-west") for i in range(60, 75)]
            assert all(code == 200 for code, _, _ in results), [r[:2] for r in results if r[0] != 200]
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and post(client, 76, "eu-west")[1]["served_by"] != "candidate":
                time.sleep(0.5)
            assert post(client, 77, "eu-west")[1]["served_by"] == "candidate", "Serve did not restart the candidate"
            candidate = serve.get_deployment_handle("candidate", app_name=APP_NAME)

            # the guard sees the broken budget and takes the candidate off traffic, recorded in MLflow
            out = Guard(cp.with_actor("guard")).tick()
            assert out is not None and out.action == "auto-rollback"
            wait_for(client, "stage", "stable")
            candidate.set_fault.remote("none").result()

            # the batch endpoint: one answer per image, a bad image fails alone
            files = [("images", ("a.jpg", jpeg("view", 1), "image/jpeg")), ("images", ("b.jpg", b"garbage", "image/jpeg")),
                     ("images", ("c.jpg", jpeg("exterior", 2), "image/jpeg"))]
            r = client.post("/predict/batch", files=files, data={"listing_id": "B1", "region": "ap-south"})
            assert r.status_code == 200
            res = r.json()["results"]
            assert [("label" in x, x.get("status")) for x in res] == [(True, None), (False, 400), (True, None)]
            r = client.post("/predict/batch", files=files[:2], data={"listing_id": ["x", "y", "z"], "region": "ap-south"})
            assert r.status_code == 422 and "one value for all images or one per image" in r.json()["error"]
    finally:
        serve.delete(APP_NAME)


def test_an_injected_fault_reaches_every_replica(tmp_path):
    """The benchmark runs two candidate replicas; a fault set through one must hold on both."""
    from serving.faults import FaultyModelServer

    conf = settings_for(tmp_path).model_dump(mode="json")
    one, other = FaultyModelServer("candidate", conf), FaultyModelServer("candidate", conf)
    assert other._fault() == ("none", 0.0)
    one.set_fault("slow", 0.25)
    assert other._fault() == ("slow", 0.25)
    other.set_fault("none")
    assert one._fault() == ("none", 0.0)
    with pytest.raises(ValueError, match="fault must be one of"):
        one.set_fault("melt")

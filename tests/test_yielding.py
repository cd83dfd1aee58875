"""Shadow computation steps aside while a request is in flight on its node (serving.yielding): the
ingress's count is seen from another process, a dead ingress's count is ignored, a pass pauses no longer
than its budget, checkpoints leave the model's answers unchanged, and through real Ray Serve a shadow
job waits while a request is in flight, finishes once none is, and logs the time it computed, not the time
it waited."""

from __future__ import annotations

import multiprocessing as mp
import os
import time

import httpx
import numpy as np
import pytest
from sqlalchemy import select

from serving.yielding import InFlight, NodeActivity, Yielder

from tests.conftest import serving_settings
from tests.test_skeleton_e2e import jpeg, wait_for


def _hold(directory, entered, release, crash) -> None:  # noqa: ANN001 - runs in a child process
    flight = InFlight(directory)
    flight.__enter__()
    entered.set()
    release.wait(10)
    if crash:
        os._exit(0)  # dies holding a request in flight, its file left behind
    flight.__exit__(None, None, None)
    entered.clear()
    release.clear()
    release.wait(10)


def _child(directory, crash: bool):  # noqa: ANN202
    ctx = mp.get_context("fork")
    entered, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold, args=(directory, entered, release, crash))
    proc.start()
    assert entered.wait(10)
    return proc, entered, release


def test_another_process_sees_the_ingress_count(tmp_path):
    activity = NodeActivity(tmp_path, rescan_s=0.0)
    assert not activity.busy()  # no ingress yet
    proc, entered, release = _child(tmp_path, crash=False)
    try:
        assert activity.busy()
        release.set()
        deadline = time.monotonic() + 5
        while entered.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)
        assert not activity.busy()  # the request ended; the ingress lives on
        assert list(tmp_path.glob("ingress-*"))
    finally:
        release.set()
        proc.join(10)


def test_a_dead_ingress_does_not_hold_the_node_busy(tmp_path):
    activity = NodeActivity(tmp_path, rescan_s=0.0)
    proc, _, release = _child(tmp_path, crash=True)
    assert activity.busy()
    release.set()
    proc.join(10)
    assert not activity.busy()
    assert not list(tmp_path.glob("ingress-*")), "the dead ingress's file was not removed"


def test_a_pass_pauses_while_busy_and_within_its_budget(tmp_path):
    flight = InFlight(tmp_path)
    yielder = Yielder(NodeActivity(tmp_path, rescan_s=0.0), max_pause_s=0.3)
    t0 = time.perf_counter()
    yielder.checkpoint()
    assert time.perf_counter() - t0 < 0.05 and yielder.paused_s == 0.0  # quiet node: no pause
    with flight:
        yielder.begin()
        t0 = time.perf_counter()
        yielder.checkpoint()
        yielder.checkpoint()  # budget spent: the pass computes on
        assert 0.25 < time.perf_counter() - t0 < 0.6
        assert 0.25 < yielder.paused_s < 0.6 and yielder.paused_in_pass == pytest.approx(yielder.paused_s)
        yielder.begin()  # the next pass has a budget again
        t0 = time.perf_counter()
        yielder.checkpoint()
        assert time.perf_counter() - t0 > 0.25
    flight.close()
    assert not flight.path.exists()


def test_checkpoints_leave_the_answers_unchanged(settings, tmp_path):
    from roomsight import registry
    from roomsight.registry import ModelRef
    from training.synthetic import render

    pack = registry.load_model(ModelRef("roomtype", "1"))
    yielder = Yielder(NodeActivity(tmp_path), max_pause_s=1.0)
    calls = []
    yielder.activity.busy = lambda: calls.append(1) or False  # type: ignore[method-assign]  # counts checkpoints
    checked = pack.with_checkpoint(yielder.checkpoint)
    images = [render(label, np.random.default_rng(i), 96) for i, label in enumerate(("bedroom", "kitchen", "view"))]
    plain, stepped = pack.predict(images), checked.predict(images)
    assert [o.probs for o in plain] == [o.probs for o in stepped]
    convs = sum(1 for n in pack.module.graph.nodes if n.op == "call_function" and "conv" in str(n.target))
    assert convs >= 2 and len(calls) == convs  # one checkpoint per convolution, once per forward pass
    name = next(n for n, _ in pack.module.named_parameters())
    assert checked.module.get_parameter(name) is pack.module.get_parameter(name)  # weights shared, not copied


@pytest.mark.ray
def test_a_shadow_job_waits_while_a_request_is_in_flight(settings, ray_session, serve_port):
    from ray import serve

    from roomsight.db import engine_for
    from roomsight.tables import predictions
    from rollout.control import ControlPlane
    from rollout.plan import load_plan
    from shell.traffic import wait_idle
    from serving.runner import APP_NAME, start_serve
    from serving.yielding import signal_dir

    s = serving_settings(settings, serve_port, shadow_yield_max_s=30.0)
    plan = load_plan().unconditional(hold_ood_on_champion=False)
    cp = ControlPlane(s, plan, actor="yield-test")
    cp.current()
    start_serve(s)
    candidate = serve.get_deployment_handle("candidate", app_name=APP_NAME)
    engine = engine_for(s.db_url)
    url = f"http://127.0.0.1:{serve_port}"
    # Another "ingress" on this node: the test process, known to the candidate before it holds a request.
    held = InFlight(signal_dir(s.home))

    def post(i: int) -> dict:
        r = client.post("/predict", files={"image": ("p.jpg", jpeg("kitchen", i), "image/jpeg")},
                        data={"listing_id": f"Y{i}", "region": "us-east"})
        assert r.status_code == 200, r.text
        return r.json()

    def shadow_status(request_id: str) -> str | None:
        with engine.connect() as c:
            return c.execute(select(predictions.c.shadow_status).where(predictions.c.request_id == request_id)).scalar()

    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            cp.start("models:/roomtype/2")
            wait_for(client, "stage", "shadow")
            post(0)  # the candidate loads the version and builds its checkpointed copy
            assert wait_idle(url, timeout=30)
            time.sleep(1.2)  # past the candidate's next look at the directory
            with held:
                answer = post(1)
                assert answer["served_by"] == "champion"  # the answer does not wait
                time.sleep(1.5)
                assert shadow_status(answer["request_id"]) is None, "the shadow job ran while a request was in flight"
                assert client.get("/healthz").json()["shadow"]["inflight"] == 1
                assert candidate.priority.remote().result() == "idle"  # the replica answers other calls meanwhile
            assert wait_idle(url, timeout=15)
            assert shadow_status(answer["request_id"]) == "ok"
            assert candidate.paused_s.remote().result() > 1.4
            # Its logged latency is the model's time, not the time it stepped aside.
            with engine.connect() as c:
                ms = c.execute(select(predictions.c.candidate_ms).where(predictions.c.request_id == answer["request_id"])).scalar()
            assert ms is not None and ms < 1000, ms  # it waited over 1.5 s
    finally:
        held.close()
        serve.delete(APP_NAME)

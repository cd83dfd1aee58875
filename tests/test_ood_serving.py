"""Out-of-domain flags in the serving path, over real HTTP: `/predict` returns them, the log stores them
with the descriptors, and in limited a flagged photo from the candidate's slice stays on the champion."""

from __future__ import annotations

import io

import httpx
import numpy as np
import pytest
from sqlalchemy import select

from monitoring.shifts import shift
from tests.conftest import serving_settings
from tests.test_skeleton_e2e import drained, wait_for

pytestmark = pytest.mark.ray

HOLDING_PLAN = """
name: hold
regions: [eu-west, us-east]
limited: {regions: [eu-west], percent: 100}
hold_ood_on_champion: true
"""


def photo(kind: str, seed: int) -> bytes:
    from training.synthetic import render

    im = render("kitchen", np.random.default_rng(seed), 64)
    if kind == "night":
        im = shift(im, "night_street", 0.5, seed)
    elif kind == "small":
        im = shift(im, "small", 0.3, seed)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=92)
    return buf.getvalue()


def post(client: httpx.Client, kind: str, seed: int, region: str = "eu-west") -> dict:
    r = client.post("/predict", files={"image": ("p.jpg", photo(kind, seed), "image/jpeg")},
                    data={"listing_id": f"L{seed}", "region": region})
    assert r.status_code == 200, r.text
    return r.json()


def test_ood_flags_served_logged_and_held(settings, ray_session, serve_port, tmp_path):
    from ray import serve

    from roomsight.db import engine_for
    from roomsight.tables import predictions
    from rollout.control import ControlPlane
    from rollout.plan import load_plan
    from serving.runner import start_serve

    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(HOLDING_PLAN)
    port = serve_port
    s = serving_settings(settings, port, candidate_timeout_s=30)
    cp = ControlPlane(s, load_plan(plan_file), actor="ood-test")
    cp.current()  # writes the first (stable) routing state, which the Serve app reads
    start_serve(s)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            normal, night, small = post(client, "normal", 1), post(client, "night", 2), post(client, "small", 3)
            assert normal["ood"]["flags"] == [] and set(normal["ood"]["scores"]) == {"night_time", "low_resolution", "novelty"}
            assert "night_time" in night["ood"]["flags"] and night["ood"]["scores"]["night_time"] > 0.9
            assert "low_resolution" in small["ood"]["flags"]

            cp.start("models:/roomtype/2", reason="ood test")
            cp.promote("limited", ("eu-west",), reason="ood test")
            wait_for(client, "stage", "limited", timeout=30)  # not a timing test: the 5 s promise is test_skeleton_e2e's
            in_slice = post(client, "normal", 4)
            held = post(client, "night", 5)
            assert in_slice["served_by"] == "candidate" and in_slice["ood"]["flags"] == []
            assert held["served_by"] == "champion" and held["ood"]["held"] == ["night_time"]
            assert 'roomsight_ood_flags_total{flag="night_time"} 2.0' in client.get("/metrics").text
            drained(client)

        with engine_for(s.db_url).connect() as conn:
            rows = {r.request_id: r for r in conn.execute(select(predictions))}
        for answer in (normal, night, small, in_slice, held):
            row = rows[answer["request_id"]]
            assert row.ood["flags"] == answer["ood"]["flags"]
            assert {"brightness", "sharpness", "width", "max_softmax", "embedding_distance"} <= set(row.descriptors)
        assert rows[small["request_id"]].descriptors["width"] == 16
        assert rows[held["request_id"]].routing_reason == "ood-held"
        assert rows[in_slice["request_id"]].routing_reason == "slice"
        assert rows[night["request_id"]].descriptors["brightness"] < rows[normal["request_id"]].descriptors["brightness"] / 3
    finally:
        serve.delete("roomsight")

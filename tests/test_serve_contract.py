"""The Serve app's published contract, checked from outside over real HTTP: schemathesis fuzzes every
operation of `/openapi.json` with all its checks (bodies, status codes and content types as documented;
what the schema calls valid accepted, what it calls invalid refused), and `/metrics` passes
`promtool check metrics` with the rollout's own series in it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pytest

from tests.conftest import serving_settings
from tests.test_images import png_header_only
from tests.test_skeleton_e2e import jpeg, wait_for

pytestmark = pytest.mark.ray

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def app(trained_home, tmp_path_factory, ray_session, serve_port):
    """The Serve app with the champion answering, and its control plane (for the rollout series)."""
    from ray import serve

    from roomsight import registry
    from rollout.control import ControlPlane
    from rollout.plan import load_plan
    from serving.runner import APP_NAME, start_serve
    from tests.conftest import settings_for

    home = tmp_path_factory.mktemp("contract-home")
    shutil.copy(trained_home / "mlflow.db", home / "mlflow.db")
    s = serving_settings(settings_for(home), serve_port)
    registry.configure(s)
    cp = ControlPlane(s, load_plan().model_copy(update={"gates": {}}), actor="contract-test")
    cp.current()
    url = start_serve(s)
    with httpx.Client(base_url=url, timeout=30) as client:
        wait_for(client, "status", "ok", timeout=60)
        yield url, client, cp
    serve.delete(APP_NAME)


def test_the_running_app_keeps_the_schema_it_publishes(app, tmp_path):
    url, _, _ = app
    report = tmp_path / "schemathesis.xml"
    run = subprocess.run(
        [str(Path(sys.executable).with_name("schemathesis")), "run", f"{url}/openapi.json", "--checks", "all",
         "--max-examples", "100", "--seed", "1", "--workers", "1", "--no-color", "--generation-database", "none",
         # A model call on a busy shared machine is slow, not hung: a hang would still time out.
         "--request-timeout", "60", "--max-response-time", "60",
         "--report", "junit", "--report-junit-path", str(report)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.schemathesis_photos", "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
    tested = {case.get("name") for case in ElementTree.parse(report).iter("testcase")}
    assert tested == {"POST /predict", "POST /predict/batch", "GET /healthz", "GET /metrics"}


def test_metrics_pass_promtool_with_the_rollout_series(app):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus)")
    _, client, cp = app
    cp.start("models:/roomtype/2", reason="contract test")
    cp.promote("limited", ("eu-west",), force=True, reason="contract test: no traffic yet")
    wait_for(client, "stage", "limited", timeout=60)  # not the 5 s promise: the machine may be busy
    # The candidate's replica may still be loading when the state turns limited: the champion answers until then.
    deadline, served = time.monotonic() + 120, []
    while "candidate" not in served and time.monotonic() < deadline:
        r = client.post("/predict", files={"image": ("p.jpg", jpeg("kitchen", len(served)), "image/jpeg")},
                        data={"listing_id": "M0", "region": "eu-west"})
        served.append(r.json()["served_by"])
    # Label values with characters the exposition format must escape come from clients: they must not break it.
    for i, region in enumerate(["us-east", 'quote" back\\slash', "new\nline", "ünï"], start=1):
        files = {"image": ("p.jpg", jpeg("kitchen", i), "image/jpeg")}
        assert client.post("/predict", files=files, data={"listing_id": f"M{i}", "region": region}).status_code == 200
    assert client.post("/predict", files={"image": ("p.jpg", b"nope", "image/jpeg")},
                       data={"listing_id": "M", "region": "r"}).status_code == 400
    bomb = client.post("/predict", files={"image": ("p.png", png_header_only(20_000, 20_000), "image/png")},
                       data={"listing_id": "M", "region": "r"})
    assert bomb.status_code == 413 and "the limit is" in bomb.json()["error"]
    torn = client.post("/predict", content=b"garbage", headers={"content-type": "multipart/form-data; boundary=x"})
    assert torn.status_code == 400 and "multipart body cannot be read" in torn.json()["error"]
    r = client.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain")
    check = subprocess.run([promtool, "check", "metrics"], input=r.content, capture_output=True, timeout=60)
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
    text = r.text
    assert 'roomsight_rollout_stage{stage="limited"} 1.0' in text
    assert 'roomsight_rollout_candidate_share{region="eu-west"} 1.0' in text
    assert 'roomsight_rollout_candidate_share{region="us-east"} 0.0' in text
    assert served[-1] == "candidate", served
    assert 'roomsight_requests_total{region="eu-west",served_by="candidate",stage="limited"} 1.0' in text
    assert 'roomsight_rejected_total{reason="bad-image"} 1.0' in text
    assert 'roomsight_rejected_total{reason="too-large"}' in text  # over the pixel limit: too large, not bad
    assert 'roomsight_rejected_total{reason="malformed-form"}' in text  # schemathesis's torn bodies add to it
    cp.rollback("contract test done")

"""The control API's published schema matches the API: schemathesis, with all its checks (status codes,
content types, response bodies and headers, valid data accepted and invalid refused, auth not ignored,
unsupported methods), runs over real HTTP against `rollout api`'s app on uvicorn, a real MLflow registry
and a SQLite log with a rollout in shadow whose traffic and verdicts give the status real conditions (gates,
an analysis with segments), and finds nothing. No Ray."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pytest

from rollout.api import create_app
from rollout.control import ControlPlane
from rollout.plan import load_plan
from rollout.report.live import LiveReport
from tests.report_world import log_traffic, review
from tests.test_control_api import OLGA, TOKENS
from tests.test_review_web import running

EXAMPLES = os.environ.get("ROOMSIGHT_SCHEMATHESIS_EXAMPLES", "100")
OPERATIONS = {"GET /api/status", "GET /api/history", "POST /api/start", "POST /api/promote", "POST /api/rollback",
              "GET /api/report", "GET /api/report/file", "GET /metrics"}


def shadow_rollout(settings, n: int = 180, verdicts: int = 60,
                   champion_right: float = 1.0) -> tuple[ControlPlane, str, int]:
    """The shipped plan's rollout in shadow, with `n` logged requests and up to `verdicts` given through the
    queue (`champion_right`: how often the champion is right where the two disagree); and how many were."""
    cp = ControlPlane(settings, load_plan(), actor="alice")
    rid = cp.start("models:/roomtype/2", reason="new candidate").after.rollout_id
    log_traffic(settings, cp.engine, rid, n)
    return cp, rid, review(settings, cp.engine, rid, verdicts, champion_right=champion_right)


@pytest.fixture
def control_api(settings):
    """`rollout api`'s app over a rollout in shadow with traffic and verdicts, its report built."""
    cp, rid, _ = shadow_rollout(settings)
    live = LiveReport(cp, rebuild_s=30, poll_s=5, drift_every_s=600)
    with running(create_app(cp, TOKENS, report=live)) as url:
        assert live.latest(wait_s=120) is not None, live.error
        yield cp, rid, url
    live.stop()


def test_the_schema_documents_the_real_contract(control_api) -> None:
    cp, rid, url = control_api
    with httpx.Client(base_url=url, timeout=60) as http:
        r = http.get("/openapi.json")  # no token: the contract is no secret, the data behind it is
        assert r.status_code == 200
        schema = r.json()
        assert http.get("/api/nowhere", headers=OLGA).json() == {"error": "Not Found"}
        assert http.delete("/api/status", headers=OLGA).status_code == 405
        status = http.get("/api/status", headers=OLGA).json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}}
    documented = set()
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            documented.add(f"{method.upper()} {path}")
            assert op["security"] == [{"HTTPBearer": []}], path
            assert op["responses"]["401"]["content"] == error and "WWW-Authenticate" in op["responses"]["401"]["headers"]
            assert "HTTPValidationError" not in str(op), path  # FastAPI's default 422 body is not ours
    assert documented == OPERATIONS
    promote = schema["paths"]["/api/promote"]["post"]
    assert set(promote["responses"]) == {"200", "400", "401", "409", "422", "503"}
    assert promote["responses"]["409"]["content"]["application/json"]["schema"]["$ref"].endswith("/GatesRefused")
    assert set(schema["paths"]["/api/report/file"]["get"]["responses"]["200"]["content"]) == {"text/html"}
    assert set(schema["paths"]["/metrics"]["get"]["responses"]["200"]["content"]) == {"text/plain"}
    assert schema["components"]["schemas"]["RollbackIn"]["required"] == ["reason"]
    assert schema["components"]["schemas"]["StartIn"]["required"] == ["candidate"]
    assert schema["components"]["schemas"]["ApiError"]["required"] == ["error"]
    # The status the schema describes is the one the server gives: real conditions, an analysis among them.
    kinds = {c["kind"] for c in status["exit"] + status["watch"]}
    assert status["state"]["rollout_id"] == rid and {"gate", "analysis"} <= kinds


def test_schemathesis_finds_nothing_over_real_http(control_api, tmp_path: Path) -> None:
    cp, _, url = control_api
    report = tmp_path / "schemathesis.xml"
    cli = Path(sys.executable).with_name("schemathesis")
    run = subprocess.run(
        [str(cli), "run", f"{url}/openapi.json", "--checks", "all", "-H", f"Authorization: {OLGA['Authorization']}",
         "--max-examples", EXAMPLES, "--seed", "1", "--workers", "1", "--generation-database", "none",
         "--no-color", "--output-truncate", "false", "--report", "junit", "--report-junit-path", str(report)],
        cwd=tmp_path, capture_output=True, text=True, timeout=900)
    out = run.stdout + run.stderr
    assert run.returncode == 0 and "No issues found" in out, out[-8000:]
    tested = {case.get("name") for case in ElementTree.parse(report).iter("testcase")}
    assert tested == OPERATIONS

"""The reviewer API's published schema matches the API: schemathesis, with all its checks (status codes,
content types, response bodies and headers, valid data accepted and invalid refused, auth not ignored,
unsupported methods, and the stateful phase following claim -> photo and claim -> verdict links), runs
over real HTTP against the app on uvicorn and a real SQLite queue, and finds nothing. Afterwards the
queue still holds exactly one verdict per finished item. No Ray."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, func, select

from monitoring.review import queue
from monitoring.review.photos import PhotoStore
from monitoring.review.web import create_app
from roomsight.tables import metadata, review_items, review_verdicts
from tests.conftest import settings_for
from tests.test_review_queue import CLASSES, ROLLOUT, log_rows
from tests.test_review_web import ANN, TOKENS, running

EXAMPLES = os.environ.get("ROOMSIGHT_SCHEMATHESIS_EXAMPLES", "50")


@pytest.fixture
def server(tmp_path: Path):
    s = settings_for(tmp_path, ROOMSIGHT_REVIEW__TOKENS=TOKENS)
    engine = create_engine(f"sqlite:///{tmp_path / 'roomsight.db'}", connect_args={"timeout": 30, "check_same_thread": False})
    metadata.create_all(engine)
    log_rows(engine, PhotoStore.for_settings(s), [{"champion": "kitchen", "candidate": "bedroom"}] * 300)
    assert queue.fill(engine, s, ROLLOUT) == 300
    with running(create_app(s, engine)) as url:
        yield url, engine


def test_the_schema_documents_the_real_contract(server) -> None:
    url, _ = server
    schema = httpx.get(f"{url}/openapi.json").json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http", "scheme": "bearer", "description": "A reviewer token from review.tokens."}
    label = schema["components"]["schemas"]["VerdictIn"]["properties"]["label"]
    assert label["enum"] == [*CLASSES, "unusable"]  # what the server accepts now, from the logged answers
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}}
    for path, ops in schema["paths"].items():
        for op in ops.values():
            assert op["security"] == [{"HTTPBearer": []}], path
            assert op["responses"]["401"]["content"] == error and "WWW-Authenticate" in op["responses"]["401"]["headers"]
            assert "HTTPValidationError" not in str(op), path  # FastAPI's default 422 body is not ours
    verdict = schema["paths"]["/api/verdict"]["post"]["responses"]
    assert {"200", "400", "401", "404", "409", "422"} == set(verdict) and verdict["409"]["content"] == error
    assert set(schema["paths"]["/api/photo/{item_id}"]["get"]["responses"]["200"]["content"]) == {"image/jpeg"}
    assert schema["components"]["schemas"]["ApiError"]["required"] == ["error"]


def test_schemathesis_finds_nothing_over_real_http(server, tmp_path: Path) -> None:
    url, engine = server
    cli = Path(sys.executable).with_name("schemathesis")
    run = subprocess.run(
        [str(cli), "run", f"{url}/openapi.json", "--checks", "all", "-H", f"Authorization: {ANN['Authorization']}",
         "--max-examples", EXAMPLES, "--seed", "1", "--workers", "1", "--generation-database", "none",
         "--no-color", "--output-truncate", "false"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    out = run.stdout + run.stderr
    assert run.returncode == 0 and "No issues found" in out, out[-6000:]
    assert "API Links:    2 covered / 2 selected / 2 total" in out, out[-3000:]
    assert "6 selected / 6 total" in out

    with engine.connect() as c:
        done = c.execute(select(func.count()).where(review_items.c.status == "done")).scalar_one()
        stored = c.execute(select(review_verdicts.c.item_id, review_verdicts.c.reviewer)).all()
    # The stateful phase recorded real verdicts through the links, all ann's, at most one per item (an item
    # drawn for a second opinion stays open for another reviewer after hers).
    assert stored and len(stored) == len({s.item_id for s in stored}) >= done and {s.reviewer for s in stored} == {"ann"}

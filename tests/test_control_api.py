"""The control plane over real HTTP (uvicorn on localhost, a real MLflow registry and SQLite): every
route needs an operator token, the token's holder is the recorded actor, gates refuse with numbers,
racing promotes leave one winner, and rollback moves routing and MLflow aliases together. No Ray."""

from __future__ import annotations

import threading

import httpx
import pytest

from roomsight import registry
from roomsight.auth import bearer_token, token_holder
from rollout.api import create_app
from rollout.control import ControlPlane, Outcome
from rollout.plan import load_plan
from roomsight.errors import ConfigError, RegistryError, RolloutError
from tests.conftest import settings_for
from tests.plans import open_plan
from tests.test_control import log_gates_only, log_shadow_traffic
from tests.test_review_web import running

TOKENS = {"olga": "olga-operator-token", "ci": "ci-operator-token"}
OLGA = {"Authorization": "Bearer olga-operator-token"}
CI = {"Authorization": "Bearer ci-operator-token"}


def test_token_holder_needs_the_exact_token() -> None:
    assert token_holder("olga-operator-token", TOKENS) == "olga"
    for wrong in ("olga-operator-toke", "olga-operator-token ", "OLGA-OPERATOR-TOKEN", "", None):
        assert token_holder(wrong, TOKENS) is None
    assert bearer_token("Bearer abc") == "abc" and bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Basic abc") is None and bearer_token("Bearer ") is None and bearer_token(None) is None


def test_refuses_to_start_without_tokens(settings) -> None:
    with pytest.raises(ConfigError, match="control.tokens"):
        create_app(ControlPlane(settings, load_plan()), {})


@pytest.mark.parametrize("raised, status", [
    (RolloutError("no rollout in progress"), 409), (RegistryError("MLflow is out of reach"), 503),
    (ValueError("a bug"), 500), (KeyError("a bug"), 500),
])
def test_a_refusal_answers_its_status_and_a_bug_stays_a_500(tmp_path, raised, status) -> None:
    from fastapi.testclient import TestClient

    class Raising(ControlPlane):
        def with_actor(self, actor: str) -> ControlPlane:
            return self

        def rollback(self, *args, **kwargs):
            raise raised

    app = create_app(Raising(settings_for(tmp_path), load_plan()), TOKENS)
    r = TestClient(app, raise_server_exceptions=False).post("/api/rollback", json={"reason": "x"}, headers=OLGA)
    assert r.status_code == status
    if status != 500:
        assert r.json() == {"error": str(raised)}


def test_a_change_sent_with_the_generation_seen_is_refused_once_the_guard_moved_the_rollout(tmp_path) -> None:
    """A person promotes the step they were shown; the guard promoted it a moment before (its time was up), and
    the person's promotion moved it a second step, or with --force past conditions they never read. Sent with
    the generation they saw, it is a 409 and nothing changes."""
    from fastapi.testclient import TestClient

    from roomsight.registry import ModelRef
    from roomsight.rollout_state import RoutingState, Versioned
    from rollout import stages

    plan = open_plan()
    on_limited = stages.advance(stages.start(RoutingState(champion=ModelRef("roomtype", "1")),
                                             ModelRef("roomtype", "2"), "r", plan, 0), plan, 1, 0)

    class Moved(ControlPlane):  # the guard promoted the rollout from generation 7 to 8 before the request came
        def with_actor(self, actor: str) -> ControlPlane:
            return self

        def current(self) -> Versioned:
            return Versioned(8, stages.advance(on_limited, plan, 2, 10), 10.0)

        def _commit(self, action, cur, after, **_):  # noqa: ANN001, ANN202 - records instead of writing
            self.committed.append(action)
            return Outcome(action, cur.state, after, generation=cur.generation + 1)

    cp = Moved(settings_for(tmp_path), plan)
    cp.committed = []
    client = TestClient(create_app(cp, TOKENS), raise_server_exceptions=False)
    for path, body in (("/api/promote", {"force": True, "reason": "step 2 looked fine"}),
                       ("/api/rollback", {"reason": "step 2 looked bad"})):
        r = client.post(path, json={**body, "generation": 7}, headers=OLGA)
        assert r.status_code == 409 and "generation 7, now 8" in r.json()["error"], (path, r.text)
    assert cp.committed == []
    seen = client.post("/api/promote", json={"dry_run": True}, headers=OLGA).json()["generation"]
    r = client.post("/api/promote", json={"generation": seen, "force": True, "reason": "r"}, headers=OLGA)
    assert r.status_code == 200 and cp.committed == ["promote"], "the generation it was shown goes ahead"


def test_the_cli_and_the_api_print_one_status(tmp_path) -> None:
    """`rollout status --json` and GET /api/status are the same document (Status.to_dict), key for key."""
    import json

    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from roomsight.registry import ModelRef
    from roomsight.rollout_state import RoutingState, write_state
    from shell.cli import app as cli

    settings = settings_for(tmp_path)
    cp = ControlPlane(settings, load_plan())
    write_state(cp.engine, RoutingState(champion=ModelRef("roomtype", "1")), None)  # no MLflow needed to read it
    printed = CliRunner().invoke(cli, ["status", "--json"], env={"ROOMSIGHT_HOME": str(tmp_path)})
    assert printed.exit_code == 0, printed.output
    served = TestClient(create_app(cp, TOKENS)).get("/api/status", headers=OLGA)
    assert served.status_code == 200 and json.loads(printed.output) == served.json()
    assert served.json()["state"]["champion"]["version"] == "1"


def test_operations_need_a_token_and_record_its_holder(settings) -> None:
    cp = ControlPlane(settings, log_gates_only(), actor="nobody")
    with running(create_app(cp, TOKENS)) as url, httpx.Client(base_url=url, timeout=60) as http:
        for method, path, body in (("GET", "/api/status", None), ("GET", "/api/history", None),
                                   ("POST", "/api/start", {"candidate": "models:/roomtype/2"}),
                                   ("POST", "/api/promote", {"stage": "limited", "force": True, "reason": "x"}),
                                   ("POST", "/api/rollback", {"reason": "x"})):
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "olga-operator-token"}):
                r = http.request(method, path, json=body, headers=headers)
                assert r.status_code == 401 and "token" in r.json()["error"], (path, headers)
        assert registry.alias_version("roomtype", "candidate") is None  # nothing was started

        r = http.post("/api/start", json={"candidate": "models:/roomtype/2", "reason": "new model"}, headers=OLGA)
        assert r.status_code == 200, r.text
        rid = r.json()["after"]["rollout_id"]
        assert r.json()["after"]["stage"] == "shadow" and registry.alias_version("roomtype", "candidate") == "2"

        r = http.post("/api/promote", json={"stage": "limited"}, headers=CI)
        assert r.status_code == 409 and "compared >= 30: 0" in r.json()["error"]
        assert {g["name"] for g in r.json()["gates"] if g["outcome"] != "pass"} >= {"compared >= 30"}
        assert http.post("/api/promote", json={"stage": "sideways"}, headers=CI).status_code == 409
        assert http.post("/api/promote", json={"stage": 3, "extra": 1}, headers=CI).status_code == 422
        torn = http.post("/api/promote", content=b"{dry", headers={**CI, "content-type": "application/json"})
        assert torn.status_code == 422 and "JSON decode error" in torn.json()["error"]
        r = http.get("/api/history", params={"limit": 0}, headers=OLGA)
        assert r.status_code == 422 and r.json()["error"].startswith("invalid request: limit:")  # a query, named

        log_shadow_traffic(settings, rid, 40)
        r = http.post("/api/promote", json={"stage": "limited", "regions": ["eu-west"]}, headers=CI)
        assert r.status_code == 200 and r.json()["after"]["regions"] == ["eu-west"]

        status = http.get("/api/status", headers=OLGA).json()
        assert status["state"]["stage"] == "limited" and status["evidence"]["compared"] == 40
        assert status["step"] == "2/7 limited eu-west 100%" and status["next_step"] == "3/7 gradual 10%"
        r = http.post("/api/promote", json={"dry_run": True}, headers=CI)
        assert r.status_code == 200 and r.json()["applied"] is False and r.json()["to_step"] == "3/7 gradual 10%"
        assert http.get("/api/status", headers=OLGA).json()["generation"] == status["generation"]

        r = http.post("/api/rollback", json={"reason": "  "}, headers=OLGA)
        assert r.status_code == 409 and "reason" in r.json()["error"]
        r = http.post("/api/rollback", json={"reason": "drift in eu-west"}, headers=OLGA)
        assert r.status_code == 200 and r.json()["after"]["stage"] == "stable"
        assert registry.alias_version("roomtype", "candidate") is None  # aliases moved with routing
        assert registry.alias_version("roomtype", "champion") == "1"

        events = http.get("/api/history", headers=CI).json()
        assert [(e["action"], e["actor"]) for e in events] == [("rollback", "olga"), ("promote", "ci"), ("start", "olga")]
        assert events[0]["reason"] == "drift in eu-west"
        checked = {c["name"]: c for c in events[1]["conditions"]}  # with the numbers, as status gives them
        assert (checked["compared >= 30"]["value"], checked["compared >= 30"]["kind"]) == (40, "gate")


def test_racing_promotes_over_http_leave_one_winner(settings) -> None:
    plan = open_plan()
    cp = ControlPlane(settings, plan)
    cp.start("models:/roomtype/2")
    with running(create_app(cp, TOKENS)) as url:
        barrier = threading.Barrier(2)
        codes: dict[str, int] = {}

        def go(who: str, headers: dict[str, str], region: str) -> None:
            with httpx.Client(base_url=url, timeout=60) as http:
                barrier.wait()
                codes[who] = http.post("/api/promote", json={"stage": "limited", "regions": [region]}, headers=headers).status_code

        threads = [threading.Thread(target=go, args=("olga", OLGA, "eu-west")),
                   threading.Thread(target=go, args=("ci", CI, "us-east"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(codes.values()) == [200, 409]
    winner = next(who for who, code in codes.items() if code == 200)
    final = cp.current().state
    assert final.stage.value == "limited" and final.regions == (("eu-west",) if winner == "olga" else ("us-east",))
    assert [e["actor"] for e in cp.history() if e["action"] == "promote"] == [winner]
    tags = registry.version_tags(registry.ModelRef("roomtype", "2"))
    assert tags["regions"] == ",".join(final.regions)  # MLflow says what routing says


def test_mlflow_out_of_reach_is_a_503_that_says_so(settings, monkeypatch) -> None:
    from tests.conftest import free_port

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    down = settings.model_copy(update={"mlflow_tracking_uri": f"http://127.0.0.1:{free_port()}"})  # nothing listens
    # A fresh database: status must ask MLflow for the champion, and must not answer "no champion".
    try:
        with running(create_app(ControlPlane(down, load_plan()), TOKENS)) as url, httpx.Client(base_url=url, timeout=60) as http:
            for path in ("/api/status", "/api/history"):
                r = http.get(path, headers=OLGA)
                assert r.status_code == 503 and "cannot reach MLflow" in r.json()["error"], (path, r.text)
    finally:
        registry.configure(settings)  # later tests in this process talk to the live registry

"""The cluster configuration of the README: a real `mlflow server` over HTTP, a real PostgreSQL server
and a shared photo folder, used by "nodes" (data directories) that have nothing else in common. What
one node trains or records, another serves and reads, after the first one is gone."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.conftest import free_port, settings_for


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory) -> str:
    """`mlflow server` with its own artifact store (proxied to clients as mlflow-artifacts:), as a team
    would run it; its URL."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    log = (root / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
         "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,  # its workers go with it
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"mlflow server did not start:\n{(root / 'server.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


@pytest.fixture
def shared_database(postgres_url: str) -> str:
    """A database of its own on the session's PostgreSQL server: no rollout state from other tests."""
    import sqlalchemy

    name = f"rs_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return postgres_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.mark.ray
def test_a_model_trained_on_one_node_is_served_and_rolled_out_from_others(tmp_path: Path, mlflow_server: str,
                                                                         shared_database: str, ray_session,
                                                                         serve_port: int) -> None:
    """With a tracking server and no artifact root configured, artifacts used to land in the training
    node's home (file:///...): the registry named them, and no other node could load them."""
    import httpx

    from monitoring.review.photos import PhotoStore
    from roomsight import registry
    from roomsight.db import engine_for
    from roomsight.tables import predictions
    from rollout.control import ControlPlane
    from rollout.plan import load_plan
    from shell.traffic import wait_applied, wait_idle
    from serving.runner import start_serve, stop_serve
    from tests.conftest import serving_settings
    from tests.test_skeleton_e2e import jpeg
    from training.pipeline import TrainConfig, train

    shared = {"ROOMSIGHT_MLFLOW_TRACKING_URI": mlflow_server, "ROOMSIGHT_DATABASE_URL": shared_database,
              "ROOMSIGHT_REVIEW__PHOTO_DIR": str(tmp_path / "nfs" / "photos")}
    trainer_home = tmp_path / "trainer"
    trainer = settings_for(trainer_home, **shared)
    first = train(trainer, TrainConfig(seed=0, epochs=1))
    second = train(trainer, TrainConfig(seed=1, epochs=1))
    assert first.registered.became_champion
    shutil.rmtree(trainer_home)  # the training node is gone

    node = settings_for(tmp_path / "serving-node", **shared)
    registry.configure(node)
    run = registry.client().get_run(first.registered.run_id)
    assert run.info.artifact_uri.startswith("mlflow-artifacts:"), run.info.artifact_uri
    champion = registry.load_model(registry.resolve("models:/roomtype@champion"))  # as a Serve replica does
    assert champion.version == first.registered.ref.version and champion.meta.classes

    control = ControlPlane(node, load_plan(), actor="operator")
    started = control.start(second.registered.ref.uri, reason="remote stores")
    assert started.after.candidate == second.registered.ref
    assert registry.alias_version("roomtype", "candidate") == second.registered.ref.version

    # A third node sees the same rollout: its state from PostgreSQL, its record and evidence from MLflow.
    other = ControlPlane(settings_for(tmp_path / "operator-laptop", **shared), load_plan(), actor="someone")
    assert other.current().state.rollout_id == started.after.rollout_id
    (event,) = other.history()
    assert event["action"] == "start" and event["actor"] == "operator"
    evidence = registry.client().download_artifacts(started.run_id, "evidence.json", str(tmp_path))
    assert Path(evidence).read_text().startswith("{")

    # The Serve app's replicas load both versions through the server; its log goes to PostgreSQL and
    # its photos to the shared folder, where a review server elsewhere finds them.
    url = start_serve(serving_settings(node, serve_port))
    try:
        wait_applied(url, started.generation)
        with httpx.Client(base_url=url, timeout=30) as client:
            r = client.post("/predict", files={"image": ("k.jpg", jpeg("kitchen", 0), "image/jpeg")},
                            data={"listing_id": "L1", "region": "eu-west"})
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["served_by"] == "champion" and answer["model"]["version"] == first.registered.ref.version
        assert wait_idle(url)
    finally:
        stop_serve()
    with engine_for(shared_database).connect() as conn:
        row = conn.execute(predictions.select().where(predictions.c.request_id == answer["request_id"])).one()
    assert (row.stage, row.candidate_version, row.shadow_status) == ("shadow", second.registered.ref.version, "ok")
    assert PhotoStore.for_settings(settings_for(tmp_path / "review-node", **shared)).has(answer["request_id"])

"""The cluster configuration of the README: a real `mlflow server` over HTTP and a real PostgreSQL
server, shared by nodes that have nothing else in common. What one node trains or records, another
reads, after the first one is gone."""

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


def test_a_model_trained_on_one_node_is_loaded_and_rolled_out_from_others(tmp_path: Path, mlflow_server: str,
                                                                         shared_database: str) -> None:
    """With a tracking server and no artifact root configured, artifacts used to land in the training
    node's home (file:///...): the registry named them, and no other node could load them."""
    from roomsight import registry
    from rollout.control import ControlPlane
    from rollout.plan import load_plan
    from training.pipeline import TrainConfig, train

    shared = {"ROOMSIGHT_MLFLOW_TRACKING_URI": mlflow_server, "ROOMSIGHT_DATABASE_URL": shared_database}
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

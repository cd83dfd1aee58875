"""roomsight on a real multi-node Ray cluster, as the README's "Running on a cluster" section runs it.

On this machine: a head node (`ray start --head`, with a custom resource `roomsight_head`) and a second
node (`ray start --address HEAD`, with `roomsight_models`), each with a temp dir and ports of its own.
`rollout serve` joins the cluster (`ray.address`) in a process of its own; `serve.ingress_resources` keeps
the ingress on the head, `serve.model_resources` puts both models' replicas on the second node, and
`serve.proxy_location: head_only` gives the cluster one HTTP address. During a replay over HTTP, with the
candidate in shadow, the second node is killed (SIGKILL to all its processes) and a replacement node with
the same resource joins, as an autoscaler or a Kubernetes node pool would bring one. Checked: the replicas
ran on the model node, then on its replacement; requests in the outage fail cleanly (503) or wait; the
app answers again; every acknowledged prediction is in the log exactly once.

This test never calls ray.init in the pytest process, so it does not meet the suite's shared local Ray
(tests/conftest.py ray_session): the cluster is separate processes on its own ports and temp dirs.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from tests.conftest import free_port, settings_for
from tests.test_skeleton_e2e import jpeg

pytestmark = pytest.mark.ray

BIN = Path(sys.executable).parent
REPLAY = 240
KILL_AFTER = 60  # acknowledged answers before the model node dies
# A cluster of its own on the loopback interface. Ray 2.60 turns token authentication on when
# ~/.ray/auth_token exists, a file every Ray on this machine shares; this cluster does not depend on it.
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "MLFLOW_DISABLE_TELEMETRY": "true"}
# Node death noticed in seconds rather than Ray's default 15 (5 missed checks, 3 s apart).
HEALTH = {"health_check_period_ms": 1000, "health_check_failure_threshold": 3}


class Node:
    """One `ray start --block` and every process it starts (its own process group, killed as one)."""

    def __init__(self, root: Path, name: str, args: list[str]) -> None:
        ports = [f"--{k}={free_port()}" for k in ("node-manager-port", "object-manager-port", "dashboard-agent-listen-port",
                                                   "dashboard-agent-grpc-port", "metrics-export-port", "runtime-env-agent-port")]
        self.log = root / f"{name}.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen([str(BIN / "ray"), "start", "--block", "--disable-usage-stats",
                                          f"--temp-dir={root / name}", *ports, *args], stdout=log, stderr=subprocess.STDOUT,
                                         env={**os.environ, **RAY_ENV}, start_new_session=True)

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)


@pytest.fixture
def cluster():
    """A head and a model node; yields (address, start_model_node, nodes); kills every node at the end."""
    root = Path(tempfile.mkdtemp(prefix="rs-cluster-", dir="/tmp"))  # short: Ray's socket paths have a length limit
    gcs = free_port()
    nodes: list[Node] = []

    def model_node() -> Node:
        nodes.append(Node(root, f"models{len(nodes)}", [f"--address=127.0.0.1:{gcs}", "--num-cpus=1",
                                                        '--resources={"roomsight_models": 2}']))
        return nodes[-1]

    nodes.append(Node(root, "head", ["--head", f"--port={gcs}", "--num-cpus=1", '--resources={"roomsight_head": 1}',
                                     "--include-dashboard=false", f"--ray-client-server-port={free_port()}",
                                     f"--system-config={json.dumps(HEALTH)}"]))
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                socket.create_connection(("127.0.0.1", gcs), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and nodes[0].proc.poll() is None, nodes[0].log.read_text()[-3000:]
                time.sleep(0.5)
        model_node()
        yield f"127.0.0.1:{gcs}", model_node, nodes
    finally:
        for node in nodes:
            node.kill()
        import shutil

        shutil.rmtree(root, ignore_errors=True)


def replica_places(address: str) -> dict[str, list[str]]:
    """Each live Serve replica of the app, by deployment: the custom resource of the node it runs on
    (`head`, `models`) and that node's id. Asked of the cluster's GCS from a driver process of its own."""
    code = f"""
import json, ray
from ray._private.state import actors
ray.init(address={address!r}, log_to_driver=False)
nodes = {{n["NodeID"]: n["Resources"] for n in ray.nodes() if n["Alive"]}}
out = {{}}
for a in actors(actor_state_name="ALIVE").values():
    if a["ActorClassName"].startswith("ServeReplica:roomsight:"):
        node = a["Address"]["NodeID"]
        kind = "models" if "roomsight_models" in nodes.get(node, {{}}) else "head" if "roomsight_head" in nodes.get(node, {{}}) else "?"
        out.setdefault(a["ActorClassName"].rsplit(":", 1)[1], []).append(kind + ":" + node[:8])
print("PLACES " + json.dumps(out))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env={**os.environ, **RAY_ENV})
    assert done.returncode == 0, done.stderr[-3000:]
    # Ray may print warnings of its own (a busy node's lagging heartbeats) after the answer.
    answer = [line for line in done.stdout.splitlines() if line.startswith("PLACES ")]
    assert answer, done.stdout[-3000:]
    return json.loads(answer[-1].removeprefix("PLACES "))


EXPECTED = {"ingress": {"head"}, "champion": {"models"}, "candidate": {"models"}}


def placement(address: str, timeout: float = 120, gone: frozenset[str] | set[str] = frozenset()) -> dict:
    """The replicas' places once every deployment has a live replica (a model replica may still be
    starting when the ingress already answers /healthz) and no model replica is listed on a `gone` place
    (the GCS lists a dead node's actors as alive until it notices the node's death)."""
    deadline = time.monotonic() + timeout
    while True:
        places = replica_places(address)
        kinds = {d: {p.split(":")[0] for p in ps} for d, ps in places.items()}
        stale = gone & {p for d in ("champion", "candidate") for p in places.get(d, [])}
        if (set(kinds) >= set(EXPECTED) and not stale) or time.monotonic() > deadline:
            return {"places": places, "kinds": kinds}
        time.sleep(2)


def wait_healthy(client: httpx.Client, timeout: float, serve: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert serve.poll() is None, f"rollout serve exited:\n{log.read_text()[-3000:]}"
        try:
            if client.get("/healthz", timeout=5).json().get("status") == "ok":
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"the app was not healthy within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def test_serve_on_a_two_node_cluster_recovers_from_losing_the_model_node(home: Path, tmp_path: Path, cluster) -> None:
    from roomsight.db import engine_for
    from roomsight.tables import predictions
    from rollout.control import ControlPlane
    from rollout.plan import load_plan

    address, model_node, nodes = cluster
    port = free_port()
    env = {**os.environ, **RAY_ENV, "ROOMSIGHT_HOME": str(home), "ROOMSIGHT_RAY__ADDRESS": address,
           "ROOMSIGHT_SERVE__PORT": str(port), "ROOMSIGHT_SERVE__PROXY_LOCATION": "head_only",
           "ROOMSIGHT_SERVE__INGRESS_RESOURCES": '{"roomsight_head": 1}',
           "ROOMSIGHT_SERVE__MODEL_RESOURCES": '{"roomsight_models": 1}', "ROOMSIGHT_SERVE__MODEL_CPUS": "0.4",
           "ROOMSIGHT_SERVE__STATE_POLL_S": "0.25", "ROOMSIGHT_LOG__FLUSH_INTERVAL_S": "0.1"}
    settings = settings_for(home)
    ControlPlane(settings, load_plan(), actor="cluster-test").start("models:/roomtype/2")  # the candidate shadows
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        serve = subprocess.Popen([str(BIN / "rollout"), "serve"], env=env, stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True)
    bodies = [jpeg("kitchen", i) for i in range(16)]
    acked: list[str] = []
    failed: Counter[str] = Counter()
    killed = threading.Event()
    lock = threading.Lock()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=90) as client:
            wait_healthy(client, 180, serve, log)
            placed = placement(address)
            assert placed["kinds"] == EXPECTED, placed
            first_node = {p for d in ("champion", "candidate") for p in placed["places"][d]}

            def send(i: int) -> None:
                try:
                    r = client.post("/predict", files={"image": ("p.jpg", bodies[i % 16], "image/jpeg")},
                                    data={"listing_id": f"K{i}", "region": "eu-west"})
                except httpx.HTTPError as exc:
                    failed[type(exc).__name__] += 1
                    return
                if r.status_code == 200:
                    acked.append(r.json()["request_id"])
                else:
                    failed[str(r.status_code)] += 1
                with lock:
                    if len(acked) >= KILL_AFTER and not killed.is_set():
                        killed.set()
                        nodes[1].kill()  # the model node dies with its replicas
                        model_node()  # and a replacement joins

            t0 = time.monotonic()
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(send, range(REPLAY)))
            assert killed.is_set() and len(acked) >= REPLAY // 2, (len(acked), failed)
            assert set(failed) <= {"503"}, f"requests in the outage must fail cleanly, got {failed}"
            wait_healthy(client, 120, serve, log)
            # The ingress answers /healthz before the replacement node's replicas take requests: recovered
            # is the first answer, after which everything answers.
            deadline = time.monotonic() + 120
            while (first := client.post("/predict", files={"image": ("p.jpg", bodies[0], "image/jpeg")},
                                        data={"listing_id": "R", "region": "us-east"})).status_code == 503:
                assert time.monotonic() < deadline, f"no answer within 120 s of recovery: {first.text}"
                time.sleep(1)
            assert first.status_code == 200, first.text
            acked.append(first.json()["request_id"])
            for i in range(10):
                r = client.post("/predict", files={"image": ("p.jpg", bodies[i], "image/jpeg")},
                                data={"listing_id": f"R{i}", "region": "us-east"})
                assert r.status_code == 200, r.text
                acked.append(r.json()["request_id"])
            print(f"replay of {REPLAY} with the model node killed: {len(acked)} answered, failures {dict(failed)}, "
                  f"{time.monotonic() - t0:.0f} s")
            moved = placement(address, gone=first_node)
            assert moved["kinds"] == EXPECTED, moved
            assert not first_node & {p for d in ("champion", "candidate") for p in moved["places"][d]}, \
                "the models run on the replacement node"
            # Every acknowledged prediction reaches the log, once: the ingress (on the head) flushes every 0.1 s.
            engine = engine_for(settings.db_url)
            deadline = time.monotonic() + 30
            while True:
                with engine.connect() as conn:
                    logged = set(conn.execute(select(predictions.c.request_id)
                                              .where(predictions.c.request_id.in_(acked))).scalars())
                    rows = conn.execute(select(func.count()).select_from(predictions)
                                        .where(predictions.c.request_id.in_(acked))).scalar_one()
                if logged == set(acked) or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert logged == set(acked), f"{len(set(acked) - logged)} acknowledged predictions missing of {len(acked)}"
            assert rows == len(acked) == len(set(acked)), "an acknowledged prediction was logged twice"
    finally:
        serve.send_signal(signal.SIGINT)
        try:
            serve.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait(timeout=10)

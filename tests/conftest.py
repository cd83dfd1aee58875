"""Shared fixtures. Unit tests of pure logic need none of these; the heavier ones are session-scoped so
the suite trains its two small models and starts Ray once.

`make test` runs the suite twice over: the tests off Ray on two pytest-xdist workers, then the tests on Ray
(marked `ray`, or using `ray_session`, which marks them) alone, since they wait on Serve's replicas and a
busy worker beside them would starve those. The runs share the trained models through
$ROOMSIGHT_TEST_MODELS.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

REAL_ROOMS = Path(os.environ.get("ROOMSIGHT_REAL_DATA", Path(__file__).resolve().parents[2] / "shared" / "data" / "rooms"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settings_for(home: Path, **overrides):
    from roomsight.config import load_settings

    env = {"ROOMSIGHT_HOME": str(home)}
    env.update(overrides)
    return load_settings(environ=env)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "ray_session" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.ray)


@pytest.fixture(scope="session")
def trained_home(tmp_path_factory) -> Path:
    """A data directory holding two registered versions: v1 (champion) and v2 (a candidate trained with
    another seed). Tests copy it, so each gets its own registry and aliases. Trained once into
    $ROOMSIGHT_TEST_MODELS when set (by the first process to ask; the others wait for it), else into this
    run's temporary folder."""
    from filelock import FileLock

    from training.pipeline import TrainConfig, train

    shared = os.environ.get("ROOMSIGHT_TEST_MODELS")
    root = Path(shared) if shared else tmp_path_factory.getbasetemp()
    root.mkdir(parents=True, exist_ok=True)
    home, done = root / "trained-home", root / "trained-home.done"
    with FileLock(str(root / "trained-home.lock")):
        if not done.exists():
            shutil.rmtree(home, ignore_errors=True)  # a process that failed half-way left it
            home.mkdir()
            settings = settings_for(home)
            first = train(settings, TrainConfig(seed=0, epochs=8))
            second = train(settings, TrainConfig(seed=1, epochs=8))
            assert first.registered.became_champion and not second.registered.became_champion
            done.touch()
    return home


@pytest.fixture
def home(trained_home: Path, tmp_path: Path) -> Path:
    """A private copy of the trained registry (artifacts are shared read-only by absolute URI)."""
    dst = tmp_path / "home"
    dst.mkdir()
    shutil.copy(trained_home / "mlflow.db", dst / "mlflow.db")
    return dst


@pytest.fixture
def settings(home: Path):
    from roomsight import registry

    s = settings_for(home)
    registry.configure(s)
    return s


@pytest.fixture(scope="session")
def serve_port() -> int:
    """Serve's HTTP proxy binds once per Ray session: every Serve test must use this one port."""
    return free_port()


def serving_settings(settings, port: int, **serve):
    """Settings for a Serve app under test: on `port`, with fast state polls and log flushes."""
    return settings.model_copy(update={
        "serve": settings.serve.model_copy(update={"port": port, "state_poll_s": 0.25, **serve}),
        "log": settings.log.model_copy(update={"flush_interval_s": 0.1})})


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole session (2 CPUs: the Serve replicas take fractions of them)."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    from ray import serve

    serve.shutdown()
    ray.shutdown()


class PostgresServer:
    """A PostgreSQL server in a scratch folder that a test can stop and start again (a database outage)."""

    def __init__(self, ctl: list[str], data: Path, log: Path, port: int, sock: Path) -> None:
        self._ctl = [*ctl, "-D", str(data)]
        self._log, self._port, self._sock = log, port, sock
        self.url = f"postgresql+psycopg://roomsight@127.0.0.1:{port}/postgres"

    def start(self) -> None:
        """Start it (waiting until it accepts connections); a no-op when it is running."""
        import subprocess

        if subprocess.run([*self._ctl, "status"], capture_output=True).returncode == 0:
            return
        subprocess.run([*self._ctl, "-l", str(self._log), "-w", "-o",
                        f"-p {self._port} -k {self._sock} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                       check=True, capture_output=True)

    def stop(self, mode: str = "fast") -> None:
        """Stop it and wait: `fast` aborts sessions cleanly, `immediate` is a crash (no shutdown checkpoint)."""
        import subprocess

        subprocess.run([*self._ctl, "-m", mode, "-w", "stop"], check=True, capture_output=True)


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory):
    """A real PostgreSQL server for the session, started from the Debian binaries in a scratch folder.
    Skips when the binaries are absent; as root it runs the server as the `postgres` user."""
    import getpass
    import subprocess
    import tempfile

    bindir = Path("/usr/lib/postgresql")
    versions = sorted(bindir.glob("*/bin/initdb")) if bindir.exists() else []
    if not versions:
        pytest.skip("PostgreSQL server binaries not installed (Debian package postgresql)")
    bin_ = versions[-1].parent
    # Not under pytest's tmp folder: that one is private to root, and the server runs as `postgres`.
    root = Path(tempfile.mkdtemp(prefix="roomsight-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    as_user: list[str] = []
    if getpass.getuser() == "root":
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_user, str(bin_ / "initdb"), "-D", str(data), "--auth=trust", "-U", "roomsight", "-E", "UTF8"],
                   check=True, capture_output=True)
    server = PostgresServer([*as_user, str(bin_ / "pg_ctl")], data, root / "log", free_port(), sock)
    server.start()
    try:
        yield server
    finally:
        subprocess.run([*as_user, str(bin_ / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    return postgres_server.url


@pytest.fixture
def pg_database(postgres_url: str):
    """A database of its own on the session's PostgreSQL server (an empty schema, no other test's rows);
    its engines are disposed and it is dropped afterwards."""
    import uuid

    import sqlalchemy

    from roomsight import db

    name = f"rs_{uuid.uuid4().hex[:12]}"
    # Pre-pinged: a test may restart the server (an outage), which ends the pooled connection.
    admin = sqlalchemy.create_engine(postgres_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    url = postgres_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        engine = db._engines.pop(url, None)
        if engine is not None:
            engine.dispose()
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()

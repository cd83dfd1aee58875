"""The MLflow model registry as roomsight uses it: versions of one registered model, the aliases
`champion` and `candidate`, version tags that say where a version is live, and one MLflow run per
rollout event. Everything else talks to MLflow through here."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roomsight.config import Settings
from roomsight.errors import BadModelUri, RegistryError, UserError, first_line

CHAMPION = "champion"
CANDIDATE = "candidate"
ROLLOUT_EXPERIMENT = "roomsight-rollouts"
TRAINING_EXPERIMENT = "roomsight-training"

_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[\w-]+))$")


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelRef:
        return cls(name=str(d["name"]), version=str(d["version"]))


def parse_uri(uri: str) -> tuple[str, str | None, str | None]:
    """`models:/name/3` -> (name, "3", None); `models:/name@champion` -> (name, None, "champion")."""
    m = _URI.match(uri.strip())
    if not m:
        raise BadModelUri(f"not a registered-model URI: {uri!r} (expected models:/NAME/VERSION or models:/NAME@ALIAS)")
    return m["name"], m["version"], m["alias"]


def configure(settings: Settings) -> None:
    """Point this process (and the Ray workers it starts, which inherit the environment) at the store."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # MLflow's own defaults (7 retries, 120 s timeout) ride out a hosted backend's rate limits but keep a
    # command waiting for minutes on a server that is down. A self-hosted server is up or it is not:
    # a few seconds of retries, then a clear error (`unreachable`). MLflow's variables still override.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    # MLflow logs schema migrations and pickling advice at INFO/WARNING on every run: noise for our users.
    # It reads this level when it is imported.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    os.environ["MLFLOW_TRACKING_URI"] = settings.tracking_uri
    os.environ["MLFLOW_REGISTRY_URI"] = settings.tracking_uri
    if settings.tracking_uri.startswith("sqlite:"):
        settings.ensure_home()
    # Importing MLflow takes seconds: commands that never reach it (`rollout status` reads the routing state
    # from SQL) should not pay for it. Imported later, it reads the store from the environment; imported
    # already, it may point at another store, so point it at this one.
    if "mlflow" in sys.modules:
        import mlflow

        for name in ("mlflow", "alembic"):
            logging.getLogger(name).setLevel(logging.ERROR)
        mlflow.set_tracking_uri(settings.tracking_uri)
        mlflow.set_registry_uri(settings.tracking_uri)


def client():  # noqa: ANN201 - mlflow.MlflowClient, imported lazily (slow import)
    from mlflow import MlflowClient

    return MlflowClient()


def ensure_experiment(settings: Settings, name: str) -> str:
    """Experiment id, creating it with an artifact location under `settings.artifact_root`: with a
    database tracking URI MLflow would otherwise put artifacts under the current working directory.
    Against a tracking server with no root configured, the server's artifact store."""
    c = client()
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    root = settings.artifact_root
    return c.create_experiment(name, artifact_location=f"{root.rstrip('/')}/{name}" if root else None)


def resolve(uri: str) -> ModelRef:
    """A concrete version for a URI, following an alias."""
    name, version, alias = parse_uri(uri)
    c = client()
    try:
        if alias is not None:
            mv = c.get_model_version_by_alias(name, alias)
        else:
            mv = c.get_model_version(name, version)
    except Exception as exc:
        raise unreachable(exc) or BadModelUri(f"{uri} does not resolve in the registry: {first_line(exc)}") from None
    return ModelRef(name=name, version=str(mv.version))


def check_reachable() -> None:
    """Raise if the registry cannot be read (a server down, a store gone): one cheap query."""
    client().search_registered_models(max_results=1)


def alias_version(name: str, alias: str) -> str | None:
    try:
        return str(client().get_model_version_by_alias(name, alias).version)
    except Exception as exc:
        if (down := unreachable(exc)) is not None:  # "no such alias" and "cannot ask" must not look alike
            raise down from None
        return None


def set_alias(ref: ModelRef, alias: str) -> None:
    client().set_registered_model_alias(ref.name, alias, ref.version)


def delete_alias(name: str, alias: str) -> None:
    try:
        client().delete_registered_model_alias(name, alias)
    except Exception as exc:
        if (down := unreachable(exc)) is not None:
            raise down from None
        # otherwise already absent: the goal state holds


def set_version_tags(ref: ModelRef, tags: dict[str, str]) -> None:
    c = client()
    for key, value in tags.items():
        c.set_model_version_tag(ref.name, ref.version, key, value)


def version_tags(ref: ModelRef) -> dict[str, str]:
    return dict(client().get_model_version(ref.name, ref.version).tags)


@contextlib.contextmanager
def pack_files(ref: ModelRef) -> Iterator[Path]:
    """A registered version's pack (model.pt2, meta.json) in a temporary folder, removed on exit: every
    replica start and CLI command loads a model, and each copy left behind is megabytes."""
    import mlflow.artifacts

    with tempfile.TemporaryDirectory(prefix=f"roomsight-{ref.name}-{ref.version}-") as tmp:
        root = Path(mlflow.artifacts.download_artifacts(artifact_uri=ref.uri, dst_path=tmp))
        yield root / "artifacts" / "pack"


def load_model(ref: ModelRef):  # noqa: ANN201 - roomsight.modelpack.ModelPack
    from roomsight.modelpack import load_pack

    with pack_files(ref) as directory:
        return load_pack(directory, version=ref.version, source=ref.uri)


def load(settings: Settings, uri: str | None = None):  # noqa: ANN201 - roomsight.modelpack.ModelPack
    """How a command loads a model: the pack `uri` names (models:/NAME/VERSION, models:/NAME@ALIAS;
    default: the champion) from the registry `settings` name."""
    configure(settings)
    return load_model(resolve(uri or f"models:/{settings.model_name}@{CHAMPION}"))


def unreachable(exc: BaseException) -> RegistryError | None:
    """A one-line error if `exc` (or what caused it) is a failure to reach the tracking server or its
    database; None for anything else, which the caller handles as before."""
    import requests
    from sqlalchemy.exc import DatabaseError, InterfaceError, OperationalError

    seen: BaseException | None = exc
    for _ in range(10):  # MLflow wraps the transport's error once or twice; the chain is short
        if seen is None:
            break
        # roomsight's own database raises the same SQLAlchemy errors: those are not MLflow's unless MLflow raised them.
        # A plain DatabaseError is a file that is not a database; its other subclasses (IntegrityError, ...) are not
        # about reaching the store.
        store_error = isinstance(seen, (OperationalError, InterfaceError)) or type(seen) is DatabaseError
        if (isinstance(seen, (requests.ConnectionError, requests.Timeout))
                or store_error and _raised_in_mlflow(seen)):
            uri = os.environ.get("MLFLOW_TRACKING_URI", "?")
            return RegistryError(f"cannot reach MLflow at {_redact(uri)} (the `mlflow_tracking_uri` setting): {_reason(seen)}")
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)
    return None


def _raised_in_mlflow(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        if str(tb.tb_frame.f_globals.get("__name__", "")).startswith("mlflow."):
            return True
        tb = tb.tb_next
    return False


@contextlib.contextmanager
def reaching() -> Iterator[None]:
    """Around direct MLflow calls: a server out of reach becomes a RegistryError that says so."""
    try:
        yield
    except UserError:
        raise  # already says what is wrong
    except Exception as exc:
        if (down := unreachable(exc)) is not None:
            raise down from None
        raise


def _reason(exc: BaseException) -> str:
    """The operating system's words if the message carries them ("[Errno 111] Connection refused"):
    requests nests them several exceptions deep in one long line."""
    import requests

    if isinstance(exc, requests.Timeout):
        return "timed out"
    cause = getattr(exc, "orig", None) or exc  # SQLAlchemy keeps the driver's own error in .orig
    errno = re.search(r"\[Errno -?\d+\] [^'\")]+", str(cause))
    return errno[0] if errno else first_line(cause)


def _redact(uri: str) -> str:
    """The URI without user information: a password may sit in it. (db.redact needs a SQLAlchemy URL; a
    tracking URI may be a plain path.)"""
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl() if parts.netloc else uri

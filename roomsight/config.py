"""One validated place for configuration.

Settings come from, lowest priority first: built-in defaults, a YAML file (`--config`,
`$ROOMSIGHT_CONFIG`, or `$ROOMSIGHT_HOME/config.yaml` if it exists), then environment variables
`ROOMSIGHT_<SECTION>__<KEY>` (e.g. `ROOMSIGHT_SERVE__PORT=8080`) or `ROOMSIGHT_<KEY>` for top-level
keys, but for the few in `NOT_SETTINGS`. A bad value fails at start-up with an error that names the key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

# The watching sections live beside; importing them here keeps `roomsight.config` the one place to ask.
from roomsight.config_sections import (ControlSettings, MonitoringSettings, NotifySettings, ReviewSettings,  # noqa: F401
                                      ModelName, SmtpSettings, WebhookSettings, _expanded, _Section)
from roomsight.config_env import NOT_SETTINGS, describe_error, env_overrides, merged  # noqa: F401
from roomsight.errors import ConfigError
from roomsight.listening import MAX_PORT
from roomsight.userfiles import read_yaml

class RaySettings(_Section):
    address: str | None = Field(None, description="Ray cluster to join: 'auto', 'HEAD:6379' or 'ray://HEAD:10001'; empty starts a local Ray.")
    num_cpus: float | None = Field(2, gt=0, description="CPUs for a local Ray; ignored when joining a cluster.")
    train_storage: str | None = Field(None, description="Where Ray Train (`rollout train --workers N`) keeps its checkpoints; "
                                                        "default home/ray-train. Across nodes, a shared folder or s3:// URI.")

    @field_validator("address")
    @classmethod
    def _address_form(cls, v: str | None) -> str | None:
        # Ray's own parse fails only after the registry is read, with a ValueError traceback.
        if v:
            ray_endpoint(v)
        return v or None

    @property
    def local(self) -> bool:
        """Whether this process starts its own Ray, here: no `ray.address` (Ray's RAY_ADDRESS is not read)."""
        return self.address is None


RAY_CLIENT_PORT = 10001  # Ray Client's default, for a ray:// address without one


def ray_endpoint(address: str) -> tuple[str, int] | None:
    """The host and port a `ray.address` names; None for 'auto', where Ray finds the cluster itself.
    ValueError if it is none of the forms Ray takes."""
    if address == "auto":
        return None
    rest = address.removeprefix("ray://")
    host, colon, port = rest.rpartition(":")
    if rest and not colon and address.startswith("ray://"):
        return rest, RAY_CLIENT_PORT
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("expected 'auto', 'ray://HOST[:PORT]' or 'HOST:PORT'")
    return host.strip("[]"), int(port)


class ServeSettings(_Section):
    host: str = Field("127.0.0.1", description="HTTP bind address of the Serve proxy.")
    port: int = Field(8000, ge=1, le=MAX_PORT, description="HTTP port of the Serve proxy.")
    ingress_cpus: float = Field(0.25, gt=0, description="CPUs reserved per ingress replica (fractional: 2-core machines).")
    model_cpus: float = Field(0.5, gt=0, description="CPUs reserved per model replica.")
    model_replicas: int = Field(1, ge=1, description="Replicas per model deployment (champion and candidate).")
    torch_threads: int = Field(1, ge=1, description="Intra-op threads per model replica; replicas x threads should not exceed the cores.")
    max_batch_size: int = Field(8, ge=1, description="Largest batch a model replica runs at once (@serve.batch).")
    batch_wait_timeout_s: float = Field(0.005, ge=0, description="How long a replica waits to fill a batch.")
    shadow_queue_size: int = Field(64, ge=0, description="Shadow jobs waiting per ingress for the models to be idle; beyond it shadow work is dropped and counted.")
    shadow_concurrency: int = Field(1, ge=1, description="Shadow calls in flight at once per ingress (serving.shadowing).")
    shadow_max_wait_s: float = Field(5.0, gt=0, description="A shadow job that waits longer than this for idle models is dropped and counted.")
    shadow_batch_size: int = Field(1, ge=1, description="Shadow jobs sent to a model in one call: fewer hops through the ingress, "
                                   "but a slow candidate then computes more of the jobs it would otherwise drop.")
    shadow_batch_wait_s: float = Field(0.5, ge=0, description="A partial shadow batch starts once its oldest job has waited this long.")
    shadow_timeout_s: float = Field(10.0, gt=0, description="A shadow call still running after this is abandoned and counted as an error "
                                    "(a batch's calls, one per model, run at once).")
    shadow_priority: Literal["idle", "normal"] = Field("idle", description="CPU priority of the candidate's replicas while it only shadows: "
                                                      "idle (Linux SCHED_IDLE) gives it only cycles the champion leaves unused.")
    shadow_yield: bool = Field(True, description="While the candidate only shadows, it pauses between layers whenever an ingress on its "
                               "node has a request in flight (serving.yielding), and computes in the gaps.")
    shadow_yield_max_s: float = Field(1.0, gt=0, description="Most a shadow forward pass pauses in all; past it, it computes on at its CPU priority.")
    candidate_timeout_s: float = Field(2.0, gt=0, description="A candidate answering traffic gets this long before the champion answers instead.")
    state_poll_s: float = Field(1.0, gt=0, description="How often the ingress re-reads the rollout state.")
    warm_timeout_s: float = Field(3.0, gt=0, description="How long a new state waits for its models to load before it is routed on anyway.")
    max_upload_bytes: int = Field(20 * 1024 * 1024, gt=0, description="Largest accepted image upload.")
    max_pixels: int = Field(50_000_000, gt=0, description="Largest accepted image (width x height), checked before decoding.")
    disagreement_gap: float = Field(0.3, ge=0, le=1, description="Confidence gap that marks agreeing labels as a disagreement too.")
    ingress_resources: dict[str, float] = Field(default_factory=dict, description="Ray custom resources each ingress replica "
                                                "needs (e.g. {\"edge\": 0.1}): places it on the nodes started with them.")
    model_resources: dict[str, float] = Field(default_factory=dict, description="Ray custom resources each model replica "
                                              "needs (e.g. {\"models\": 1}): places the models on the nodes started with them.")
    proxy_location: Literal["every_node", "head_only"] = Field("every_node", description="Where Serve runs its HTTP proxy: "
                                                             "on every node with a replica (Ray's default; behind a load balancer), "
                                                             "or on the head node only (one address; several nodes on one machine).")

    @field_validator("ingress_resources", "model_resources")
    @classmethod
    def _custom_resources(cls, v: dict[str, float]) -> dict[str, float]:
        for name, amount in v.items():
            if not name.strip() or name in ("CPU", "GPU", "memory", "object_store_memory"):
                raise ValueError(f"{name!r} is not a custom resource name (CPUs are ingress_cpus and model_cpus)")
            if not amount > 0:
                raise ValueError(f"resource {name!r} needs a positive amount, got {amount!r}")
        return v

    @field_validator("shadow_batch_wait_s")
    @classmethod
    def _batch_wait_below_max_wait(cls, v: float, info: ValidationInfo) -> float:
        if v >= info.data.get("shadow_max_wait_s", float("inf")):
            raise ValueError("must be below shadow_max_wait_s, or every partial shadow batch expires before it starts")
        return v


class LogSettings(_Section):
    flush_interval_s: float = Field(0.5, gt=0, description="How often buffered prediction records are written.")
    batch_size: int = Field(256, ge=1, description="Most records written per transaction.")
    buffer_max: int = Field(100_000, ge=1, description="Records held while the database is unreachable; beyond it they are counted as lost.")
    journal: bool = Field(True, description="Journal each record to home/journal before answering, so a crash loses no acknowledged prediction.")
    fsync: bool = Field(False, description="fsync every journal write: survives power loss too, at a cost per request.")


class Settings(_Section):
    home: Path = Field(Path("~/.roomsight"), validate_default=True, description="Data directory for everything stateful (ROOMSIGHT_HOME).")
    database_url: str | None = Field(None, repr=False, description="SQLAlchemy URL of the prediction log, review queue and rollout state; default sqlite in home.")
    mlflow_tracking_uri: str | None = Field(None, repr=False, description="MLflow tracking/registry URI; default sqlite in home.")
    mlflow_artifact_root: str | None = Field(None, description="Artifact root for new MLflow experiments; default home/mlartifacts, "
                                                               "or the tracking server's own artifact store for an http(s) tracking URI.")
    model_name: ModelName = Field("roomtype", description="Registered model name in MLflow.")
    plan: Path | None = Field(None, description="Rollout plan YAML; default: the plan shipped with roomsight.")
    ray: RaySettings = RaySettings()
    serve: ServeSettings = ServeSettings()
    log: LogSettings = LogSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    smtp: SmtpSettings = SmtpSettings()
    notify: NotifySettings = NotifySettings()
    review: ReviewSettings = ReviewSettings()
    control: ControlSettings = ControlSettings()

    @field_validator("home", "plan", mode="before")
    @classmethod
    def _not_blank(cls, v: object) -> object:
        # Read as Path(""), the current folder: ROOMSIGHT_HOME= (an unset shell variable) put the databases in it.
        if isinstance(v, str) and not v.strip():
            raise ValueError("is empty; give a path, or unset it for the default")
        return v

    @field_validator("home", "plan")
    @classmethod
    def _expand(cls, v: Path | None) -> Path | None:
        return _expanded(v) if v is not None else None

    @field_validator("notify")
    @classmethod
    def _email_reachable(cls, v: NotifySettings, info: ValidationInfo) -> NotifySettings:
        smtp = info.data.get("smtp")
        if v.email_events and smtp is not None and not (smtp.host and smtp.recipients):
            raise ValueError("email_events needs smtp.host and smtp.recipients: rollout events are emailed there")
        return v

    @field_validator("review")
    @classmethod
    def _shadow_answers_in_time(cls, v: ReviewSettings, info: ValidationInfo) -> ReviewSettings:
        serve = info.data.get("serve")
        if serve is not None and serve.shadow_max_wait_s + serve.shadow_timeout_s >= v.settle_s / 2:
            raise ValueError(f"settle_s ({v.settle_s:g}) must be more than twice serve.shadow_max_wait_s "
                             f"({serve.shadow_max_wait_s:g}) + serve.shadow_timeout_s ({serve.shadow_timeout_s:g}): a "
                             "shadow answer (its wait to start, then its call) written later than half of it is late, and the "
                             "review sample leaves late rows out")
        return v

    @field_validator("database_url")
    @classmethod
    def _parseable(cls, v: str | None) -> str | None:
        # Caught here, a typo such as `postgres://` fails at start-up naming the key, not as a traceback
        # from the first query. The message never repeats the URL: it may hold a password.
        if v is not None:
            try:
                make_url(v).get_dialect()
            except (ArgumentError, NoSuchModuleError):
                raise ValueError("not a SQLAlchemy URL with a known dialect, e.g. sqlite:///path.db or "
                                 "postgresql+psycopg://user:password@host/db") from None
        return v

    # Derived locations: one data directory holds every stateful thing unless configured otherwise.
    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'roomsight.db'}"

    @property
    def tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{self.home / 'mlflow.db'}"

    @property
    def artifact_root(self) -> str | None:
        """Where new experiments keep their artifacts. None: the tracking server's own store (`mlflow
        server --artifacts-destination`), which every node reaches through the server; a folder in this
        machine's home would be on no other node, and gone with this one."""
        if self.mlflow_artifact_root:
            return self.mlflow_artifact_root
        if urlsplit(self.tracking_uri).scheme in ("http", "https"):
            return None
        return (self.home / "mlartifacts").as_uri()

    @property
    def photo_dir(self) -> Path:
        return self.review.photo_dir or self.home / "photos"

    @property
    def train_storage(self) -> str:
        return self.ray.train_storage or str(self.home / "ray-train")

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    def ensure_home(self) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        return self.home


def load_settings(config_file: Path | str | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Build the settings from defaults, an optional YAML file and the environment."""
    environ = dict(os.environ if environ is None else environ)
    env = env_overrides(environ)
    given = config_file or environ.get("ROOMSIGHT_CONFIG")  # a quoted or .env value reaches here with its `~`
    path = Path(os.path.expanduser(str(given))) if given else None
    if path is None:
        home = Path(os.path.expanduser(str(env.get("home", "~/.roomsight"))))
        candidate = home / "config.yaml"
        path = candidate if candidate.exists() else None
    data: Any = {}
    if path is not None and path.suffix.lower() == ".toml":
        # Parsed as YAML, TOML failed as "expected '<document start>'", or as a mapping that is not one.
        raise ConfigError(f"config file {path}: settings are YAML (e.g. config.yaml with `serve: {{port: 8000}}`), not TOML")
    if path is not None:
        data = read_yaml(path, "config file", ConfigError) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path} must hold a mapping of settings")
    try:
        return Settings.model_validate(merged(data, env))
    except ValidationError as exc:
        raise ConfigError(describe_error(exc, path, data, env)) from None

"""One validated place for configuration.

Settings come from, lowest priority first: built-in defaults, a YAML file (`--config`,
`$ROOMSIGHT_CONFIG`, or `$ROOMSIGHT_HOME/config.yaml` if it exists), then environment variables
`ROOMSIGHT_<SECTION>__<KEY>` (e.g. `ROOMSIGHT_SERVE__PORT=8080`) or `ROOMSIGHT_<KEY>` for top-level
keys. A bad value fails at start-up with an error that names the key.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from roomsight.errors import UserError
from roomsight.events import EVENT_TYPES, ROLLOUT_EVENTS
from roomsight.userfiles import read_yaml

ENV_PREFIX = "ROOMSIGHT_"


class ConfigError(UserError, ValueError):
    """A setting is missing, unknown or invalid; the message names the key."""


class _Section(BaseModel):
    # Unknown keys are typos until proven otherwise: reject them so they fail loudly at start-up.
    model_config = ConfigDict(extra="forbid", frozen=True)


def _expanded(path: Path) -> Path:
    """A path setting as the user means it: `~` expanded, made absolute."""
    return Path(os.path.expanduser(str(path))).resolve()


class RaySettings(_Section):
    address: str | None = Field(None, description="Ray cluster to join: 'auto', 'HEAD:6379' or 'ray://HEAD:10001'; empty starts a local Ray.")
    num_cpus: float | None = Field(2, description="CPUs for a local Ray; ignored when joining a cluster.")
    train_storage: str | None = Field(None, description="Where Ray Train (`rollout train --workers N`) keeps its checkpoints; "
                                                        "default home/ray-train. Across nodes, a shared folder or s3:// URI.")

    @field_validator("address")
    @classmethod
    def _address_form(cls, v: str | None) -> str | None:
        # Ray's own parse fails only after the registry is read, with a ValueError traceback.
        if v:
            ray_endpoint(v)
        return v or None


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
    port: int = Field(8000, ge=1, le=65535, description="HTTP port of the Serve proxy.")
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
    shadow_timeout_s: float = Field(10.0, gt=0, description="A shadow call still running after this is abandoned and counted as an error.")
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


class MonitoringSettings(_Section):
    drift_share_alarm: float = Field(0.3, ge=0, le=1, description="Alarm when at least this share of monitored columns drifted.")
    ood_share_alarm: float = Field(0.1, ge=0, le=1, description="Alarm when at least this share of a window is flagged out-of-domain.")
    min_window: int = Field(50, ge=1, description="Fewest logged predictions a drift report needs.")
    flag_threshold: float = Field(0.5, gt=0, lt=1, description="An out-of-domain score at or above this raises the flag.")
    email_photos: int = Field(4, ge=0, le=20, description="Example photos in a drift email: the window's out-of-domain ones "
                                                          "first, then those furthest from the reference on drifted columns.")
    email_photo_px: int = Field(480, ge=64, le=2048, description="Longest side of an example photo in a drift email (downscaled).")


class SmtpSettings(_Section):
    host: str | None = Field(None, description="SMTP server; empty disables email.")
    port: int = Field(587, ge=1, le=65535, description="SMTP port.")
    user: str | None = Field(None, description="SMTP login user.")
    password: str | None = Field(None, description="SMTP password (ROOMSIGHT_SMTP__PASSWORD); never printed or logged.", repr=False)
    security: Literal["none", "starttls", "ssl"] = Field("starttls", description="Transport security.")
    sender: str = Field("roomsight@localhost", description="From address of drift reports.")
    recipients: tuple[str, ...] = Field((), description="Default recipients of drift reports.")
    timeout_s: float = Field(30, gt=0, description="Network timeout.")


def _known_events(events: tuple[str, ...], known: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [e for e in events if e not in known]
    if unknown:
        raise ValueError(f"unknown event {', '.join(map(repr, unknown))}; known: {', '.join(known)}")
    return events


class WebhookSettings(_Section):
    url: str = Field(repr=False, description="Where to POST (https://hooks.slack.com/services/...); a secret: never printed or logged.")
    kind: Literal["slack", "generic"] = Field("generic", description="slack: an incoming-webhook message (text + blocks); "
                                              "generic: roomsight's JSON event.")
    name: str | None = Field(None, max_length=64, description="How logs name this webhook; default its host.")
    events: tuple[str, ...] = Field(EVENT_TYPES, min_length=1, description="Which events it gets.")
    retries: int = Field(3, ge=0, le=10, description="Further attempts after a timeout, a refused connection, a 429 or a 5xx.")
    backoff_s: float = Field(1.0, ge=0, description="Wait before the first retry; doubled before each next one.")
    timeout_s: float = Field(5.0, gt=0, description="Longest one attempt may take.")

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        # The message never repeats the URL: a Slack webhook URL is its own credential.
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        return v

    @field_validator("events")
    @classmethod
    def _events(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return _known_events(v, EVENT_TYPES)

    @property
    def label(self) -> str:
        return self.name or f"{self.kind} webhook at {urlsplit(self.url).hostname}"


class NotifySettings(_Section):
    webhooks: tuple[WebhookSettings, ...] = Field((), description="Where rollout events and drift alarms are posted "
                                                  "(ROOMSIGHT_NOTIFY__WEBHOOKS as a JSON list).")
    email_events: tuple[str, ...] = Field((), description="Rollout events also emailed to smtp.recipients (needs smtp.host).")
    wait_s: float = Field(15.0, gt=0, description="Longest a command waits for its notifications; deliveries still "
                                                  "trying then are given up, logged and counted.")

    @field_validator("email_events")
    @classmethod
    def _rollout_events(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        # Drift emails carry their report and photos and go to --email recipients: the drift commands send them.
        return _known_events(v, ROLLOUT_EVENTS)


class ReviewSettings(_Section):
    tokens: dict[str, str] = Field(default_factory=dict, repr=False,
                                   description="Reviewer id -> token (ROOMSIGHT_REVIEW__TOKENS as JSON); never printed or logged.")
    # Each logged photo falls in one sampling stratum and is queued with that stratum's probability (a
    # stable hash of its request id below the rate), which the item records so estimates can weight it.
    disagreement_share: float = Field(1.0, gt=0, le=1, description="Probability that a photo the two models disagree on is queued for review.")
    low_confidence_share: float = Field(1.0, ge=0, le=1, description="Probability that an agreeing answer that is `unsure` or "
                                                                     "below review.low_confidence is queued.")
    spot_check_share: float = Field(0.05, ge=0, le=1, description="Probability that any other agreeing answer is queued (a spot check).")
    low_confidence: float = Field(0.5, ge=0, le=1, description="Answers below this score count as low-confidence.")
    # Disagreements decide promotions and are served first; without a reserve, agreements wait behind
    # them and the precision estimates (which need verdicts from every stratum) have none.
    agreement_reserve: float = Field(0.05, ge=0, lt=1, description="Share of claims kept for agreements (low-confidence "
                                                                  "answers and spot checks) while disagreements wait.")
    double_review_share: float = Field(0.1, ge=0, le=1, description="Share of queued photos shown to two reviewers (with at least two "
                                                                    "review.tokens); a conflict goes to a third, if there is one.")
    settle_s: float = Field(60, gt=0, description="How long after a prediction its shadow answer may still arrive: the queue waits "
                                                  "this long for it before sampling the photo without a comparison.")
    lease_s: float = Field(300, gt=0, description="How long a claimed item stays with its reviewer.")
    host: str = Field("127.0.0.1", description="Bind address of `rollout review serve`.")
    port: int = Field(8081, ge=1, le=65535, description="Port of `rollout review serve`.")
    photo_retention_h: float = Field(72, gt=0, description="Kept photos not queued for review are deleted after this many hours.")
    photo_dir: Path | None = Field(None, description="Folder of the photos kept for review; default home/photos. On a cluster, "
                                                     "one that every Serve node and the review server share (NFS, EFS, ...).")

    @field_validator("photo_dir")
    @classmethod
    def _expand(cls, v: Path | None) -> Path | None:
        return _expanded(v) if v is not None else None

    def rate(self, stratum: str) -> float:
        """The inclusion probability of a sampling stratum (roomsight.verdicts.STRATA)."""
        return {"disagreement": self.disagreement_share, "low_confidence": self.low_confidence_share,
                "spot_check": self.spot_check_share}[stratum]


class ControlSettings(_Section):
    tokens: dict[str, str] = Field(default_factory=dict, repr=False,
                                   description="Operator id -> token for `rollout api` (ROOMSIGHT_CONTROL__TOKENS as JSON); "
                                               "the API refuses to start without one. Never printed or logged.")
    host: str = Field("127.0.0.1", description="Bind address of `rollout api`.")
    port: int = Field(8082, ge=1, le=65535, description="Port of `rollout api`.")


class Settings(_Section):
    home: Path = Field(Path("~/.roomsight"), validate_default=True, description="Data directory for everything stateful (ROOMSIGHT_HOME).")
    database_url: str | None = Field(None, repr=False, description="SQLAlchemy URL of the prediction log, review queue and rollout state; default sqlite in home.")
    mlflow_tracking_uri: str | None = Field(None, repr=False, description="MLflow tracking/registry URI; default sqlite in home.")
    mlflow_artifact_root: str | None = Field(None, description="Artifact root for new MLflow experiments; default home/mlartifacts, "
                                                               "or the tracking server's own artifact store for an http(s) tracking URI.")
    model_name: str = Field("roomtype", description="Registered model name in MLflow.")
    plan: Path | None = Field(None, description="Rollout plan YAML; default: the plan shipped with roomsight.")
    ray: RaySettings = RaySettings()
    serve: ServeSettings = ServeSettings()
    log: LogSettings = LogSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    smtp: SmtpSettings = SmtpSettings()
    notify: NotifySettings = NotifySettings()
    review: ReviewSettings = ReviewSettings()
    control: ControlSettings = ControlSettings()

    @field_validator("home")
    @classmethod
    def _expand(cls, v: Path) -> Path:
        return _expanded(v)

    @field_validator("notify")
    @classmethod
    def _email_reachable(cls, v: NotifySettings, info: ValidationInfo) -> NotifySettings:
        smtp = info.data.get("smtp")
        if v.email_events and smtp is not None and not (smtp.host and smtp.recipients):
            raise ValueError("email_events needs smtp.host and smtp.recipients: rollout events are emailed there")
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


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    """Turn ROOMSIGHT_SECTION__KEY=value into nested dicts; pydantic does the type conversion."""
    out: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name == "ROOMSIGHT_CONFIG":
            continue
        parts = name[len(ENV_PREFIX):].lower().split("__")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = _parse_env_value(value)
    return out


def _parse_env_value(value: str) -> Any:
    """Lists and mappings come as JSON (ROOMSIGHT_REVIEW__TOKENS='{"ann": "..."}'); the rest as text."""
    if value.strip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            pass
    return value


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


_SECRET_WORDS = ("password", "token", "url", "uri", "webhook")


def _describe(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        env = ENV_PREFIX + "__".join(str(p) for p in e["loc"]).upper()
        secret = any(w in key.lower() for w in _SECRET_WORDS)
        shown = "" if "input" not in e or isinstance(e["input"], dict) or secret else f" (got {e['input']!r})"
        lines.append(f"  {key} (env {env}): {e['msg']}{shown}")
    return "invalid configuration:\n" + "\n".join(lines)


def load_settings(config_file: Path | str | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Build the settings from defaults, an optional YAML file and the environment."""
    environ = dict(os.environ if environ is None else environ)
    env = _env_overrides(environ)
    path = Path(config_file) if config_file else (Path(environ["ROOMSIGHT_CONFIG"]) if environ.get("ROOMSIGHT_CONFIG") else None)
    if path is None:
        home = Path(os.path.expanduser(str(env.get("home", "~/.roomsight"))))
        candidate = home / "config.yaml"
        path = candidate if candidate.exists() else None
    data: dict[str, Any] = {}
    if path is not None:
        loaded = read_yaml(path, "config file", ConfigError) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping of settings")
        data = loaded
    try:
        return Settings.model_validate(_merge(data, env))
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None

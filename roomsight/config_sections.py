"""The sections of the settings (roomsight.config composes them into `Settings` and loads them): the
base every section shares, and the sections of what watches a rollout: monitoring, email, webhooks, the
review queue and the control API."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from roomsight.events import EVENT_TYPES, ROLLOUT_EVENTS
from roomsight.listening import MAX_PORT
from roomsight.tables import review_verdicts


class _Section(BaseModel):
    # Unknown keys are typos until proven otherwise: reject them so they fail loudly at start-up.
    model_config = ConfigDict(extra="forbid", frozen=True)


def _expanded(path: Path) -> Path:
    """A path setting as the user means it: `~` expanded, made absolute."""
    return Path(os.path.expanduser(str(path))).resolve()


def _names_a_model(name: str) -> str:
    # Every command names the champion as models:/NAME@champion (roomsight.registry), which such a name breaks.
    if not name.strip() or name != name.strip() or any(c in name for c in "/@"):
        raise ValueError("must be a name with no '/', '@' or spaces around it: it is written models:/NAME/VERSION "
                         "and models:/NAME@ALIAS")
    return name


ModelName = Annotated[str, AfterValidator(_names_a_model)]


class MonitoringSettings(_Section):
    drift_share_alarm: float = Field(0.3, gt=0, le=1, description="Alarm when at least this share of monitored columns drifted.")
    ood_share_alarm: float = Field(0.1, gt=0, le=1, description="Alarm when at least this share of a window is flagged out-of-domain.")
    min_window: int = Field(50, ge=1, description="Fewest logged predictions a drift report needs.")
    flag_threshold: float = Field(0.5, gt=0, lt=1, description="An out-of-domain score at or above this raises the flag.")
    email_photos: int = Field(4, ge=0, le=20, description="Example photos in a drift email: the window's out-of-domain ones "
                                                          "first, then those furthest from the reference on drifted columns.")
    email_photo_px: int = Field(480, ge=64, le=2048, description="Longest side of an example photo in a drift email (downscaled).")
    drift_sample: int = Field(20_000, ge=1, description="Most predictions a drift report or check compares: a larger window "
                              "is compared on a uniform sample of this many.")
    drift_sample_seed: int = Field(0, description="Seed of that sample: the same window and seed give the same sample.")
    drift_check_window: int = Field(2_000, ge=1, description="A drift check compares the latest this many predictions "
                                    "of the rollout's current step, so a shift that begins during a step is not "
                                    "diluted by earlier traffic.")
    drift_check_every_s: float = Field(300, gt=0, description="How often `rollout serve` checks the rollout's traffic for "
                                       "drift in the background; `rollout status` and the gates read the latest check.")
    drift_max_age_s: float = Field(900, gt=0, description="A drift check older than this is no evidence: drift_alarm and "
                                   "drifted_share read as missing until a newer one is made.")

    @field_validator("drift_sample", "drift_check_window")
    @classmethod
    def _at_least_a_window(cls, v: int, info: ValidationInfo) -> int:
        if v < info.data.get("min_window", 0):
            why = {"drift_sample": "a window large enough to report on is sampled below it",
                   "drift_check_window": "no check ever has enough predictions to compare"}[info.field_name]
            raise ValueError(f"must be at least min_window, or {why}")
        return v

    @field_validator("drift_max_age_s")
    @classmethod
    def _outlives_the_period(cls, v: float, info: ValidationInfo) -> float:
        if v < info.data.get("drift_check_every_s", 0):
            raise ValueError("must be at least drift_check_every_s, or the drift evidence lapses between checks")
        return v


class SmtpSettings(_Section):
    host: str | None = Field(None, description="SMTP server; empty disables email.")
    port: int = Field(587, ge=1, le=MAX_PORT, description="SMTP port.")
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
    name: str | None = Field(None, max_length=64, description="How logs name this webhook; default 'KIND webhook at HOST'.")
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


def _presentable(tokens: dict[str, str]) -> dict[str, str]:
    """Bearer tokens a request can present, each held by one name. The header's token is stripped
    (roomsight.auth), so an empty or padded one never matches; a token two names hold is taken for the
    last of them, and the other's verdicts or changes are recorded under that name. Never names a token."""
    padded = [name for name, token in tokens.items() if not token.strip() or token != token.strip()]
    if padded:
        raise ValueError(f"the token of {', '.join(map(repr, padded))} is empty or has spaces around it: "
                         "no request can present it")
    # A header's bytes are read as Latin-1 and compared as UTF-8: only printable ASCII reads back as written.
    unsendable = [name for name, token in tokens.items() if not (token.isascii() and token.isprintable())]
    if unsendable:
        raise ValueError(f"the token of {', '.join(map(repr, unsendable))} holds characters other than printable "
                         "ASCII: an HTTP header cannot carry it as written")
    holders: dict[str, list[str]] = {}
    for name, token in tokens.items():
        holders.setdefault(token, []).append(name)
    shared = next((names for names in holders.values() if len(names) > 1), None)
    if shared:
        raise ValueError(f"{' and '.join(map(repr, shared))} hold the same token: each needs its own, "
                         "as it says who acted")
    return tokens


class ReviewSettings(_Section):
    tokens: dict[str, str] = Field(default_factory=dict, repr=False,
                                   description="Reviewer id -> token (ROOMSIGHT_REVIEW__TOKENS as JSON); never printed or logged.")
    # Each logged photo falls in one sampling stratum and is queued with that stratum's probability (a
    # stable hash of its request id below the rate), which the item records so estimates can weight it.
    disagreement_share: float = Field(1.0, gt=0, le=1, description="Probability that a photo the two models disagree on is queued for review.")
    low_confidence_share: float = Field(1.0, ge=0, le=1, description="Probability that an agreeing answer that is `unsure` or "
                                                                     "below review.low_confidence is queued.")
    spot_check_share: float = Field(0.05, ge=0, le=1, description="Probability that any other agreeing answer is queued (a spot check).")
    # Pinned per rollout (review_fill.low_confidence): a photo drawn in one stratum and counted in another
    # would be weighted by the wrong rate.
    low_confidence: float = Field(0.5, ge=0, le=1, description="Answers below this score count as low-confidence; pinned per "
                                                               "rollout at its first fill, which later fills and readers follow.")
    # Disagreements decide promotions and are served first; without a reserve, agreements wait behind
    # them and the precision estimates (which need verdicts from every stratum) have none.
    agreement_reserve: float = Field(0.05, ge=0, lt=1, description="Share of claims kept for agreements (low-confidence "
                                                                  "answers and spot checks) while disagreements wait.")
    double_review_share: float = Field(0.1, ge=0, le=1, description="Share of queued photos shown to two reviewers (with at least two "
                                                                    "review.tokens); a conflict goes to a third, if there is one.")
    settle_s: float = Field(60, gt=0, description="How long after a prediction its shadow answer may still arrive: the queue waits "
                                                  "this long for it, then leaves the photo out of the sample "
                                                  "(there is no comparison to review). A row written, or answered "
                                                  "in shadow, more than half of it after its time is late and outside "
                                                  "the sample; more than twice serve.shadow_max_wait_s + "
                                                  "serve.shadow_timeout_s.")
    lease_s: float = Field(300, gt=0, description="How long a claimed item stays with its reviewer.")
    host: str = Field("127.0.0.1", description="Bind address of `rollout review serve`.")
    port: int = Field(8081, ge=1, le=MAX_PORT, description="Port of `rollout review serve`.")
    photo_retention_h: float = Field(72, gt=0, description="Kept photos not queued for review are deleted after this many hours.")
    photo_dir: Path | None = Field(None, description="Folder of the photos kept for review; default home/photos. On a cluster, "
                                                     "one that every Serve node and the review server share (NFS, EFS, ...).")

    @field_validator("photo_dir")
    @classmethod
    def _expand(cls, v: Path | None) -> Path | None:
        return _expanded(v) if v is not None else None

    @field_validator("tokens")
    @classmethod
    def _tokens(cls, v: dict[str, str]) -> dict[str, str]:
        # Each claim and verdict stores its reviewer's name: PostgreSQL refuses one longer than the column (SQLite keeps it).
        longest = review_verdicts.c.reviewer.type.length
        if too_long := [name for name in v if len(name) > longest]:
            raise ValueError(f"reviewer name {too_long[0][:longest]!r}... is longer than {longest} characters")
        return _presentable(v)

    def rate(self, stratum: str) -> float:
        """The inclusion probability of a sampling stratum (roomsight.verdicts.STRATA)."""
        return {"disagreement": self.disagreement_share, "low_confidence": self.low_confidence_share,
                "spot_check": self.spot_check_share}[stratum]


class ControlSettings(_Section):
    tokens: dict[str, str] = Field(default_factory=dict, repr=False,
                                   description="Operator id -> token for `rollout api` (ROOMSIGHT_CONTROL__TOKENS as JSON); "
                                               "the API refuses to start without one. Never printed or logged.")
    scrape_tokens: dict[str, str] = Field(default_factory=dict, repr=False,
                                          description="Scraper id -> token that may read `rollout api`'s GET /metrics and "
                                                      "nothing else (Prometheus's), as JSON; operator tokens read it too.")
    host: str = Field("127.0.0.1", description="Bind address of `rollout api`.")
    port: int = Field(8082, ge=1, le=MAX_PORT, description="Port of `rollout api`.")

    @field_validator("tokens")
    @classmethod
    def _tokens(cls, v: dict[str, str]) -> dict[str, str]:
        return _presentable(v)

    @field_validator("scrape_tokens")
    @classmethod
    def _read_only(cls, v: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        # An operator's token is taken first (rollout.api): one kept on Prometheus's disk could change a rollout.
        operators = set((info.data.get("tokens") or {}).values())
        both = [name for name, token in _presentable(v).items() if token in operators]
        if both:
            raise ValueError(f"the token of {', '.join(map(repr, both))} is also an operator's (control.tokens): "
                             "a scrape token must read /metrics and nothing else")
        return v

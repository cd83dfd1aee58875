"""What the outside world is told: a rollout changed (started, promoted, rolled back, rolled back or paused
by itself), or a drift check raised its alarm. The control plane builds `RolloutEvent`s, the drift
commands build `DriftAlarm`s, and `monitoring.notify` delivers both; they live in the kernel because
rollout and monitoring both import them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

ROLLOUT_EVENTS: tuple[str, ...] = ("start", "promote", "rollback", "auto-rollback", "auto-pause", "auto-promote")
DRIFT_ALARM = "drift-alarm"
EVENT_TYPES: tuple[str, ...] = (*ROLLOUT_EVENTS, DRIFT_ALARM)


def iso_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class RolloutEvent:
    """One recorded change of the routing state, as the MLflow record has it."""

    action: str  # one of ROLLOUT_EVENTS: the record's `action` tag
    rollout_id: str
    from_stage: str
    to_stage: str
    champion: str  # models:/ URIs
    candidate: str | None
    actor: str
    reason: str
    ts: float
    forced: bool = False
    from_step: str = ""  # the plan step before the change, as people read it ("3/7 gradual 10%")
    to_step: str = ""
    step: int | None = None  # index of the plan step after the change
    regions: tuple[str, ...] = ()
    region_percent: float = 0.0  # share of listings in `regions` the candidate answers
    percent: float = 0.0  # share of all listings the candidate answers
    numbers: dict[str, float | None] = field(default_factory=dict)  # the evidence the change was decided on
    conditions: tuple[dict[str, Any], ...] = ()  # each condition judged (rollout.conditions.ConditionResult.to_dict())
    run_id: str | None = None  # the MLflow run that records it

    @property
    def kind(self) -> str:
        return self.action

    def where(self) -> str:
        """Where the candidate answers after the change, in words."""
        parts = []
        if self.percent > 0:
            parts.append(f"{self.percent:g}% of listings")
        if self.regions and self.region_percent > self.percent:
            parts.append(f"{self.region_percent:g}% of listings in {', '.join(self.regions)}")
        return " and ".join(parts)

    def headline(self) -> str:
        model = self.candidate or self.champion
        src, dst = self.from_step or self.from_stage, self.to_step or self.to_stage
        # A plan may begin where the candidate already answers users (a limited step): say where it began.
        started = "started in shadow" if self.to_stage == "shadow" else f"started at {dst}"
        verb = {"start": started, "promote": f"promoted {src} -> {dst}",
                "auto-promote": f"promoted automatically {src} -> {dst}",
                "rollback": f"rolled back from {src}",
                "auto-rollback": f"rolled back automatically from {src}",
                "auto-pause": f"paused automatically at {src}"}.get(self.action, self.action)
        where = f" ({self.where()})" if self.action in ("start", "promote", "auto-promote") and self.where() else ""
        forced = " (forced past conditions that did not pass)" if self.forced else ""
        return f"rollout {self.rollout_id[:8]}: {model} {verb}{where}{forced} by {self.actor}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DriftAlarm:
    """A drift check over a window of traffic that raised the alarm."""

    window: str  # in words, as the report says it
    reference_model: str
    n_current: int
    drifted_share: float
    ood_share: float
    reference_ood_share: float
    reasons: tuple[str, ...]
    ts: float
    region: str | None = None
    rollout_id: str | None = None
    drifted_columns: tuple[str, ...] = ()
    flag_counts: dict[str, int] = field(default_factory=dict)
    report: str | None = None  # path of the saved HTML report

    kind = DRIFT_ALARM

    def headline(self) -> str:
        where = f" in {self.region}" if self.region else ""
        return (f"drift alarm{where}: {self.drifted_share:.0%} of columns drifted, {self.ood_share:.0%} "
                f"out-of-domain over {self.n_current:,} predictions")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

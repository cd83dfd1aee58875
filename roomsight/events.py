"""What the outside world is told: a rollout changed (started, promoted, rolled back, rolled back or paused
by itself), or a drift check raised its alarm. The control plane builds `RolloutEvent`s, the drift
commands build `DriftAlarm`s, and `monitoring.notify` delivers both; they live in the kernel because
rollout and monitoring both import them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

ROLLOUT_EVENTS: tuple[str, ...] = ("start", "promote", "rollback", "auto-rollback", "auto-pause")
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
    step: int | None = None  # the plan step the rollout is on after the change, when the plan has steps
    regions: tuple[str, ...] = ()
    percent: float = 0.0
    numbers: dict[str, float | None] = field(default_factory=dict)  # the evidence the change was decided on
    gates: tuple[dict[str, Any], ...] = ()  # GateResult.to_dict() of each gate checked
    run_id: str | None = None  # the MLflow run that records it

    @property
    def kind(self) -> str:
        return self.action

    def where(self) -> str:
        """Where the candidate answers after the change, in words."""
        if self.to_stage == "limited":
            return f"{self.percent:g}% of listings in {', '.join(self.regions) or 'no region'}"
        if self.to_stage == "gradual":
            return f"{self.percent:g}% of listings"
        return ""

    def headline(self) -> str:
        model = self.candidate or self.champion
        verb = {"start": "started in shadow", "promote": f"promoted {self.from_stage} -> {self.to_stage}",
                "rollback": f"rolled back from {self.from_stage}",
                "auto-rollback": f"rolled back automatically from {self.from_stage}",
                "auto-pause": f"paused automatically at {self.from_stage}"}.get(self.action, self.action)
        where = f" ({self.where()})" if self.action == "promote" and self.where() else ""
        forced = " (forced past failing gates)" if self.forced else ""
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
                f"out-of-domain over {self.n_current} predictions")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

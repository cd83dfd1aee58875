"""Rollout plans are data: a YAML file says which regions exist, what each stage does and which
evidence each promotion needs. This module parses one into a validated, immutable Plan and says it
back in words."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from roomsight.errors import UserError
from roomsight.userfiles import read_yaml

# Evidence metrics a gate may name; `rollout.evidence` computes them. Kept here so a plan with a
# misspelt metric fails when it is loaded, not at the moment of a promotion.
METRICS: dict[str, str] = {
    "requests": "requests logged during the rollout",
    "compared": "requests where both models answered (shadow comparisons)",
    "agreement": "share of compared requests where both models agreed",
    "candidate_served": "requests the candidate answered",
    "candidate_requests": "requests the candidate ran on, answering or in shadow",
    "candidate_error_rate": "share of candidate calls that failed or timed out",
    "candidate_p99_ms": "candidate model latency, 99th percentile (ms)",
    "champion_p99_ms": "champion model latency, 99th percentile (ms)",
    "candidate_errors": "candidate calls that failed or timed out",
    # review verdicts (monitoring.review)
    "reviewed": "review-queue items with a verdict in this rollout",
    "candidate_precision_lower": "candidate precision, lower end of the Wilson 95% interval, from verdicts",
    "champion_precision_lower": "champion precision, lower end of the Wilson 95% interval, from verdicts",
    "precision_margin": "candidate minus champion precision lower bounds",
    "min_class_precision": "lowest per-class candidate precision (point estimate) among reviewed classes",
    "candidate_win_rate": "on reviewed disagreements, share where the candidate was right and the champion wrong, among those where exactly one was",
    # inputs and drift (monitoring)
    "ood_share": "share of requests flagged out-of-domain",
    "drift_alarm": "1 if the latest drift check over the rollout's traffic raised an alarm, else 0 (none if older than monitoring.drift_max_age_s)",
    "drifted_share": "share of monitored columns Evidently reports as drifted",
    "drift_age_s": "seconds since the drift check that drift_alarm and drifted_share come from",
}

TargetStage = Literal["limited", "gradual", "full"]


class PlanError(UserError, ValueError):
    """The plan file is missing or invalid; the message names the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Gate(_Strict):
    metric: str
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _check(self) -> Gate:
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}; known: {', '.join(METRICS)}")
        if (self.min is None) == (self.max is None):
            raise ValueError(f"gate on {self.metric} needs exactly one of min or max")
        return self

    def describe(self) -> str:
        bound = f"at least {self.min:g}" if self.min is not None else f"at most {self.max:g}"
        return f"{self.metric} {bound} ({METRICS[self.metric]})"


class ShadowStep(_Strict):
    sample: float = Field(1.0, ge=0, le=1)


class LimitedStep(_Strict):
    regions: tuple[str, ...] = ()
    percent: float = Field(100, gt=0, le=100)


class GradualStep(_Strict):
    steps: tuple[float, ...] = (10, 25, 50, 100)

    @field_validator("steps")
    @classmethod
    def _increasing(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if not v or any(not 0 < s <= 100 for s in v) or list(v) != sorted(set(v)):
            raise ValueError("steps must be strictly increasing percentages in (0, 100]")
        return v


class Budget(_Strict):
    max_error_rate: float = Field(0.05, ge=0, le=1)
    max_p99_ms: float = Field(5000, gt=0)
    window: int = Field(200, ge=10)


class Plan(_Strict):
    name: str = "default"
    regions: tuple[str, ...]
    shadow: ShadowStep = ShadowStep()
    limited: LimitedStep = LimitedStep()
    gradual: GradualStep = GradualStep()
    hold_ood_on_champion: bool = True
    gates: dict[TargetStage, tuple[Gate, ...]] = Field(default_factory=dict)
    budget: Budget = Budget()

    @model_validator(mode="after")
    def _regions_known(self) -> Plan:
        unknown = set(self.limited.regions) - set(self.regions)
        if unknown:
            raise ValueError(f"limited.regions names regions not in `regions`: {sorted(unknown)}")
        return self

    def gates_for(self, stage: str) -> tuple[Gate, ...]:
        return self.gates.get(stage, ())  # type: ignore[call-overload]

    def check_regions(self, regions: tuple[str, ...]) -> None:
        unknown = [r for r in regions if r not in self.regions]
        if unknown:
            raise PlanError(f"unknown region(s) {', '.join(unknown)}; this plan's regions are {', '.join(self.regions)}")

    def describe(self) -> list[str]:
        """The plan in words, stage by stage, for `rollout plan show`."""
        lines = [f"Plan {self.name!r} for regions {', '.join(self.regions)}."]
        lines.append(f"1. shadow: the champion answers every request; the candidate also runs on "
                     f"{self.shadow.sample:.0%} of them, off the critical path, and both answers are logged.")
        lines.append(f"2. limited: the candidate answers {self.limited.percent:g}% of listings in "
                     f"{', '.join(self.limited.regions) or '(regions named at promotion)'}; the champion answers the rest.")
        lines.append(f"3. gradual: the candidate answers a growing share of listings everywhere: "
                     f"{', '.join(f'{s:g}%' for s in self.gradual.steps)}, one step per promotion.")
        lines.append("4. full: the candidate becomes the champion.")
        if self.hold_ood_on_champion:
            lines.append("Out-of-domain photos stay on the champion in limited and gradual; the candidate sees them in shadow only.")
        for stage in ("limited", "gradual", "full"):
            gates = self.gates_for(stage)
            if gates:
                lines.append(f"Before {stage}: " + "; ".join(g.describe() for g in gates) + ".")
            else:
                lines.append(f"Before {stage}: no gates.")
        b = self.budget
        lines.append(f"While the candidate answers traffic: over its last {b.window} requests, an error rate above "
                     f"{b.max_error_rate:.0%} or p99 latency above {b.max_p99_ms:g} ms takes it off traffic automatically.")
        lines.append("Listings are assigned to the candidate by a hash of the listing id and the rollout id: "
                     "sticky, and a listing never moves back as the percentage grows.")
        return lines


def default_plan_path() -> Path:
    return Path(str(resources.files("rollout") / "plans" / "default.yaml"))


def load_plan(path: Path | str | None = None) -> Plan:
    path = Path(path) if path else default_plan_path()
    raw = read_yaml(path, "rollout plan", PlanError) or {}
    try:
        return Plan.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors())
        raise PlanError(f"rollout plan {path} is invalid: {problems}") from None

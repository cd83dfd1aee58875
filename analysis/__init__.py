"""TEMPORARY stand-in for the analysis branch (replaced at merge): the contract of DESIGN.md only."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Outcome = Literal["pass", "fail", "inconclusive"]
SEGMENT_KEYS = ("region", "predicted_class", "ood")


class AnalysisSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["paired"] = "paired"
    margin: float = Field(0.02, gt=0, lt=1)
    alpha: float = Field(0.05, gt=0, lt=1)
    segments: tuple[Literal["region", "predicted_class", "ood"], ...] = ()
    min_count: int = Field(20, ge=1)

    def describe(self) -> str:
        return f"the candidate is not worse than the champion by more than {self.margin:g} (alpha {self.alpha:g})"


@dataclass(frozen=True)
class SegmentResult:
    key: str
    value: str
    outcome: Outcome
    estimate: float | None = None
    lower: float | None = None
    upper: float | None = None
    n: int = 0


@dataclass(frozen=True)
class AnalysisResult:
    name: str
    outcome: Outcome
    summary: str
    estimate: float | None = None
    lower: float | None = None
    upper: float | None = None
    n: int = 0
    needed: int | None = None
    segments: tuple[SegmentResult, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def analyse(name: str, spec: AnalysisSpec, sample: Any) -> AnalysisResult:
    return AnalysisResult(name, "inconclusive", "stand-in analysis: no decision")

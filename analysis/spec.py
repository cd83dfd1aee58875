"""What an analysis is asked (AnalysisSpec, validated where a plan is loaded) and what it answers
(AnalysisResult with one SegmentResult per judged cell), both in words and as dicts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from roomsight.verdicts import SEGMENT_KEYS

Outcome = Literal["pass", "fail", "inconclusive"]


class AnalysisSpec(BaseModel):
    """A paired non-inferiority analysis of the candidate against the champion on reviewed verdicts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["paired"] = "paired"
    margin: float = Field(gt=0, lt=1, description="Non-inferiority margin on weighted accuracy over the traffic: "
                                                  "the candidate passes once it is shown no more than this below the champion.")
    alpha: float = Field(0.05, gt=0, lt=0.5, description="Error rate of a wrong pass, and of a wrong fail, any-time valid.")
    segments: tuple[str, ...] = Field((), description=f"Segment keys whose cross product forms the cells judged on their own; of {', '.join(SEGMENT_KEYS)}.")
    min_count: int = Field(20, ge=1, description="Fewest verdicts in a segment cell before it can fail on its own.")
    min_share: float = Field(0.10, gt=0, lt=1, description="Smallest share of the compared traffic a cell is protected at: "
                                                           "a cell shown to hold less is not judged.")
    segment_margin: float = Field(0.14, gt=0, lt=1, description="Non-inferiority margin within each cell of min_share and more.")

    @field_validator("segments")
    @classmethod
    def _known_keys(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [k for k in v if k not in SEGMENT_KEYS]
        if unknown:
            raise ValueError(f"unknown segment key(s) {', '.join(map(repr, unknown))}; known: {', '.join(SEGMENT_KEYS)}")
        if len(set(v)) != len(v):
            raise ValueError("a segment key is named twice")
        return v

    @model_validator(mode="after")
    def _margins(self) -> AnalysisSpec:
        # Without segments no cell is judged, and segment_margin (perhaps its default) is never read.
        if self.segments and self.segment_margin < self.margin:
            raise ValueError(f"segment_margin ({self.segment_margin:g}) must be at least margin ({self.margin:g}): "
                             "a cell holds fewer verdicts than the whole")
        return self

    def describe(self) -> str:
        level = f"{1 - self.alpha:.0%}"
        text = (f"paired: it passes once the candidate's accuracy on the traffic is shown to be at most "
                f"{self.margin:g} below the champion's ({level} bounds from reviewed disagreements that hold "
                f"however often they are read)")
        if self.segments:
            text += (f", and at most {self.segment_margin:g} below in every {' x '.join(self.segments)} cell not shown "
                     f"to hold less than {self.min_share:.0%} of the traffic")
        # A clause, not a sentence: plans list it among their conditions, which are joined by semicolons.
        return text + (", and fails once the candidate is shown worse than the champion"
                       + (f" overall or in any cell of {self.min_count} verdicts or more (Holm over the cells)"
                          if self.segments else ""))


@dataclass(frozen=True)
class SegmentResult:
    key: str  # the segment keys of the cell, e.g. "region,ood"
    value: str  # their values, e.g. "ap-south,night_time"
    outcome: Outcome
    estimate: float | None  # candidate minus champion, weighted accuracy within the cell
    lower: float | None  # at (1 - analysis.paired.SHARE_PART) alpha, where a cell clears; upper at alpha
    upper: float | None
    n: int  # verdicts in the cell
    share: float  # of the compared traffic logged
    judged: bool  # not shown to hold less than min_share of the traffic
    words: str  # the cell in words, e.g. "night_time photos in ap-south"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AnalysisResult:
    name: str
    outcome: Outcome
    summary: str  # one line in words
    estimate: float | None  # candidate minus champion, weighted accuracy on the traffic
    lower: float | None  # one-sided any-time-valid bounds, each at alpha
    upper: float | None
    n: int  # verdicts used
    needed: int | None  # when inconclusive: about how many more verdicts would likely decide it
    segments: tuple[SegmentResult, ...] = ()
    discordant: int = 0  # reviewed disagreements where exactly one model was right: what the comparison rests on
    models: dict[str, Any] = field(default_factory=dict)  # weighted per-model estimates (analysis.weighted)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["segments"] = [s.to_dict() for s in self.segments]
        return d

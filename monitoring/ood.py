"""Per-image out-of-domain flags with scores in [0, 1], calibrated on the reference statistics a model
was exported with.

Each flag has a statistic (higher = less like the training photos) and a calibration: the reference's
high quantile of that statistic plus a margin gives the point where the score is 0.5, and a width
gives how fast the score rises past it. So a photo as dark as the darkest validation photos scores
well below 0.5, and one markedly darker scores near 1, whatever the training data looked like.

  night_time      dark and without highlights: -(ln brightness + ln highlights) / 2
  low_resolution  small upload: -log2(short side in pixels)
  novelty         far from the training embeddings: ln(distance to their centre / median distance)

`night_time` and `low_resolution` need only the image, so the ingress computes them before routing;
`novelty` needs the model's embedding and joins after the model answered.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

IMAGE_FLAGS: tuple[str, ...] = ("night_time", "low_resolution")
MODEL_FLAGS: tuple[str, ...] = ("novelty",)
FLAGS: tuple[str, ...] = IMAGE_FLAGS + MODEL_FLAGS

Statistic = Callable[[dict[str, float]], float | None]


def _night(d: dict[str, float]) -> float | None:
    if "brightness" not in d or "highlights" not in d:
        return None
    return -0.5 * (math.log(d["brightness"] + 0.01) + math.log(d["highlights"] + 0.01))


def _low_resolution(d: dict[str, float]) -> float | None:
    side = d.get("short_side")
    return None if side is None else -math.log2(max(side, 1.0))


def _novelty(d: dict[str, float]) -> float | None:
    dist = d.get("embedding_distance")
    return None if dist is None else math.log(max(dist, 1e-6))


@dataclass(frozen=True)
class Rule:
    statistic: Statistic
    margin: float  # beyond the reference's high quantile, in the statistic's units, where the score is 0.5
    width: float  # logistic width, in the statistic's units
    default_high: float | None  # the high quantile to assume when a model has no reference for it


RULES: dict[str, Rule] = {
    # ln(1.5): half again as dark as the darkest reference photos.
    "night_time": Rule(_night, margin=math.log(1.5), width=0.12, default_high=1.4),
    # One octave: half the short side of the smallest reference photos (default: below 128 px).
    "low_resolution": Rule(_low_resolution, margin=1.0, width=0.2, default_high=-8.0),
    # ln(1.3): 30% further from the centre than nearly all validation images.
    "novelty": Rule(_novelty, margin=math.log(1.3), width=0.08, default_high=None),
}
HIGH_QUANTILE = 99.5


@dataclass(frozen=True)
class OodResult:
    flags: list[str]
    scores: dict[str, float]
    held: list[str] = field(default_factory=list)  # flags that kept this request on the champion

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"flags": self.flags, "scores": self.scores}
        if self.held:
            out["held"] = self.held
        return out


@dataclass(frozen=True)
class Calibration:
    """Where each flag's score crosses 0.5 (`centre`) and how fast it rises (`width`)."""

    centre: dict[str, float]
    width: dict[str, float]

    @classmethod
    def from_reference(cls, reference: dict[str, Any] | None) -> Calibration:
        """From a model's `meta.reference` (see monitoring.reference); defaults where it says nothing."""
        values = ((reference or {}).get("images") or {}).get("descriptors") or {}
        rows = _rows(values)
        centre, width = {}, {}
        for name, rule in RULES.items():
            stats = [s for s in (rule.statistic(r) for r in rows) if s is not None and math.isfinite(s)]
            high = float(np.percentile(stats, HIGH_QUANTILE)) if stats else rule.default_high
            if name == "novelty" and not stats:
                high = _novelty_default(reference)
            if high is None:
                continue
            centre[name], width[name] = high + rule.margin, rule.width
        return cls(centre, width)

    def scores(self, descriptors: dict[str, float], flags: tuple[str, ...] = FLAGS) -> dict[str, float]:
        out = {}
        for name in flags:
            if name not in self.centre:
                continue
            s = RULES[name].statistic(descriptors)
            if s is None:
                continue
            z = (s - self.centre[name]) / self.width[name]
            out[name] = round(1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z)))), 4)
        return out

    def assess(self, descriptors: dict[str, float], threshold: float = 0.5, flags: tuple[str, ...] = FLAGS) -> OodResult:
        scores = self.scores(descriptors, flags)
        return OodResult(flags=[f for f, v in scores.items() if v >= threshold], scores=scores)


def _rows(columns: dict[str, list[float]]) -> list[dict[str, float]]:
    n = max((len(v) for v in columns.values()), default=0)
    return [{k: v[i] for k, v in columns.items() if i < len(v) and v[i] is not None} for i in range(n)]


def _novelty_default(reference: dict[str, Any] | None) -> float | None:
    """Older packs only have the embedding summary: its p99 of scaled distances stands in."""
    emb = (reference or {}).get("embedding") or {}
    p99 = emb.get("p99")
    return math.log(p99) if p99 else None

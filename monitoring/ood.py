"""Per-image out-of-domain flags with scores in [0, 1], calibrated on the reference statistics a model
was exported with.

Each flag has a statistic (higher = less like the training photos) and a calibration: the reference's
high quantile of that statistic plus a margin gives the point where the score is 0.5, and a width
gives how fast the score rises past it. So a photo as dark as the darkest reference photos scores
well below 0.5, and one markedly darker scores near 1, whatever the training data looked like.

  night_time      dark and without highlights: -(ln brightness + ln highlights) / 2
  low_resolution  little detail: -log2(resolved side in pixels), so a small upload and an upscaled,
                  blurred, sharpened or stamped-after-upscaling one alike (monitoring.descriptors.resolved_side)
  novelty         far from the reference embeddings: ln(distance to their centre / median distance)

Each rule is registered in `RULES` with its statistic, calibration and whether it needs only the image
(the ingress computes those before routing) or the model's embedding (it joins after the model answered).
The margins were chosen on the tuning part of monitoring.shifts' photos; BENCHMARKS.md (monitoring) has
the figures on the held-out part.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from roomsight.registries import Registry

Statistic = Callable[[dict[str, float]], float | None]


def _night(d: dict[str, float]) -> float | None:
    if "brightness" not in d or "highlights" not in d:
        return None
    return -0.5 * (math.log(d["brightness"] + 0.01) + math.log(d["highlights"] + 0.01))


def _low_resolution(d: dict[str, float]) -> float | None:
    # No fallback to an older column: the pixel count, or the earlier estimate of detail
    # (effective_short_side), reads on another scale, and a reference quantile of one against photos
    # measured with the other would flag wholesale; a reference without this column takes the default.
    side = d.get("resolved_side")
    return None if side is None else -math.log2(max(side, 1.0))


def _novelty(d: dict[str, float]) -> float | None:
    dist = d.get("embedding_distance")
    return None if dist is None else math.log(max(dist, 1e-6))


def _novelty_default(reference: dict[str, Any] | None) -> float | None:
    """Older packs only have the embedding summary: its p99 of scaled distances stands in."""
    emb = (reference or {}).get("embedding") or {}
    p99 = emb.get("p99")
    return math.log(p99) if p99 else None


@dataclass(frozen=True)
class Rule:
    statistic: Statistic
    margin: float  # beyond the reference's high quantile, in the statistic's units, where the score is 0.5
    width: float  # logistic width, in the statistic's units
    # The high quantile to assume when the reference has no per-image rows for it (None: no flag).
    default_high: Callable[[dict[str, Any] | None], float | None]
    needs: Literal["image", "model"] = "image"  # the photo alone, or the model's outputs too
    # The reference quantile the margin is counted from: a high one tells a far tail, a lower one is
    # steadier when the reference holds a few hundred photos.
    quantile: float = 99.5


RULES: Registry[Rule] = Registry("out-of-domain rule")
# Margins counted from the reference's 95th percentile, steadier than a far tail over a few hundred photos,
# and tuned on monitoring.shifts' tuning part, five draws pooled (benchmarks/ood_flags.py): the smallest at
# which every ordinary kind there (dim rooms, exposure, noise, JPEG, a smaller photo) is shown with 90%
# confidence to be flagged at most 2%. The defaults are those of the real rooms' photos, for a model
# exported without per-image reference rows.
RULES.add("night_time", Rule(_night, margin=0.8, width=0.12, default_high=lambda _: 0.73, quantile=95))
RULES.add("low_resolution", Rule(_low_resolution, margin=0.5, width=0.2, default_high=lambda _: -6.8, quantile=95))
# ln(1.3): 30% further from the centre than nearly all reference images.
RULES.add("novelty", Rule(_novelty, margin=math.log(1.3), width=0.08, default_high=_novelty_default, needs="model"))

IMAGE_FLAGS: tuple[str, ...] = tuple(n for n, r in RULES.items() if r.needs == "image")
MODEL_FLAGS: tuple[str, ...] = tuple(n for n, r in RULES.items() if r.needs == "model")
FLAGS: tuple[str, ...] = IMAGE_FLAGS + MODEL_FLAGS


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
            high = float(np.percentile(stats, rule.quantile)) if stats else rule.default_high(reference)
            if high is None:
                continue
            centre[name], width[name] = high + rule.margin, rule.width
        return cls(centre, width)

    def scores(self, descriptors: dict[str, float], flags: tuple[str, ...] = FLAGS) -> dict[str, float]:
        return {name: round(v, 4) for name, v in self._exact(descriptors, flags).items()}

    def _exact(self, descriptors: dict[str, float], flags: tuple[str, ...]) -> dict[str, float]:
        out = {}
        for name in flags:
            if name not in self.centre:
                continue
            s = RULES[name].statistic(descriptors)
            if s is None or math.isnan(s):  # no evidence: the clamp below would read a NaN as its upper bound
                continue
            z = (s - self.centre[name]) / self.width[name]
            out[name] = 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))
        return out

    def assess(self, descriptors: dict[str, float], threshold: float = 0.5, flags: tuple[str, ...] = FLAGS) -> OodResult:
        # Flagged on the score itself, shown rounded: a rounded score can sit on the threshold it fell short of.
        exact = self._exact(descriptors, flags)
        return OodResult(flags=[f for f, v in exact.items() if v >= threshold],
                         scores={f: round(v, 4) for f, v in exact.items()})


def _rows(columns: dict[str, list[float]]) -> list[dict[str, float]]:
    n = max((len(v) for v in columns.values()), default=0)
    return [{k: v[i] for k, v in columns.items() if i < len(v) and v[i] is not None} for i in range(n)]

"""Per-class decision thresholds at a target precision.

For class c, the candidates are the images whose top class is c; raising c's threshold turns the least
confident of them into "unsure". Each cut between two distinct scores answers n images of which k are
right. Two ways to pick the cut:

  point  the lowest threshold whose precision k/n reaches the target on the data it is chosen on. With
         a few dozen images per class that figure is itself noisy, and picking the cut where it first
         touches the target picks the luckiest one, so on new photos precision often falls short of it.
  lcb    the lowest threshold whose one-sided Clopper-Pearson lower confidence bound on precision (at
         `confidence`) reaches the target: the precision is claimed only where k right out of n makes a
         lower true precision implausible. The claim is made at that confidence, not with certainty: by
         design a class may still fall short on new photos, up to about 1 - confidence of the time. It
         answers far less: k right out of k is claimed only once target**k <= 1 - confidence, so a class
         needs a long run of right answers at the top before any cut can be claimed.
  BENCHMARKS.md (training, threshold_simulation; benchmarks/threshold_sim.py) has how often each falls
  short on new photos.

A class that no cut takes to the target abstains: its threshold is above every score (it always answers
"unsure") rather than silently imprecise, and `reached` says so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from roomsight.binomial import clopper_pearson_lower

Method = Literal["point", "lcb"]
METHODS: tuple[str, ...] = ("point", "lcb")
NEVER = 1.0 + 1e-6  # a threshold above every probability: the class always answers "unsure"


@dataclass(frozen=True)
class ClassThreshold:
    threshold: float
    precision: float | None  # on the data it was chosen on, at the threshold; None when it answers nothing
    lower: float  # the lower confidence bound on that precision (equal to precision for `point`)
    recall: float
    answered: int  # images of the chosen-on data this class answers at the threshold
    support: int
    reached: bool  # False: no threshold reaches the target; the class abstains

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def thresholds_at_precision(probs: np.ndarray, y_true: np.ndarray, classes: list[str], target: float = 0.95, *,
                            method: Method = "point", confidence: float = 0.95) -> dict[str, ClassThreshold]:
    """`probs`: (N, C) softmax outputs; `y_true`: (N,) class indices."""
    if method not in METHODS:
        raise ValueError(f"threshold method must be one of {', '.join(METHODS)}; got {method!r}")
    top = probs.argmax(axis=1)
    score = probs.max(axis=1)
    out = {}
    for c, name in enumerate(classes):
        support = int((y_true == c).sum())
        mask = (top == c) & np.isfinite(score)  # a NaN score is never answered, so it is no cut
        order = np.argsort(-score[mask], kind="stable")
        s, correct = score[mask][order], (y_true[mask] == c)[order]
        tp = np.cumsum(correct)
        n = np.arange(1, len(s) + 1)
        prec = tp / n if len(s) else np.array([])
        bound = clopper_pearson_lower(tp, n, confidence) if method == "lcb" else prec
        # Cut only between distinct scores: equal scores are all kept or all dropped by a threshold.
        distinct = np.r_[s[1:] != s[:-1], True] if len(s) else np.array([], dtype=bool)
        ok = np.flatnonzero((bound >= target) & distinct)
        if len(ok):
            k = ok[-1]
            out[name] = ClassThreshold(float(s[k]), float(prec[k]), float(bound[k]),
                                       float(tp[k] / support) if support else 0.0, int(n[k]), support, True)
        else:
            closest = float(bound[distinct].max()) if len(bound) else 0.0  # over cuts, not inside tied scores
            out[name] = ClassThreshold(NEVER, None, closest, 0.0, 0, support, False)
    return out


def apply_thresholds(probs: np.ndarray, classes: list[str], thresholds: dict[str, float]) -> np.ndarray:
    """Predicted class index per row, or -1 for "unsure"; a class without a threshold abstains, as in serving."""
    top = probs.argmax(axis=1)
    score = probs.max(axis=1)
    limits = np.asarray([thresholds.get(c, np.inf) for c in classes])
    return np.where(score >= limits[top], top, -1)


def describe_method(method: Method, target: float, confidence: float, source: str) -> str:
    """One line for reports and the model's metadata: how the thresholds were chosen, on what."""
    # As given, not rounded: a rounded figure can state a target or confidence other than the one used.
    if method == "lcb":
        return (f"per-class thresholds where the {confidence * 100:g}% Clopper-Pearson lower bound on precision "
                f"reaches {target:g}, on {source}")

    return f"per-class thresholds where precision reaches {target:g}, on {source}"

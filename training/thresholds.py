"""Per-class decision thresholds at a target precision, chosen on validation data.

For class c, predictions are the images whose top class is c; raising c's threshold turns the least
confident of them into "unsure". We take the lowest threshold whose precision on validation reaches
the target, which keeps the most recall. A class that never reaches the target gets a threshold above
every score (it always answers "unsure") rather than a silently imprecise one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClassThreshold:
    threshold: float
    precision: float  # on the data it was chosen on, at the threshold
    recall: float
    support: int
    reached: bool  # False: no threshold reaches the target precision


def thresholds_at_precision(probs: np.ndarray, y_true: np.ndarray, classes: list[str],
                            target: float = 0.95) -> dict[str, ClassThreshold]:
    """`probs`: (N, C) softmax outputs; `y_true`: (N,) class indices."""
    top = probs.argmax(axis=1)
    score = probs.max(axis=1)
    out = {}
    for c, name in enumerate(classes):
        support = int((y_true == c).sum())
        mask = top == c
        s = score[mask]
        correct = (y_true[mask] == c)
        order = np.argsort(-s, kind="stable")
        s, correct = s[order], correct[order]
        tp = np.cumsum(correct)
        n = np.arange(1, len(s) + 1)
        prec = tp / n if len(s) else np.array([])
        # Cut only between distinct scores: equal scores are all kept or all dropped by a threshold.
        distinct = np.r_[s[1:] != s[:-1], True] if len(s) else np.array([], dtype=bool)
        ok = np.flatnonzero((prec >= target) & distinct)
        if len(ok):
            k = ok[-1]
            out[name] = ClassThreshold(float(s[k]), float(prec[k]), float(tp[k] / support) if support else 0.0,
                                       support, True)
        else:
            out[name] = ClassThreshold(1.0 + 1e-6, 0.0, 0.0, support, False)
    return out


def apply_thresholds(probs: np.ndarray, classes: list[str], thresholds: dict[str, float]) -> np.ndarray:
    """Predicted class index per row, or -1 for "unsure"."""
    top = probs.argmax(axis=1)
    score = probs.max(axis=1)
    limits = np.asarray([thresholds.get(c, 0.0) for c in classes])
    return np.where(score >= limits[top], top, -1)

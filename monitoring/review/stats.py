"""Numbers from review verdicts, pure: Wilson intervals, per-model precision per class, and who was
right on disagreements. No database here; `monitoring.review.queue` feeds it rows."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

Z95 = 1.959963984540054
UNUSABLE = "unusable"
ABSTAIN = "unsure"


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval for a binomial proportion; None without trials."""
    if n <= 0:
        return None
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, {n}], got {successes}")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Reviewed:
    """One item with a verdict: the truth and what each model said (None: it did not answer)."""

    truth: str  # a class or UNUSABLE
    champion: str | None
    candidate: str | None
    region: str
    disagreement: bool


@dataclass(frozen=True)
class Precision:
    correct: int
    n: int

    @property
    def value(self) -> float | None:
        return self.correct / self.n if self.n else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson(self.correct, self.n)

    @property
    def lower(self) -> float | None:
        ci = self.interval
        return ci[0] if ci else None


@dataclass
class ModelPrecision:
    overall: Precision
    per_class: dict[str, Precision] = field(default_factory=dict)


@dataclass
class Summary:
    reviewed: int
    unusable: int
    champion: ModelPrecision
    candidate: ModelPrecision
    candidate_right: int  # disagreements where only the candidate was right
    champion_right: int  # disagreements where only the champion was right
    both_wrong: int
    disagreements: int

    @property
    def candidate_win_rate(self) -> float | None:
        decided = self.candidate_right + self.champion_right
        return self.candidate_right / decided if decided else None


def precision(items: list[Reviewed], model: str) -> ModelPrecision:
    """Precision of a model's answers (abstentions and unusable photos excluded), overall and per
    predicted class."""
    per: dict[str, list[int]] = {}
    for it in items:
        pred = getattr(it, model)
        if pred is None or pred == ABSTAIN or it.truth == UNUSABLE:
            continue
        c = per.setdefault(pred, [0, 0])
        c[0] += pred == it.truth
        c[1] += 1
    per_class = {k: Precision(v[0], v[1]) for k, v in sorted(per.items())}
    return ModelPrecision(Precision(sum(p.correct for p in per_class.values()), sum(p.n for p in per_class.values())),
                          per_class)


def summarize(items: list[Reviewed]) -> Summary:
    cand_right = champ_right = both_wrong = n_dis = 0
    for it in items:
        if not it.disagreement or it.truth == UNUSABLE:
            continue
        n_dis += 1
        a, b = it.candidate == it.truth, it.champion == it.truth
        cand_right += a and not b
        champ_right += b and not a
        both_wrong += not a and not b
    return Summary(reviewed=len(items), unusable=sum(it.truth == UNUSABLE for it in items),
                   champion=precision(items, "champion"), candidate=precision(items, "candidate"),
                   candidate_right=cand_right, champion_right=champ_right, both_wrong=both_wrong,
                   disagreements=n_dis)


def by_region(items: list[Reviewed]) -> dict[str, Summary]:
    regions = sorted({it.region for it in items})
    return {r: summarize([it for it in items if it.region == r]) for r in regions}


def gate_metrics(s: Summary) -> dict[str, float | None]:
    """The `rollout.plan.METRICS` names under "review verdicts"."""
    cand, champ = s.candidate.overall.lower, s.champion.overall.lower
    class_values = [p.value for p in s.candidate.per_class.values() if p.value is not None]
    return {
        "reviewed": float(s.reviewed),
        "candidate_precision_lower": cand,
        "champion_precision_lower": champ,
        "precision_margin": cand - champ if cand is not None and champ is not None else None,
        "min_class_precision": min(class_values) if class_values else None,
        "candidate_win_rate": s.candidate_win_rate,
    }

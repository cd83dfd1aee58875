"""Each model's accuracy, precision and coverage on the traffic, from a review sample that over-represents
disagreements and low-confidence answers.

The review sample is stratified (disagreement, low confidence, spot check; each sampled at its own rate)
and further split by whether the two labels differ, which the log knows for every photo. The estimates
cover the traffic logged up to the sample's common frontier (`ReviewSample.common_frontier`, said in
`ModelEstimate.covers_to`): up to it every sampled photo of every stratum has its verdict, so within a
post-stratum h the reviewed photos are all those of its N_h logged photos that its design rate drew, a
fair sample, and each stands for N_h/n_h of them.

Why not the whole log: the queue serves each stratum oldest first (monitoring.review.order), so where
verdicts lag the traffic the reviewed photos are the oldest of their stratum, not a random part of it.
Read as a fair sample of every photo logged, they describe early traffic while claiming the whole, and
where the models' accuracy moves with the traffic (more night photos later) the interval misses. Serving
agreements in a random order (by a hash) would not make them a random part either: an item queued early
waits through more claims than one queued late. Up to the common frontier the inclusion probability is the design rate
with nothing modelled, and it is read "as known then" from logged_at and resolved_at alone. The cost is
recency: the estimates trail the log by the age of the oldest open item.

A ratio is the weighted sum of its numerator over the weighted sum of its denominator (the ratio
estimator), and its variance is the stratified linearisation sum_h N_h^2 s_h^2 / n_h over X^2. The 95%
interval is Wilson's at the effective sample size R(1-R)/Var (Korn and Graubard), or, where R is 0 or 1,
at Kish's (sum w)^2 / sum w^2 over the verdicts in the denominator, so a stratum of few verdicts widens it
instead of vanishing from it.

- accuracy: right answers among usable photos (an abstention is not right);
- precision: right answers among usable photos the model answered (not `unsure`);
- coverage: share of compared photos the model answered, counted in the whole log (no sampling error, so
  no frontier).
A model cannot look better by abstaining: accuracy falls, and coverage is reported beside precision.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from roomsight.binomial import wilson_share
from roomsight.verdicts import UNSURE, Cell, ReviewSample

MODELS = ("champion", "candidate")


@dataclass(frozen=True)
class Estimate:
    value: float
    lower: float
    upper: float
    n: int  # verdicts in the denominator
    n_eff: float  # effective sample size after weighting

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ModelEstimate:
    accuracy: Estimate | None  # None: a stratum with traffic has no verdict yet
    precision: Estimate | None
    coverage: float | None
    covers_to: float | None = None  # accuracy and precision are of the traffic logged up to it (None: no fill yet)

    def to_dict(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy and self.accuracy.to_dict(),
                "precision": self.precision and self.precision.to_dict(), "coverage": self.coverage,
                "covers_to": self.covers_to}


def ratio(populations: dict[tuple[str, bool], int], items: dict[tuple[str, bool], list[tuple[int, int]]]) -> Estimate | None:
    """Stratified ratio sum_h N_h mean(y) / sum_h N_h mean(x) with (y, x) pairs per post-stratum."""
    num = den = 0.0
    for h, big_n in populations.items():
        pairs = items.get(h, [])
        if big_n and not pairs:
            return None
        if pairs:
            num += big_n * sum(y for y, _ in pairs) / len(pairs)
            den += big_n * sum(x for _, x in pairs) / len(pairs)
    n_x = sum(x for pairs in items.values() for _, x in pairs)
    if den <= 0 or n_x == 0:
        return None
    r = num / den
    var = 0.0
    for h, big_n in populations.items():
        pairs = items.get(h, [])
        if not big_n or not pairs:
            continue
        n = len(pairs)
        z = [y - r * x for y, x in pairs]
        mean = sum(z) / n
        s2 = sum((v - mean) ** 2 for v in z) / (n - 1) if n > 1 else 0.0
        # A stratum where every verdict agreed still has an uncertain rate: floor its variance at the
        # Laplace-smoothed binomial one, so few verdicts widen the interval. The rate is over the m verdicts
        # in the denominator (z is 0 on the others): scaled by (m/n)^2, the floor read the others as trials too.
        k, m = sum(y for y, _ in pairs), sum(x for _, x in pairs)
        smooth = (k + 1) / (m + 2)
        s2 = max(s2, m / n * smooth * (1 - smooth))
        var += big_n ** 2 * s2 / n
    var /= den ** 2
    if r in (0.0, 1.0) or var == 0:
        # R(1-R)/Var says nothing here, and n_x would let a stratum of few verdicts vanish again: every verdict
        # right, one verdict standing for most of the traffic beside many for a sliver of it read as a
        # near-certain 1. Kish's count from the weights keeps what weighting costs.
        weights = [(big_n / len(items[h]), sum(x for _, x in items[h])) for h, big_n in populations.items()
                   if big_n and items.get(h)]
        n_eff = min(float(n_x), max(1.0, sum(w * m for w, m in weights) ** 2 / sum(w * w * m for w, m in weights)))
    else:
        n_eff = min(float(n_x), max(1.0, r * (1 - r) / var))
    lo, hi = wilson_share(r, n_eff)
    return Estimate(r, lo, hi, int(n_x), round(n_eff, 1))


def model_estimates(sample: ReviewSample, where: Callable[[Cell], bool] = lambda _: True) -> dict[str, ModelEstimate]:
    """Both models' weighted estimates over the compared traffic up to the common frontier (or the cells
    `where` keeps there)."""
    populations: dict[tuple[str, bool], int] = defaultdict(int)
    answered = {m: 0 for m in MODELS}
    total = 0
    edge = sample.common_frontier
    for row in sample.counts:
        if where(row.cell):
            populations[(row.stratum, row.discordant)] += row.n if row.common else 0
            total += row.n
            answered["champion"] += row.n if row.champion_answered else 0
            answered["candidate"] += row.n if row.candidate_answered else 0
    out = {}
    for m in MODELS:
        acc: dict[tuple[str, bool], list[tuple[int, int]]] = defaultdict(list)
        prec: dict[tuple[str, bool], list[tuple[int, int]]] = defaultdict(list)
        for v in sample.verdicts:
            if edge is not None and v.logged_at <= edge and where(v.cell):
                answer = getattr(v, m)
                right = int(v.usable and answer == v.truth)
                acc[(v.stratum, v.discordant)].append((right, int(v.usable)))
                prec[(v.stratum, v.discordant)].append((right, int(v.usable and answer != UNSURE)))
        out[m] = ModelEstimate(ratio(populations, acc), ratio(populations, prec),
                               answered[m] / total if total else None, edge)
    return out


def segment_estimates(sample: ReviewSample, key: str) -> dict[str, dict[str, ModelEstimate]]:
    """Per value of one segment key: both models' estimates within it."""
    values = sorted({row.cell.value(key) for row in sample.counts})
    return {value: model_estimates(sample, lambda c, v=value: c.value(key) == v) for value in values}


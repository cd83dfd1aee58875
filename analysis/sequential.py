"""Any-time-valid bounds on a mean, and Holm's step-down over any-time p-values.

The paired comparison reads one number per compared photo: +1 (only the candidate right), -1 (only the
champion right) or 0 (both right, both wrong, or the labels agree), divided by the inclusion probability
of the photo's stratum where it was reviewed. Its bounds must hold however often they are read, and be
narrow where most photos are zeros. `three_point_bound` does that with a mixture of Fan-Grama-Liu
exponential supermartingales (an empirical-Bernstein confidence sequence in the sense of Howard et al.
2021, "Time-uniform, nonparametric, nonasymptotic confidence sequences"): it depends only on the counts,
so no query reads the order of the observations, and bounds of a count are cached.
"""

from __future__ import annotations

import math
from functools import lru_cache

# Bets of the mixture below: a geometric grid, equally weighted, from large (quick on strong evidence) to
# small (tight after thousands of compared photos). A mixture of supermartingales is one; each bet
# added costs log(len) in the threshold.
LAMBDAS = tuple(0.8 * 0.6 ** j for j in range(9))


def _log_wealth(s: float, v: float, c: float) -> float:
    """log of sum_j w_j exp(l_j s/c - psi_E(l_j) v/c^2), psi_E(l) = -log(1 - l) - l."""
    terms = [lam * s / c - (-math.log1p(-lam) - lam) * v / (c * c) for lam in LAMBDAS]
    top = max(terms)
    return top + math.log(sum(math.exp(t - top) for t in terms) / len(terms))


def three_point_wealth(wins: int, losses: int, n: int, scale: float, m: float, side: int) -> float:
    """log wealth against "the mean is at most m" (side -1) or "at least m" (side +1); see
    `three_point_bound`. 1/exp(wealth) is an any-time-valid p-value for that null."""
    total, squares = scale * (wins - losses), scale * scale * (wins + losses)
    s = (total - n * m) * -side
    if n == 0 or s <= 0:
        return 0.0
    v = squares - 2 * m * total + n * m * m
    return max(0.0, _log_wealth(s, v, scale + max(-side * m, 0.0)))


@lru_cache(maxsize=200_000)
def three_point_bound(wins: int, losses: int, n: int, scale: float, alpha: float, side: int) -> float:
    """A one-sided any-time-valid bound (side -1: lower, +1: upper) on the mean of n observations each
    +scale (`wins`), -scale (`losses`) or 0, at level alpha.

    For the lower bound, each mean m is tested with xi_i = (X_i - m)/c, c = scale + max(m, 0) at least the
    largest drop, so xi_i >= -1; then exp(l xi - psi_E(l) xi^2) <= 1 + l xi (Fan, Grama and Liu 2012), whose mean is at
    most 1 when the true mean is at most m, so the product over observations is a supermartingale, and so is
    any mixture of them over l (Howard et al. 2021). The bound is the largest m that wealth >= 1/alpha
    rejects (and the upper bound the mirror image). Its width follows the observed variance: the zeros
    (photos where the models agree) cost almost nothing."""
    if n == 0:
        return -scale if side < 0 else scale
    mean = scale * (wins - losses) / n
    threshold = math.log(1 / alpha)

    def rejected(m: float) -> bool:  # the mean is shown to be above m (side -1) or below it (side +1)
        return three_point_wealth(wins, losses, n, scale, m, side) >= threshold

    edge = -scale * 0.999999 if side < 0 else scale * 0.999999
    if not rejected(edge):
        return -scale if side < 0 else scale
    near, far = mean, edge  # near: not rejected; far: rejected
    while abs(far - near) > 1e-5 * scale:
        mid = (near + far) / 2
        near, far = (near, mid) if rejected(mid) else (mid, far)
    return far


def holm(p_values: list[float], alpha: float) -> list[bool]:
    """Holm's step-down: which hypotheses are rejected with family-wise error <= alpha. Valid for any
    dependence, and for any-time p-values at any time, since each true null's p-value falls below
    alpha/m at some time with probability at most alpha/m."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    rejected = [False] * len(p_values)
    m = len(p_values)
    for rank, i in enumerate(order):
        if p_values[i] > alpha / (m - rank):
            break
        rejected[i] = True
    return rejected

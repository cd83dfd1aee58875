"""Any-time-valid tests and bounds on the mean of a three-valued increment, by betting; and Holm's step-down.

The paired comparison reads one number per compared photo: +c (only the candidate right), -c (only the
champion right) or 0 (both right, both wrong, or the labels agree), c being one over the inclusion
probability of the photo's stratum. The share of a segment cell reads +1 (the photo is in the cell) or
-1. Both must be judged however often they are read, and narrow where most increments are zeros.

Testing "the mean is at most m": a bettor who stakes a fixed fraction lam of her capital on each X_i
being above m multiplies it by 1 + lam (X_i - m) / C, C = c + max(m, 0) being at least the largest drop,
so the factor is never negative. If the mean of every X_i given the past is at most m, each factor has
mean at most 1, her capital is a nonnegative supermartingale, and so is the average capital of bettors
with fixed fractions `BETS` (the grid mixture of Waudby-Smith and Ramdas 2024, "Estimating means of
bounded random variables by betting", JRSS-B 86(1)). By Ville's inequality it ever reaches 1/alpha with
probability at most alpha, at whatever times it is read: that is the test, and 1/capital is an any-time
p-value. "At least m" is the mirror image. The confidence bound is the edge of the means not rejected.

The capital depends on the counts only (wins, losses, n), so no query reads the order of the observations,
the same counts give the same decision, and the error rate can be computed exactly by dynamic programming
over the counts (tests/test_analysis.py).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

# The bettors' fractions: from large (quick on strong evidence, e.g. a segment cell at a wide margin)
# to small (patient, for a small effect among many agreements), log-spaced and equally weighted.
BETS = np.geomspace(0.1, 0.95, 20)
_LOG_WEIGHT = -math.log(len(BETS))


def log_capitals(wins: np.ndarray, losses: np.ndarray, n: int, scale: float, m: float, side: int) -> np.ndarray:
    """`log_capital` for arrays of counts at once (the exact error computation reads every count)."""
    s = -side  # +1: bet on the mean being above m
    big_c = scale + max(s * m, 0.0)
    up, down, zero = s * (scale - m) / big_c, s * (-scale - m) / big_c, s * -m / big_c
    w, l = np.asarray(wins, float)[..., None], np.asarray(losses, float)[..., None]
    terms = w * np.log1p(BETS * up) + l * np.log1p(BETS * down) + (n - w - l) * np.log1p(BETS * zero)
    top = terms.max(axis=-1)
    return np.where(n > 0, top + np.log(np.exp(terms - top[..., None]).sum(axis=-1)) + _LOG_WEIGHT, 0.0)


@lru_cache(maxsize=500_000)
def log_capital(wins: int, losses: int, n: int, scale: float, m: float, side: int) -> float:
    """log of the mixture capital against "the mean is at most m" (side -1) or "at least m" (side +1),
    from n observations of which `wins` are +scale, `losses` -scale and the rest 0. Below 0 when the
    evidence points the other way."""
    return float(log_capitals(np.array(wins), np.array(losses), n, scale, m, side))


def p_value(wins: int, losses: int, n: int, scale: float, m: float, side: int) -> float:
    """Any-time-valid p-value for "the mean is at most m" (side -1) or "at least m" (side +1)."""
    return math.exp(-max(0.0, log_capital(wins, losses, n, scale, m, side)))


def rejects(wins: int, losses: int, n: int, scale: float, m: float, side: int, alpha: float) -> bool:
    return log_capital(wins, losses, n, scale, m, side) >= math.log(1 / alpha)


@lru_cache(maxsize=200_000)
def bound(wins: int, losses: int, n: int, scale: float, alpha: float, side: int) -> float:
    """The one-sided any-time-valid bound (side -1: lower, +1: upper) on the mean at level alpha: every
    mean beyond it is rejected. The capital falls monotonically as m moves towards the null side, so
    bisection finds the edge."""
    far = -scale if side < 0 else scale
    if n == 0 or not rejects(wins, losses, n, scale, far * 0.999999, side, alpha):
        return far
    near = scale * (wins - losses) / n  # never rejected: the capital of a bet against the mean seen is < 1
    far *= 0.999999
    while abs(far - near) > 1e-5 * scale:
        mid = (near + far) / 2
        near, far = (near, mid) if rejects(wins, losses, n, scale, mid, side, alpha) else (mid, far)
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

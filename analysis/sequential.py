"""Any-time-valid confidence sequences for a Bernoulli share, and Holm's step-down over any-time p-values.

The confidence sequence is Robbins' conjugate mixture (Howard et al. 2021, "Time-uniform, nonparametric,
nonasymptotic confidence sequences", section 3.3): with a Beta(a, b) prior over the share p, the
mixture likelihood ratio against a fixed p,

    M_n(p) = B(a + k, b + n - k) / B(a, b) / (p^k (1 - p)^(n - k)),

is a nonnegative martingale with mean 1 when p is the true share, so by Ville's inequality
P(M_n(p) >= 1/alpha for some n) <= alpha, and {p : M_n(p) < 1/alpha} covers p at every n at once: the
bounds may be read after every observation and acted on, without inflating the error rate. It depends on
the counts only (k successes in n), so the analyses never need the order of the observations, and the
bounds of a count are cached. savvi's `Multinomial` computes the same martingale (tests compare them).
"""

from __future__ import annotations

import math
from functools import lru_cache

from scipy.special import betaln

# The prior of the win share on discordant photos: centred on a tie, where the narrowest bounds are
# wanted (non-inferiority is decided near it; a clearly worse candidate fails fast under any prior).
TIE_PRIOR = (10.0, 10.0)
FLAT_PRIOR = (1.0, 1.0)


def log_mixture(p: float, k: int, n: int, prior: tuple[float, float] = FLAT_PRIOR) -> float:
    """log M_n(p): the evidence against share p after k successes in n."""
    a, b = prior
    if p <= 0.0:
        return math.inf if k > 0 else betaln(a + k, b + n - k) - betaln(a, b)
    if p >= 1.0:
        return math.inf if k < n else betaln(a + k, b + n - k) - betaln(a, b)
    return betaln(a + k, b + n - k) - betaln(a, b) - k * math.log(p) - (n - k) * math.log1p(-p)


@lru_cache(maxsize=200_000)
def bernoulli_cs(k: int, n: int, alpha: float, prior: tuple[float, float] = FLAT_PRIOR) -> tuple[float, float]:
    """The (1 - alpha) confidence sequence for a share after k successes in n, read at this n."""
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if n == 0:
        return 0.0, 1.0
    a, b = prior
    # log M_n(p) = const - k log p - (n - k) log(1 - p); each bound is where it reaches log(1/alpha).
    level = math.log(1 / alpha) - (betaln(a + k, b + n - k) - betaln(a, b))
    if k == 0:
        return 0.0, -math.expm1(-level / n)
    if k == n:
        return math.exp(-level / n), 1.0
    return _root(k, n, level, -1.0), _root(k, n, level, 1.0)


def _root(k: int, n: int, level: float, side: float) -> float:
    """The root of g(t) = -k log p - (n - k) log(1 - p) - level, p = sigmoid(t), on one side of the
    maximum-likelihood t. g is convex in t, so Newton's method started where g > 0 on that side walks
    down to the root without overshooting."""
    mle = math.log(k / (n - k))

    def g(t: float) -> tuple[float, float]:
        # -log p = softplus(-t), -log(1 - p) = softplus(t), computed without overflow
        soft = math.log1p(math.exp(-abs(t)))
        minus_log_p, minus_log_q = soft + max(-t, 0.0), soft + max(t, 0.0)
        return k * minus_log_p + (n - k) * minus_log_q - level, n / (1 + math.exp(-t)) - k

    # Start just outside the root of g's quadratic approximation at the minimum.
    floor = -k * math.log(k / n) - (n - k) * math.log1p(-k / n) - level
    step = 1.1 * math.sqrt(max(-2 * floor, 1e-12) * n / (k * (n - k))) + 1e-9
    t = mle + side * step
    while g(t)[0] <= 0:
        step *= 2
        t = mle + side * step
    for _ in range(60):
        value, slope = g(t)
        nxt = t - value / slope
        if abs(nxt - t) < 1e-9:
            break
        t = nxt
    return 1 / (1 + math.exp(-t))


def p_value_at_least(k: int, n: int, p0: float, prior: tuple[float, float] = FLAT_PRIOR) -> float:
    """Any-time-valid p-value for "the share is at least p0": the smallest alpha whose confidence sequence
    excludes every share >= p0 (the sequence at that alpha covers the truth at all times w.p. 1 - alpha)."""
    if n == 0:
        return 1.0
    worst = max(p0, k / n)  # M_n(p) is convex in log-odds with its minimum at k/n
    return min(1.0, math.exp(-log_mixture(worst, k, n, prior)))


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

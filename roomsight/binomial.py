"""Bounds on a binomial proportion, k successes in n trials: the Wilson score interval (review precision,
the weighted estimates), the one-sided Clopper-Pearson bounds (training's thresholds, the
out-of-domain flags' tuning), and an any-time-valid upper bound (the per-class precision gate, read however
often the guard reads it). Arithmetic that analysis, monitoring and training all
read and none of them owns: in the kernel, each imports the one copy without reaching into another
layer's module. scipy is imported inside the Clopper-Pearson bounds only: scipy.stats is slow to import,
and most importers want Wilson's interval alone."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike

Z95 = 1.959963984540054  # the two-sided 95% quantile of the standard normal


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval for `successes` of `n`; None without trials."""
    if n <= 0:
        return None
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, {n}], got {successes}")
    return wilson_share(successes / n, n, z)


def wilson_share(p: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval around a share `p` of `n` trials; `n` need not be whole (an effective sample
    size, as analysis.weighted has) but must be above 0."""
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def clopper_pearson_lower(correct: ArrayLike, n: ArrayLike, confidence: float) -> np.ndarray:
    """One-sided Clopper-Pearson lower bound, elementwise: the p for which `correct` or more successes in `n`
    trials has probability 1 - confidence. 0 where nothing is right. Arrays, as a threshold is fitted by
    bounding every cut at once (training.thresholds)."""
    from scipy.stats import beta

    correct, n = np.asarray(correct, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore"):
        bound = beta.ppf(1.0 - confidence, correct, n - correct + 1.0)
    return np.where(correct > 0, np.nan_to_num(bound), 0.0)


def clopper_pearson_upper(correct: int, n: int, confidence: float) -> float | None:
    """One-sided Clopper-Pearson upper bound: the p for which `correct` or fewer successes in `n` trials has
    probability 1 - confidence. 1 where everything is right; None without trials."""
    from scipy.stats import beta

    if not n:
        return None
    return 1.0 if correct == n else float(beta.ppf(confidence, correct + 1, n - correct))


@lru_cache(maxsize=65_536)  # the guard reads the same few counts again at every look
def any_time_upper(correct: int, n: int, alpha: float) -> float | None:
    """An upper bound on the proportion that holds at every n at once: with probability at least 1 - alpha it
    is never below the true p, however often it is read as trials come in. The likelihood ratio of the
    uniform mixture over p against p0, B(correct + 1, wrong + 1) / (p0^correct (1 - p0)^wrong), is a
    nonnegative martingale with mean 1 when p0 is the truth, so by Ville's inequality it reaches 1/alpha with
    probability at most alpha; the bound is the largest p0 above the share seen that it has not reached.
    1 where it reaches it for no p0 (few trials, or all right); None without trials."""
    if not n:
        return None
    wrong = n - correct
    if not wrong:
        return 1.0
    threshold = math.log(1 / alpha) - (math.lgamma(correct + 1) + math.lgamma(wrong + 1) - math.lgamma(n + 2))

    def rejected(p0: float) -> bool:  # the log mixture ratio at p0 reaches log(1/alpha)
        return -(correct * math.log(p0) + wrong * math.log1p(-p0)) >= threshold

    near, far = correct / n, 1.0 - 1e-12
    if not rejected(far):
        return 1.0
    while far - near > 1e-7:  # rejection grows as p0 moves away from the share seen
        mid = (near + far) / 2
        near, far = (near, mid) if rejected(mid) else (mid, far)
    return far

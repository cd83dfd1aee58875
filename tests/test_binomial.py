"""The binomial bounds' one home (roomsight.binomial): Wilson's interval, and the one-sided Clopper-Pearson
bounds pinned to scipy's beta quantiles bit for bit, as the copies it replaced computed them, edges included."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import beta, binomtest

from roomsight.binomial import clopper_pearson_lower, clopper_pearson_upper, wilson, wilson_share

# (right, trials): none right, all right, one of one, a middle case, and many.
COUNTS = [(0, 1), (0, 10), (10, 10), (1, 1), (3, 7), (59, 59), (58, 59), (900, 1000)]


def test_wilson_matches_known_values() -> None:
    lo, hi = wilson(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    lo, hi = wilson(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson(10, 10)
    assert hi == pytest.approx(1.0) and lo == pytest.approx(0.7225, abs=1e-4)
    assert wilson(0, 0) is None
    with pytest.raises(ValueError):
        wilson(11, 10)


@pytest.mark.parametrize("k, n", COUNTS)
def test_wilson_is_scipys_and_its_share_form_the_same_numbers(k: int, n: int) -> None:
    ci = binomtest(k, n).proportion_ci(method="wilson")
    assert wilson(k, n) == pytest.approx((ci.low, ci.high), abs=1e-12)
    # analysis.weighted reads a share of an effective count: on whole counts it is the same interval.
    assert wilson_share(k / n, n) == wilson(k, n)


def test_wilson_narrows_with_more_evidence() -> None:
    small, large = wilson(9, 10), wilson(900, 1000)
    assert small[0] < large[0] < 0.9 < large[1] < small[1]
    (lo, hi), (lo_more, hi_more) = wilson_share(0.9, 10), wilson_share(0.9, 10.5)  # an effective count need not be whole
    assert lo < lo_more < 0.9 < hi_more < hi


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.999])
def test_the_clopper_pearson_bounds_are_scipys_beta_quantiles_bit_for_bit(confidence: float) -> None:
    k, n = np.array([k for k, _ in COUNTS]), np.array([n for _, n in COUNTS])
    lower = clopper_pearson_lower(k, n, confidence)
    for (right, trials), low in zip(COUNTS, lower):
        assert low == (float(beta.ppf(1 - confidence, right, trials - right + 1)) if right else 0.0)
        up = clopper_pearson_upper(right, trials, confidence)
        assert up == (float(beta.ppf(confidence, right + 1, trials - right)) if right < trials else 1.0)
        # The same bounds as scipy's exact one-sided intervals, which are computed otherwise.
        exact = binomtest(right, trials, alternative="greater").proportion_ci(confidence, "exact").low
        assert low == pytest.approx(exact, abs=1e-12)
        exact = binomtest(right, trials, alternative="less").proportion_ci(confidence, "exact").high
        assert up == pytest.approx(exact, abs=1e-12)
    assert clopper_pearson_upper(0, 0, confidence) is None


def test_clopper_pearson_lower_bound_at_the_thresholds_target() -> None:
    # 59 right of 59 is the fewest that bounds precision at 0.95 with 95% confidence (0.95 ** 59 < 0.05).
    assert clopper_pearson_lower([59], [59], 0.95)[0] >= 0.95 > clopper_pearson_lower([58], [58], 0.95)[0]
    assert clopper_pearson_lower([0], [10], 0.9)[0] == 0.0
    # the bound is below the observed share and tightens with more photos at the same share
    b = clopper_pearson_lower(np.array([90, 900]), np.array([100, 1000]), 0.9)
    assert b[0] < b[1] < 0.9


def test_clopper_pearson_upper_bound_is_wider_than_wilson_on_few_answers() -> None:
    # Why the per-class precision gate reads it (monitoring.review.stats): none right of one is not yet a
    # class shown below 0.8, which Wilson's upper end says it is.
    assert wilson(0, 1)[1] < 0.8 < clopper_pearson_upper(0, 1, 0.95)


def test_the_any_time_upper_bound_is_above_the_share_and_wider_than_one_read_at_a_fixed_count() -> None:
    """Valid at every count at once, it cannot be narrower than the bound valid at one count."""
    from roomsight.binomial import any_time_upper

    assert any_time_upper(0, 0, 0.05) is None and any_time_upper(7, 7, 0.05) == 1.0
    for n in (1, 5, 20, 100):
        for right in range(0, n, max(1, n // 7)):
            up = any_time_upper(right, n, 0.05)
            assert right / n < up and clopper_pearson_upper(right, n, 0.95) <= up <= 1.0
    assert any_time_upper(0, 22, 0.05) < 0.5 < any_time_upper(0, 3, 0.05)

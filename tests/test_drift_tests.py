"""Which test a drift comparison runs on each column (monitoring.drift_tests): p-values unless both sides are
large, so a small window against a large reference is not alarmed by its own sampling error."""

from __future__ import annotations

import numpy as np
import pandas as pd

from monitoring import drift
from monitoring.descriptors import DESCRIPTORS
from monitoring.drift_tests import P_VALUE_ROWS, per_column_tests
from tests.conftest import settings_for


def photos(n: int, seed: int) -> pd.DataFrame:
    """Descriptor-like columns, skewed as real ones are, and the categorical columns a window has."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.lognormal(0.0, 1.0, n) for name in DESCRIPTORS})
    frame[drift.PREDICTED] = rng.choice(["bedroom", "kitchen", "bathroom"], n)
    frame[drift.OOD] = np.where(rng.random(n) < 0.02, "yes", "no")
    return frame


def test_a_small_window_against_a_large_reference_is_tested_by_p_values_a_large_one_by_distances():
    big, small = photos(P_VALUE_ROWS + 500, 0), photos(200, 1)
    numeric, categorical = list(DESCRIPTORS), [drift.PREDICTED, drift.OOD]
    assert per_column_tests(big, photos(P_VALUE_ROWS + 1, 2), numeric, categorical) is None
    tests = per_column_tests(big, small, numeric, categorical)
    assert tests is not None and {tests[c] for c in numeric} == {"ks"}
    assert tests[drift.PREDICTED] == "chisquare" and tests[drift.OOD] == "z"


def test_untouched_windows_of_two_hundred_against_a_large_reference_do_not_alarm(tmp_path):
    """Against distances with their fixed threshold, such windows drifted by chance: the alarm the guard pauses on
    fired on photos from the reference's own population."""
    settings = settings_for(tmp_path)
    reference = photos(P_VALUE_ROWS + 500, 0)
    results = [drift.compare(reference, photos(200, seed), settings, same_model=False)[0] for seed in range(1, 5)]
    assert not any(r.alarm for r in results), [r.reasons for r in results]
    assert {c.method for r in results for c in r.columns.values()} == {"K-S p_value", "chi-square p_value", "Z-test p_value"}
    # ... and a shift still shows: every descriptor doubled in a quarter of the window.
    shifted = photos(200, 9)
    shifted.loc[:49, list(DESCRIPTORS)] *= 2
    assert drift.compare(reference, shifted, settings, same_model=False)[0].alarm


def test_a_number_of_few_values_is_left_to_evidently_which_refuses_a_named_test_for_it(tmp_path):
    """Named for a number, chi-square or z is refused (Evidently gives such a column one of them itself), and
    the check failed."""
    reference, window = photos(P_VALUE_ROWS + 500, 0), photos(200, 1)
    reference["width"], window["width"] = 256.0, np.where(np.arange(200) < 100, 256.0, 512.0)
    result = drift.compare(reference, window, settings_for(tmp_path), same_model=False)[0]
    assert result.columns["width"].drifted and result.columns["brightness"].method == "K-S p_value"

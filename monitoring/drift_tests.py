"""Which test a drift comparison runs on each column.

Evidently picks its tests by the reference's size alone: up to 1,000 rows, p-values (Kolmogorov-Smirnov for
a number, chi-square or a z-test for a category or a number of few values); over 1,000, distances
(Wasserstein, Jensen-Shannon) against a fixed threshold, which leave sampling error to the size of the data.
A model trained on the real photos carries over 1,000 reference photos, and a check reads a window of a few
hundred predictions early in a step: the distances of such a window from its own population cross the
threshold by chance, and the alarm the guard pauses on fired on untouched photos (BENCHMARKS.md, drift). So
the distances are used only when both sides are large; otherwise every column gets the test Evidently gives
a small reference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

P_VALUE_ROWS = 1000  # Evidently's own line between the two kinds of test
# A test named here is reported by its name, one Evidently chose by its display name; the display names say
# which way a score drifts ("p_value": below the threshold), so every test is shown by those.
DISPLAY_NAMES = {"ks": "K-S p_value", "chisquare": "chi-square p_value", "z": "Z-test p_value"}


def per_column_tests(reference: pd.DataFrame, current: pd.DataFrame, numeric: list[str],
                     categorical: list[str]) -> dict[str, str] | None:
    """Evidently's small-reference test for each column when either side has at most P_VALUE_ROWS rows;
    None (its own choice, the distances) when both are larger. A number of five values or fewer (a photo's
    width, say) is left to Evidently: it tests those by chi-square or z itself, and refuses either named
    for a number."""
    if min(len(reference), len(current)) > P_VALUE_ROWS:
        return None
    import pandas as pd

    def n_values(column: str) -> int:
        return int(pd.concat([reference[column], current[column]]).nunique())

    tests = {column: "ks" for column in numeric if n_values(column) > 5}
    tests.update({column: "chisquare" if n_values(column) > 2 else "z" for column in categorical})
    return tests

"""Out-of-domain calibration on descriptors alone (monitoring.ood): what a reference's tail, and
descriptors a photo or an older model lacks, do to the flags. No images drawn."""

from __future__ import annotations

import math

import pytest

from monitoring.ood import RULES, Calibration


def test_a_few_tiny_reference_photos_do_not_move_the_low_resolution_threshold():
    # The rule counts from the 95th percentile so that a handful of odd training photos (here 2%) cannot
    # drag the threshold down to them and let small uploads through.
    sides = [256.0] * 98 + [16.0] * 2
    cal = Calibration.from_reference({"images": {"descriptors": {"resolved_side": sides}}})
    rule = RULES["low_resolution"]
    assert cal.centre["low_resolution"] == pytest.approx(-math.log2(256.0) + rule.margin)
    assert cal.assess({"resolved_side": 32.0}).flags == ["low_resolution"]


def test_descriptors_without_highlights_give_no_night_score_rather_than_an_error():
    # A reference or photo described before `highlights` existed: night_time reads both, so it has no
    # evidence; the other flags still work and loading the model does not fail.
    cal = Calibration.from_reference({"images": {"descriptors": {"brightness": [0.4] * 20,
                                                                 "resolved_side": [256.0] * 20}}})
    rule = RULES["night_time"]
    assert cal.centre["night_time"] == pytest.approx(rule.default_high(None) + rule.margin)
    scores = cal.scores({"brightness": 0.01, "resolved_side": 16.0})
    assert "night_time" not in scores and scores["low_resolution"] > 0.5


def test_a_photo_at_the_embedding_centre_is_not_novel_rather_than_an_error():
    cal = Calibration.from_reference({"embedding": {"p99": 2.0}})
    assert cal.scores({"embedding_distance": 0.0})["novelty"] == 0.0


def test_a_photo_just_short_of_the_calibrated_point_is_not_flagged():
    """Flags were raised on the score rounded for display: a statistic just short of where the score
    crosses the threshold rounded up onto it and was flagged, where the margins' benchmark (a statistic at or
    beyond the reference quantile plus the margin) counts it as not flagged."""
    cal = Calibration(centre={"novelty": 0.0}, width={"novelty": 0.08})
    just_short = {"embedding_distance": math.exp(-1e-6)}  # ln: a millionth below the centre
    assert cal.scores(just_short)["novelty"] == 0.5  # shown rounded, as before
    assert cal.assess(just_short, 0.5).flags == []
    assert cal.assess({"embedding_distance": 1.0}, 0.5).flags == ["novelty"]

"""Verdict statistics, pure: per-model precision, no database (its bounds: tests/test_binomial.py)."""

from __future__ import annotations

import pytest

from monitoring.review.stats import UNUSABLE, Reviewed, by_region, gate_metrics, summarize
from roomsight.binomial import wilson


def R(truth: str, champion: str | None, candidate: str | None, region: str = "eu-west") -> Reviewed:
    return Reviewed(truth, champion, candidate, region, disagreement=candidate is not None and champion != candidate)


def test_precision_per_model_and_class_skips_abstentions_and_unusable() -> None:
    items = [R("kitchen", "kitchen", "kitchen"), R("kitchen", "bedroom", "kitchen"), R("bedroom", "bedroom", "kitchen"),
             R("bedroom", "unsure", "bedroom"), R(UNUSABLE, "kitchen", "bedroom"), R("view", "view", None)]
    s = summarize(items)
    assert s.reviewed == 6 and s.unusable == 1
    assert (s.champion.overall.correct, s.champion.overall.n) == (3, 4)  # "unsure" and unusable excluded
    assert (s.candidate.overall.correct, s.candidate.overall.n) == (3, 4)  # no candidate answer for "view"
    assert s.champion.per_class["bedroom"].value == 0.5
    assert s.candidate.per_class["kitchen"].value == pytest.approx(2 / 3)
    # Disagreements with a usable truth: candidate alone right twice (kitchen, unsure->bedroom), champion once.
    assert (s.candidate_right, s.champion_right, s.both_wrong) == (2, 1, 0)
    assert s.candidate_win_rate == pytest.approx(2 / 3)
    worse = summarize(items + [R("bathroom", "kitchen", "bedroom")])  # a disagreement neither got right
    assert (worse.candidate_right, worse.champion_right, worse.both_wrong) == (2, 1, 1)


def test_gate_metrics_and_regions() -> None:
    items = [R("kitchen", "kitchen", "kitchen", "eu-west")] * 30 + [R("kitchen", "bedroom", "kitchen", "us-east")] * 10
    g = gate_metrics(summarize(items))
    assert g["reviewed"] == 40
    assert g["candidate_precision_lower"] == pytest.approx(wilson(40, 40)[0])
    assert g["champion_precision_lower"] == pytest.approx(wilson(30, 40)[0])
    assert g["precision_margin"] == pytest.approx(g["candidate_precision_lower"] - g["champion_precision_lower"])
    assert g["min_class_precision"] == 1.0 and g["candidate_win_rate"] == 1.0
    regions = by_region(items)
    assert set(regions) == {"eu-west", "us-east"} and regions["us-east"].champion.overall.value == 0.0
    empty = gate_metrics(summarize([]))
    assert empty["reviewed"] == 0 and empty["precision_margin"] is None and empty["candidate_win_rate"] is None

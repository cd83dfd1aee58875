"""Review verdicts gate a promotion through the ordinary plan format: the control plane refuses with
the numbers, passes once reviewers agree with the candidate, and MLflow records the review metrics.
Real MLflow registry and SQLite; no Ray."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitoring.review import queue
from monitoring.review.photos import PhotoStore
from roomsight import registry
from roomsight.db import engine_for
from rollout.control import ControlPlane
from rollout.plan import load_plan
from roomsight.errors import GatesFailed
from roomsight.rollout_state import Stage
from tests.test_review_queue import CLASSES, log_rows

REVIEW_PLAN = """
name: review-gated
regions: [eu-west, us-east, ap-south]
limited: {regions: [eu-west], percent: 100}
gates:
  limited:
    - {metric: reviewed, min: 10}
    - {metric: precision_margin, min: 0}
    - {metric: min_class_precision, min: 0.5}
"""


def review_all(engine, truth: str) -> None:
    while (c := queue.claim_next(engine, "ann", 60)) is not None:
        queue.submit(engine, "ann", c.item_id, c.claim_id, truth, CLASSES)


def test_promotion_waits_for_review_verdicts(settings, tmp_path: Path) -> None:
    plan_path = tmp_path / "plan.yaml"
    plan_path.write_text(REVIEW_PLAN)
    cp = ControlPlane(settings, load_plan(plan_path), actor="alice")
    rid = cp.start("models:/roomtype/2", reason="test").after.rollout_id
    engine = engine_for(settings.db_url)
    store = PhotoStore.for_settings(settings)

    with pytest.raises(GatesFailed) as info:
        cp.promote("limited")
    assert "reviewed >= 10: 0" in str(info.value) and "precision_margin >= 0: no evidence" in str(info.value)

    # Reviewers side with the champion, but 12 answers each are too few to judge a precision from.
    log_rows(engine, store, [{"champion": "kitchen", "candidate": "bedroom"}] * 12, rollout_id=rid)
    queue.fill(engine, settings, rid)
    review_all(engine, "kitchen")
    status = {g.name.split(" ")[0]: g for g in cp.status().exit}
    assert status["reviewed"].passed and status["reviewed"].value == 12
    assert status["precision_margin"].outcome == "inconclusive" and status["precision_margin"].value < 0
    assert status["min_class_precision"].outcome == "inconclusive"
    with pytest.raises(GatesFailed, match=r"INCONCLUSIVE precision_margin >= 0: -\S+ over 12 candidate_reviewed"):
        cp.promote("limited")

    # From 20 answers on, the candidate's precision bound is judged, below the champion's.
    log_rows(engine, store, [{"champion": "kitchen", "candidate": "bedroom"}] * 10, rollout_id=rid)
    queue.fill(engine, settings, rid)
    review_all(engine, "kitchen")
    with pytest.raises(GatesFailed, match=r"FAIL min_class_precision >= 0.5: 0"):
        cp.promote("limited")

    # Later disagreements go the candidate's way, enough to lift its lower bound above the champion's.
    log_rows(engine, store, [{"champion": "bathroom", "candidate": "bedroom"}] * 40, rollout_id=rid)
    queue.fill(engine, settings, rid)
    review_all(engine, "bedroom")
    promoted = cp.promote("limited")
    assert promoted.after.stage is Stage.LIMITED and all(g.passed for g in promoted.gates)
    run = registry.client().get_run(cp.history()[0]["run_id"])
    assert run.data.metrics["reviewed"] == 62
    assert run.data.metrics["precision_margin"] > 0 and run.data.metrics["candidate_win_rate"] == pytest.approx(40 / 62)

"""The drift evidence the gates read (monitoring.drift_checks.evidence) over an empty or fresh log, without
a model or MLflow."""

from __future__ import annotations

import time

from sqlalchemy import insert

from monitoring import drift_checks
from roomsight.db import engine_for
from roomsight.tables import drift_checks as checks
from tests.conftest import settings_for


def test_no_requests_and_no_check_is_no_evidence_not_a_clean_bill(tmp_path):
    # An ood_share of 0 over no requests would pass an "at most" gate on nothing.
    engine = engine_for(f"sqlite:///{tmp_path / 'log.db'}")
    ev = drift_checks.evidence(engine, settings_for(tmp_path / "home"), "r")
    assert ev == {"ood_share": None, "drift_alarm": None, "drifted_share": None, "drift_age_s": None}


def test_a_check_stamped_a_little_ahead_of_this_clock_is_zero_seconds_old(tmp_path):
    # Another host's clock may run ahead: its check is fresh, not of negative age.
    engine = engine_for(f"sqlite:///{tmp_path / 'log.db'}")
    with engine.begin() as conn:
        conn.execute(insert(checks).values(rollout_id="r", created_at=time.time() + 30, window_until=time.time(),
                                           n_window=100, n_sample=100, alarm=True, drifted_share=0.4,
                                           ood_share=0.1, summary={}))
    ev = drift_checks.evidence(engine, settings_for(tmp_path / "home"), "r")
    assert ev["drift_age_s"] == 0.0 and ev["drift_alarm"] == 1.0 and ev["drifted_share"] == 0.4


def test_a_check_made_before_the_step_began_is_no_evidence_of_it_and_status_says_why(tmp_path):
    # The step began with a promotion: a person's, past the alarm they were shown, waits for a check of its own.
    engine = engine_for(f"sqlite:///{tmp_path / 'log.db'}")
    settings = settings_for(tmp_path / "home")
    made = time.time() - 60
    with engine.begin() as conn:
        conn.execute(insert(checks).values(rollout_id="r", created_at=made, window_since=made - 30, window_until=made,
                                           n_window=100, n_sample=100, alarm=True, drifted_share=0.4, ood_share=0.1,
                                           summary={}))
    during = drift_checks.evidence(engine, settings, "r", since=made - 30)
    assert during["drift_alarm"] == 1.0 and during["drifted_share"] == 0.4
    before = drift_checks.evidence(engine, settings, "r", since=made + 1)
    assert before["drift_alarm"] is None and before["drifted_share"] is None and before["drift_age_s"] >= 59
    assert "read traffic from before the current step began" in drift_checks.describe(before, settings)


def test_a_check_of_traffic_read_before_the_step_began_is_no_evidence_of_it_though_it_finished_after(tmp_path):
    """An Evidently comparison takes seconds: a check that read its window before a person's promotion and
    finished after it is the alarm they decided on, made again, and paused the rollout over them. So is one that
    read the rollout's state before the promotion landed, its window the step before's though it ends after."""
    engine = engine_for(f"sqlite:///{tmp_path / 'log.db'}")
    settings = settings_for(tmp_path / "home")
    promoted = time.time() - 60
    for until in (promoted - 2, promoted + 1):
        with engine.begin() as conn:
            conn.execute(insert(checks).values(rollout_id="r", created_at=promoted + 3, window_since=promoted - 300,
                                               window_until=until, n_window=100, n_sample=100, alarm=True,
                                               drifted_share=0.4, ood_share=0.1, summary={}))
        ev = drift_checks.evidence(engine, settings, "r", since=promoted)
        assert ev["drift_alarm"] is None and ev["drifted_share"] is None
        assert "read traffic from before the current step began" in drift_checks.describe(ev, settings)


def test_the_check_that_read_the_newest_traffic_is_the_evidence_not_the_last_to_finish(tmp_path):
    """A `rollout drift check` started before the background check and finished after it read older traffic:
    read as the latest, its all-clear hid the newer check's alarm until the next check."""
    engine = engine_for(f"sqlite:///{tmp_path / 'log.db'}")
    now = time.time()
    with engine.begin() as conn:
        for until, made, alarm in ((now - 20, now - 5, False), (now - 15, now - 10, True)):
            conn.execute(insert(checks).values(rollout_id="r", created_at=made, window_until=until, n_window=100,
                                               n_sample=100, alarm=alarm, drifted_share=0.4 if alarm else 0.0,
                                               ood_share=0.1, summary={}))
    ev = drift_checks.evidence(engine, settings_for(tmp_path / "home"), "r")
    assert ev["drift_alarm"] == 1.0 and ev["drifted_share"] == 0.4 and ev["drift_age_s"] >= 10
    assert drift_checks.evidence(engine, settings_for(tmp_path / "home"), "r", as_of=now - 7)["drift_alarm"] == 1.0
    assert drift_checks.evidence(engine, settings_for(tmp_path / "home"), "r", as_of=now - 12)["drift_alarm"] is None


"""The guard and a person's decision on drift: a step begins with a promotion, and a drift check made
before it (the alarm a person promoted past) does not make the guard act again; a check of the step's own
does. Over drift check rows in SQLite, without a model, MLflow or Ray."""

from __future__ import annotations

import time

from sqlalchemy import insert

from benchmarks import synthlog
from roomsight.db import engine_for
from roomsight.registry import ModelRef
from roomsight.rollout_state import RoutingState
from roomsight.tables import drift_checks as checks
from rollout import assess, stages
from rollout.guard import decide
from rollout.plan import MIN_BUDGET_CALLS, Gate, Plan
from tests.conftest import settings_for
from tests.plans import open_plan

ALARM = Gate(metric="drift_alarm", max=0, on_fail="pause")
DRIFTED = Gate(metric="drifted_share", max=0.3, on_fail="rollback")


def drift_check(engine, at: float, alarm: bool, drifted_share: float, since: float) -> None:  # noqa: ANN001
    """A check made at `at` of the traffic logged since `since` (the start of the step it read)."""
    with engine.begin() as conn:
        conn.execute(insert(checks).values(rollout_id="r", created_at=at, window_since=since, window_until=at,
                                           n_window=100, n_sample=100, alarm=alarm, drifted_share=drifted_share,
                                           ood_share=0.1, summary={}))


def watching_drift() -> Plan:
    """Drift alarms pause wherever the candidate answers users; the gradual step rolls back on drifted columns."""
    plan = open_plan(watch=(ALARM,))
    steps = list(plan.steps)
    steps[2] = steps[2].model_copy(update={"watch": (DRIFTED,)})
    return plan.model_copy(update={"steps": tuple(steps)})


def tick(plan: Plan, state: RoutingState, tmp_path):  # noqa: ANN001, ANN201
    """What the guard's tick decides: the watched conditions judged on only the evidence they name."""
    settings = settings_for(tmp_path)
    judged = assess.judge(plan, state, engine_for(settings.db_url), settings, all_evidence=False, exit_steps=range(0))
    return decide(plan, state, judged.watch, None, time.time()), {r.name: r for r in judged.watch}


def test_a_person_who_promotes_past_a_drift_alarm_is_not_overridden_by_it(tmp_path):
    plan = watching_drift()
    engine = engine_for(settings_for(tmp_path).db_url)
    now = time.time()
    limited = stages.advance(stages.start(RoutingState(champion=ModelRef("m", "1")), ModelRef("m", "2"), "r", plan,
                                          now - 600), plan, 1, now - 300)
    drift_check(engine, now - 120, alarm=True, drifted_share=0.5, since=limited.since)
    paused, _ = tick(plan, limited, tmp_path)
    assert paused is not None and paused.kind == "pause", "the alarm made during the step pauses it"
    # A person looks and promotes: the step begins now, and the check they saw predates it.
    gradual = stages.advance(limited.evolve(held=paused.reason), plan, 2, now - 10)
    action, watched = tick(plan, gradual, tmp_path)
    assert action is None, "the alarm the person promoted past acted again"
    assert watched[ALARM.name].outcome == watched[DRIFTED.name].outcome == "inconclusive"
    # A check of the step's own acts as any does: the plan-wide pause, the step's rollback over it.
    drift_check(engine, now - 5, alarm=True, drifted_share=0.5, since=gradual.since)
    action, _ = tick(plan, gradual, tmp_path)
    assert action is not None and action.kind == "rollback"
    assert {r.name for r in action.conditions} == {ALARM.name, DRIFTED.name}


def test_a_clean_check_made_before_the_step_is_no_all_clear_for_it(tmp_path):
    plan = watching_drift()
    engine = engine_for(settings_for(tmp_path).db_url)
    now = time.time()
    gradual = stages.advance(stages.start(RoutingState(champion=ModelRef("m", "1")), ModelRef("m", "2"), "r", plan,
                                          now - 600), plan, 2, now - 10)
    drift_check(engine, now - 60, alarm=False, drifted_share=0.0, since=now - 600)
    _, watched = tick(plan, gradual, tmp_path)
    assert watched[ALARM.name].outcome == "inconclusive"


def in_limited(tmp_path, gate: Gate):  # noqa: ANN201
    """A plan watching `gate`, the log's engine, and a rollout that entered limited 300 s ago; with the time."""
    plan = open_plan(watch=(gate,))
    engine = engine_for(settings_for(tmp_path).db_url)
    now = time.time()
    limited = stages.advance(stages.start(RoutingState(champion=ModelRef("m", "1")), ModelRef("m", "2"), "r", plan,
                                          now - 600), plan, 1, now - 300)
    return plan, engine, limited, now


def test_an_out_of_domain_share_over_a_handful_of_requests_is_not_acted_on(tmp_path):
    """Its count is the log's, the share the drift provider's: the tick asked for the share alone, and one flagged
    photo of the first three read as a share of 1 and paused the rollout."""
    ood = Gate(metric="ood_share", max=0.3, on_fail="pause")
    plan, engine, limited, now = in_limited(tmp_path, ood)

    def flagged(n: int, seed: int) -> list[dict]:
        return [dict(r, ood={"flags": ["night_time"], "scores": {}}) for r in synthlog.rows(n, "r", now - 200, seed=seed)]

    synthlog.insert(engine, flagged(3, seed=1))
    action, watched = tick(plan, limited, tmp_path)
    assert action is None and watched[ood.name].outcome == "inconclusive", watched[ood.name].describe()
    synthlog.insert(engine, flagged(20, seed=2))
    action, watched = tick(plan, limited, tmp_path)
    assert action is not None and action.kind == "pause", watched[ood.name].describe()


def test_a_person_who_promotes_past_an_out_of_domain_pause_is_judged_on_the_steps_own_requests(tmp_path):
    """`ood_share` counts the whole rollout: after a person promoted past a pause on it, the earlier step's flagged
    photos paused the rollout again at the next tick. `step_ood_share` reads the requests since the step began."""
    step_ood = Gate(metric="step_ood_share", max=0.3, on_fail="pause")
    plan, engine, limited, now = in_limited(tmp_path, step_ood)

    def logged(n: int, t0: float, flags: list[str], seed: int) -> None:
        # No candidate errors: the budget, watched beside the share, would decide the tick on a few of them.
        synthlog.insert(engine, [dict(r, ood={"flags": flags, "scores": {}}, candidate_error=None)
                                 for r in synthlog.rows(n, "r", t0, seed=seed)])

    logged(MIN_BUDGET_CALLS + 10, now - 290, ["night_time"], seed=1)
    paused, _ = tick(plan, limited, tmp_path)
    assert paused is not None and paused.kind == "pause", "the step's own flagged photos pause it"
    gradual = stages.advance(limited.evolve(held=paused.reason), plan, 2, now - 60)
    logged(MIN_BUDGET_CALLS - 1, now - 50, [], seed=2)
    action, watched = tick(plan, gradual, tmp_path)
    assert action is None and watched[step_ood.name].outcome == "inconclusive", watched[step_ood.name].describe()
    logged(1, now - 30, [], seed=3)
    action, watched = tick(plan, gradual, tmp_path)
    assert action is None and watched[step_ood.name].outcome == "pass", watched[step_ood.name].describe()
    whole, _ = tick(open_plan(watch=(Gate(metric="ood_share", max=0.3, on_fail="pause"),)), gradual, tmp_path)
    assert whole is not None and whole.kind == "pause", "the rollout's share still holds the earlier step's photos"


def ood_check(settings, engine, window):  # noqa: ANN001, ANN201
    """drift.check's out-of-domain alarm over the window it is given, without Evidently: which traffic a check
    reads is the question here, not how it compares."""
    from monitoring.drift import DriftResult, window_frame
    from roomsight.errors import DriftError

    rows = window_frame(engine, window, None).rows
    if len(rows) < settings.monitoring.min_window:
        raise DriftError("too few")
    share = float((rows["out_of_domain"] == "yes").mean())
    return DriftResult(window=window.describe(), reference_model="m", n_reference=0, n_current=len(rows), columns={},
                       drifted_share=0.0, ood_share=share, reference_ood_share=0.0, flag_counts={}, held_counts={},
                       predicted_share={}, alarm=share >= settings.monitoring.ood_share_alarm), None


def test_the_first_check_after_a_promotion_reads_the_new_steps_traffic_not_the_alarm_promoted_past(tmp_path, monkeypatch):
    """The check compares the rollout's latest predictions: just after a person's promotion nearly all of them are
    the previous step's, whose alarm they decided on, and that check, made after the step began, paused it again."""
    from monitoring import drift
    from monitoring.drift_checks import run_check
    from roomsight.rollout_state import write_state

    plan = watching_drift()
    settings = settings_for(tmp_path)
    engine = engine_for(settings.db_url)
    now = time.time()
    limited = stages.advance(stages.start(RoutingState(champion=ModelRef("m", "1")), ModelRef("m", "2"), "r", plan,
                                          now - 600), plan, 1, now - 300)

    def logged(n: int, t0: float, flags: list[str], seed: int) -> None:
        synthlog.insert(engine, [dict(r, ood={"flags": flags, "scores": {}}) for r in synthlog.rows(n, "r", t0, seed=seed)])

    logged(200, now - 290, ["night_time"], seed=1)  # the limited step's night photos: the alarm the person saw
    gradual = stages.advance(limited.evolve(held="drift"), plan, 2, now - 60)
    write_state(engine, gradual, None)
    logged(60, now - 50, [], seed=2)  # ordinary photos since the promotion
    monkeypatch.setattr(drift, "check", ood_check)
    run_check(settings, engine, "r")
    action, watched = tick(plan, gradual, tmp_path)
    assert action is None, watched[ALARM.name].describe()
    assert watched[ALARM.name].outcome == "pass"

"""Drift checks kept for the control plane (monitoring.drift_checks): the gate evidence reads the latest
check and its age, treats an old one as no evidence, and sees at a past moment (`as_of`) only the checks
made by then; the background checker records checks of the rollout in progress; `rollout drift check`
makes one and `rollout status` shows it with its age. Over a real SQLite log and a real registered model."""

from __future__ import annotations

import time

import pytest

from typer.testing import CliRunner

from monitoring.shifts import shift
from monitoring.drift_checks import DriftChecker, evidence, latest, run_check
from tests.test_drift import log_traffic, scenes


def night_traffic(settings, rollout_id: str, n: int = 60):  # noqa: ANN001, ANN201
    from roomsight import registry
    from roomsight.db import engine_for

    engine = engine_for(settings.db_url)
    pack = registry.load_model(registry.ModelRef("roomtype", "1"))
    log_traffic(engine, pack, [shift(im, "night_street", 0.7, (0, i)) if i % 3 == 0 else im for i, im in enumerate(scenes(n, seed=2000))],
                "us-east", rollout_id=rollout_id, held=True)
    return engine


def test_evidence_is_the_latest_check_with_its_age_and_none_once_too_old(settings):
    engine = night_traffic(settings, "r-night")
    run_check(settings, engine, "r-night")
    made = latest(engine, "r-night").created_at
    max_age = settings.monitoring.drift_max_age_s
    assert evidence(engine, settings, "r-night", as_of=made - 1)["drift_alarm"] is None, "the check did not exist yet"
    fresh = evidence(engine, settings, "r-night", as_of=made + 10)
    assert fresh["drift_alarm"] == 1.0 and fresh["drift_age_s"] == 10 and fresh["drifted_share"] > 0
    stale = evidence(engine, settings, "r-night", as_of=made + max_age + 1)
    assert stale["drift_alarm"] is None and stale["drifted_share"] is None and stale["drift_age_s"] == max_age + 1
    assert stale["ood_share"] == fresh["ood_share"] >= 0.3, "the OOD share is counted, not checked: never stale"


def test_a_check_compares_the_latest_predictions_only(settings):
    """Night photos early in a rollout, ordinary ones since: a check over the latest 60 sees the rollout as it
    is now, one over the whole of it still alarms."""
    from roomsight import registry

    engine = night_traffic(settings, "r-recovered")
    log_traffic(engine, registry.load_model(registry.ModelRef("roomtype", "1")), scenes(60, seed=3000), "us-east",
                rollout_id="r-recovered")
    assert run_check(settings, engine, "r-recovered").alarm, "the whole rollout, night photos included"
    recent = settings.model_copy(update={"monitoring": settings.monitoring.model_copy(update={"drift_check_window": 60})})
    result = run_check(recent, engine, "r-recovered")
    assert not result.alarm and result.ood_share < 0.1 and latest(engine, "r-recovered").n_window == 60


def test_a_checker_whose_clock_runs_ahead_does_not_hide_newer_checks(settings, monkeypatch):
    """A check is ordered by the traffic it read, by the log's clocks: one made by a checker an hour ahead
    (a machine whose clock drifted) is the latest only until another checker reads newer traffic."""
    from types import SimpleNamespace

    from monitoring import drift_checks
    from roomsight import registry

    engine = night_traffic(settings, "r-skew")
    recent = settings.model_copy(update={"monitoring": settings.monitoring.model_copy(update={"drift_check_window": 60})})
    monkeypatch.setattr(drift_checks, "time", SimpleNamespace(time=lambda: time.time() + 3600))
    assert run_check(recent, engine, "r-skew").alarm
    monkeypatch.undo()
    log_traffic(engine, registry.load_model(registry.ModelRef("roomtype", "1")), scenes(60, seed=3000), "us-east",
                rollout_id="r-skew")
    assert not run_check(recent, engine, "r-skew").alarm
    shown = latest(engine, "r-skew")
    assert not shown.alarm, "the newer traffic's check is the latest, though the other's clock says later"
    assert shown.window_until <= time.time()


def test_the_background_checker_checks_the_rollout_in_progress(settings):
    engine = night_traffic(settings, "r-night")
    current: list[str | None] = [None]
    checker = DriftChecker(settings, engine, lambda: current[0])
    assert checker.tick() is None and latest(engine, "r-night") is None
    current[0] = "r-night"
    result = checker.tick()
    assert result is not None and result.alarm and latest(engine, "r-night").n_window == 60
    current[0] = "r-unknown"
    assert checker.tick() is None, "too little traffic to compare: skipped, not raised"


def test_the_background_checker_keeps_its_period_from_the_start_of_each_check(settings, monkeypatch):
    """Waited in full after each check, checks fell a period and a check's run apart: with drift_max_age_s at
    the period, as the settings allow, the drift evidence lapsed for a check's run in every period."""
    from monitoring import drift_checks

    clock, waits = [100.0], []
    every = settings.monitoring.drift_check_every_s
    monkeypatch.setattr(drift_checks.time, "monotonic", lambda: clock[0])
    checker = DriftChecker(settings, None, lambda: None)

    def slow_tick() -> None:
        clock[0] += 0.25 * every
        if len(waits) == 1:
            raise RuntimeError("a database hiccup")  # a failed check keeps the period too

    def wait(timeout: float) -> bool:
        waits.append(timeout)
        clock[0] += timeout
        if len(waits) == 2:
            checker.stop()
        return checker._stop.is_set()

    monkeypatch.setattr(checker, "tick", slow_tick)
    monkeypatch.setattr(checker._stop, "wait", wait)
    checker._run()
    assert waits == [pytest.approx(0.75 * every)] * 2


def test_cli_drift_check_then_status_shows_the_check_and_its_age(settings):
    from shell.cli import app
    from rollout.control import ControlPlane
    from rollout.plan import load_plan

    rollout_id = ControlPlane(settings, load_plan(), actor="t").start("models:/roomtype/2").after.rollout_id
    night_traffic(settings, rollout_id)
    env = {"ROOMSIGHT_HOME": str(settings.home)}
    runner = CliRunner()
    before = runner.invoke(app, ["status"], env=env)
    assert before.exit_code == 0, before.output
    assert "drift: no check yet" in " ".join(before.output.split())
    checked = runner.invoke(app, ["drift", "check"], env=env)
    assert checked.exit_code == 0, checked.output
    out = " ".join(checked.output.split())
    assert f"rollout {rollout_id}: check recorded" in out and "all 60 predictions in the window" in out
    time.sleep(1.1)
    status = " ".join(runner.invoke(app, ["status"], env=env).output.split())
    assert "drift: ALARM" in status and "checked 1 s ago" in status
    bad = runner.invoke(app, ["drift", "check", "--rollout", "nope"], env=env)
    assert bad.exit_code == 1 and "--rollout nope: no such rollout" in bad.output


def test_cli_drift_check_on_too_little_traffic_names_no_option_it_lacks(settings):
    """`rollout drift check` on a quiet step said "widen the window with --since", an option only `drift report` has."""
    from shell.cli import app
    from rollout.control import ControlPlane
    from rollout.plan import load_plan

    ControlPlane(settings, load_plan(), actor="t").start("models:/roomtype/2")
    result = CliRunner().invoke(app, ["drift", "check"], env={"ROOMSIGHT_HOME": str(settings.home)})
    out = " ".join(result.output.split())
    assert result.exit_code == 1 and "only 0 logged prediction(s)" in out, out
    assert "--since" not in out and "check again once the step has logged more" in out

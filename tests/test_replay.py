"""`rollout plan replay`: a plan run over a logged rollout reproduces what the guard did live, and another
plan says what it would have done instead. Real MLflow record, real SQLite log; no Ray."""

from __future__ import annotations

from typer.testing import CliRunner

from rollout.control import ControlPlane
from rollout.guard import Guard
from rollout.plan import Gate
from rollout.replay import replay
from tests.plans import open_plan
from tests.test_guard import candidate_calls

WATCH = (Gate(metric="candidate_error_rate", max=0.02, on_fail="pause"),)


def test_replay_reproduces_the_guards_pause_and_another_plan_differs(settings):
    plan = open_plan(watch=WATCH)
    cp = ControlPlane(settings, plan, actor="olga")
    rid = cp.start("models:/roomtype/2").after.rollout_id
    cp.promote("limited")
    candidate_calls(settings, rid, 40, failing=0)
    guard = Guard(cp.with_actor("guard"))
    assert guard.tick() is None
    candidate_calls(settings, rid, 20, failing=2)  # 2 of 60: 3.3%, over the watched 2%
    assert guard.tick().action == "auto-pause"

    same = replay(cp, rid)
    assert same.recorded and [(a, s) for _, a, s in same.recorded] == [("auto-pause", "2/7 limited eu-west 100%")]
    assert same.matches, "\n".join(f"{l.time:.3f} {l.text}" for l in same.lines)
    text = "\n".join(line.text for line in same.lines)
    assert "promote to step 2/7 limited eu-west 100% (recorded, by olga): its conditions pass" in text
    assert "FAIL candidate_error_rate <= 0.02" in text and "the plan would pause at step 2/7 limited" in text

    lenient = ControlPlane(settings, open_plan(), actor="olga")
    other = replay(lenient, rid)
    assert other.decisions == [] and not other.matches

    strict = ControlPlane(settings, open_plan(watch=(Gate(metric="candidate_error_rate", max=0.0),)), actor="olga")
    rolled = replay(strict, rid)
    assert [a for _, a, _ in rolled.decisions] == ["auto-rollback"]


def test_replay_through_the_cli(settings, home):
    from shell.cli import app

    cp = ControlPlane(settings, open_plan(), actor="olga")
    rid = cp.start("models:/roomtype/2").after.rollout_id
    candidate_calls(settings, rid, 5, failing=0)
    cp.rollback("changed my mind")
    result = CliRunner().invoke(app, ["plan", "replay", "--rollout", rid[:8]], env={"ROOMSIGHT_HOME": str(home)})
    assert result.exit_code == 0, result.output
    assert f"replay of rollout {rid}" in result.output and "rollback (recorded, by olga): changed my mind" in result.output
    assert "the replay reproduces them" in result.output
    result = CliRunner().invoke(app, ["plan", "replay", "--rollout", "nope"], env={"ROOMSIGHT_HOME": str(home)})
    assert result.exit_code == 1 and "no such rollout" in result.output


def test_replay_through_the_cli_does_not_judge_the_guard_on_actions_mlflow_has_not_taken(settings, home, monkeypatch):
    """The guard's pause goes ahead while MLflow is down and reaches MLflow later: until then the replay said
    the guard took no action live and that the plan, which would pause, differed from it."""
    from rollout import records
    from shell.cli import app

    plan = open_plan(watch=WATCH)
    cp = ControlPlane(settings, plan, actor="olga")
    rid = cp.start("models:/roomtype/2").after.rollout_id
    cp.promote("limited")
    candidate_calls(settings, rid, 40, failing=0)
    candidate_calls(settings, rid, 20, failing=2)
    monkeypatch.setattr(records, "record", lambda *_a, **_k: (_ for _ in ()).throw(ConnectionError("MLflow is down")))
    assert Guard(cp.with_actor("guard")).tick().action == "auto-pause"
    monkeypatch.undo()
    result = CliRunner().invoke(app, ["plan", "replay", "--rollout", rid[:8]], env={"ROOMSIGHT_HOME": str(home)})
    assert result.exit_code == 0, result.output
    assert "differs" not in result.output and "cannot be checked against them yet" in result.output
    assert "1 rollout change(s)" in result.output
    assert cp.catch_up() == 1
    assert replay(cp, rid).matches


def test_replay_follows_a_recorded_promotion_with_its_own_share(settings):
    """A person's --percent is part of the promotion the replay follows: replayed at the plan's own share, the
    same plan judged another step than the guard did live, and said it would not reproduce the guard."""
    plan = open_plan(watch=WATCH)
    cp = ControlPlane(settings, plan, actor="olga")
    rid = cp.start("models:/roomtype/2").after.rollout_id
    cp.promote("limited")
    assert cp.promote("gradual", percent=50).to_step == "3/7 gradual 50%"
    # The errors after enough calls that no moment the replay reads holds a budget-breaking share of them.
    candidate_calls(settings, rid, 40, failing=0)
    candidate_calls(settings, rid, 20, failing=2)
    assert Guard(cp.with_actor("guard")).tick().action == "auto-pause"

    same = replay(cp, rid)
    assert [(a, s) for _, a, s in same.recorded] == [("auto-pause", "3/7 gradual 50%")]
    assert same.matches, "\n".join(f"{l.time:.3f} {l.text}" for l in same.lines)
    assert "promote to step 3/7 gradual 50% (recorded, by olga)" in "\n".join(line.text for line in same.lines)


def test_replay_judges_the_exits_of_the_steps_a_promotion_skips(settings):
    """After a --percent override the next promotion skips the steps the share has passed and must pass their
    exit conditions too, as the guard judges them; the replay judged the current step's alone and said the
    plan would promote past a skipped step whose condition held it live."""
    import time
    import uuid

    from roomsight.db import engine_for
    from rollout.plan import AutoAdvance
    from serving.predlog import LogWriter, PredictionRecord
    from tests.plans import with_exit

    plan = with_exit(open_plan(), 3, (Gate(metric="candidate_served", min=10_000),))  # gradual 25%: held
    steps = list(plan.steps)
    steps[2] = steps[2].model_copy(update={"auto_advance": AutoAdvance(after="60s")})
    plan = plan.model_copy(update={"steps": tuple(steps)})
    cp = ControlPlane(settings, plan, actor="olga")
    rid = cp.start("models:/roomtype/2").after.rollout_id
    cp.promote("limited")
    assert cp.promote("gradual", percent=30).to_step == "3/7 gradual 30%"  # passes 25%
    assert Guard(cp.with_actor("guard")).tick() is None
    w = LogWriter(engine_for(settings.db_url), flush_interval_s=0.05)
    w.submit(PredictionRecord(  # the rollout's traffic runs on past the step's 60 s
        request_id=str(uuid.uuid4()), ts=time.time() + 300, rollout_id=rid, stage="gradual", listing_id="L",
        region="eu-west", served_by="candidate", label="kitchen", score=0.9, latency_ms=10, candidate_version="2",
        candidate_label="kitchen", candidate_ms=8.0))
    assert w.flush()
    w.close()

    replayed = replay(cp, rid)
    assert replayed.decisions == [], "\n".join(f"{l.time:.3f} {l.text}" for l in replayed.lines)
    assert replayed.matches


def test_replay_says_the_conditions_of_a_step_a_person_promoted_to(settings):
    """The replay says a condition when its outcome changes on the current step; after a person's recorded
    promotion it went on comparing with the step before, so a condition that read the same there was never
    said on the new step."""
    cp = ControlPlane(settings, open_plan(), actor="olga")
    rid = cp.start("models:/roomtype/2").after.rollout_id
    cp.promote("limited")
    cp.promote("gradual")
    cp.rollback("enough")
    text = "\n".join(line.text for line in replay(cp, rid).lines)
    assert "step 2/7 limited eu-west 100%, watched: INCONCLUSIVE budget" in text
    assert "step 3/7 gradual 10%, watched: INCONCLUSIVE budget" in text, text

"""The replay begins a person's recorded step when the rollout's state says it began, as the guard read it live:
a promotion's state is stamped before its conditions are judged and MLflow is reached, its event after.
Over drift check rows in SQLite and a recorded history, without a model, MLflow or Ray."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from roomsight.db import engine_for
from roomsight.registry import ModelRef
from roomsight.rollout_state import RoutingState
from rollout import stages
from rollout.replay import replay
from tests.conftest import settings_for
from tests.test_guard_drift import ALARM, drift_check, watching_drift


def event(at: float, action: str, state: RoutingState, actor: str, from_step: str | None) -> dict[str, Any]:
    return {"time": at, "action": action, "state": state.to_dict(), "actor": actor, "from_step": from_step,
            "to": state.stage.value, "forced": False, "reason": ""}


def test_a_drift_alarm_made_while_a_promotion_was_recorded_is_evidence_of_the_step_it_began(tmp_path):
    plan = watching_drift()
    settings = settings_for(tmp_path)
    engine = engine_for(settings.db_url)
    now = time.time()
    started = stages.start(RoutingState(champion=ModelRef("m", "1")), ModelRef("m", "2"), "r", plan, now - 600)
    # The person's promotion began the step at now - 300; judging it and reaching MLflow took 2 s more.
    limited = stages.advance(started, plan, 1, now - 300)
    drift_check(engine, now - 299, alarm=True, drifted_share=0.5, since=limited.since)
    label = plan.step_label(1)
    history = [event(now - 600, "start", started, "olga", None),
               event(now - 298, "promote", limited, "olga", plan.step_label(0)),
               # Live, the check was made after the step began: the guard paused on it.
               event(now - 297, "auto-pause", limited.evolve(held="drift"), "guard", label)]
    cp = SimpleNamespace(plan=plan, engine=engine, settings=settings, history=lambda *_a, **_k: history)
    same = replay(cp, "r")  # type: ignore[arg-type]
    assert [(a, s) for _, a, s in same.decisions] == [("auto-pause", label)], \
        "\n".join(f"{line.time:.3f} {line.text}" for line in same.lines)
    assert same.matches


def test_a_drift_alarm_of_the_first_step_is_evidence_of_it_in_the_replay(tmp_path):
    """The start's state is stamped before the registry is asked, its event after; a drift check reads the traffic
    from the state's moment on, and from the event's the replay took none of the first step's checks."""
    plan = watching_drift()
    steps = list(plan.steps)
    steps[0] = steps[0].model_copy(update={"watch": (ALARM,)})
    plan = plan.model_copy(update={"steps": tuple(steps)})
    settings = settings_for(tmp_path)
    engine = engine_for(settings.db_url)
    now = time.time()
    started = stages.start(RoutingState(champion=ModelRef("m", "1")), ModelRef("m", "2"), "r", plan, now - 600)
    drift_check(engine, now - 500, alarm=True, drifted_share=0.5, since=started.since)
    label = plan.step_label(0)
    history = [event(now - 598, "start", started, "olga", None),
               event(now - 499, "auto-pause", started.evolve(held="drift"), "guard", label)]
    cp = SimpleNamespace(plan=plan, engine=engine, settings=settings, history=lambda *_a, **_k: history)
    same = replay(cp, "r")  # type: ignore[arg-type]
    assert [(a, s) for _, a, s in same.decisions] == [("auto-pause", label)], \
        "\n".join(f"{line.time:.3f} {line.text}" for line in same.lines)


def test_a_drift_alarm_of_a_step_the_guard_promoted_to_is_evidence_of_it_in_the_replay(tmp_path):
    """The replay's own promotion at a moment after the guard's stamped its state: from that moment, none of the
    step's checks, which read its traffic from the state's, was evidence of it, and the pause on one was lost."""
    from rollout.plan import AutoAdvance

    plan = watching_drift()
    steps = list(plan.steps)
    steps[0] = steps[0].model_copy(update={"auto_advance": AutoAdvance(after=10_000)})
    plan = plan.model_copy(update={"steps": tuple(steps)})
    settings = settings_for(tmp_path)
    engine = engine_for(settings.db_url)
    now = time.time()
    started = stages.start(RoutingState(champion=ModelRef("m", "1")), ModelRef("m", "2"), "r", plan, now - 20_000)
    limited = stages.advance(started, plan, 1, now - 9_999)  # the guard's tick after the wait; MLflow took 1 s more
    drift_check(engine, now - 400, alarm=True, drifted_share=0.5, since=limited.since)
    history = [event(now - 20_000, "start", started, "olga", None),
               event(now - 9_998, "auto-promote", limited, "guard", plan.step_label(0)),
               event(now - 399, "auto-pause", limited.evolve(held="drift"), "guard", plan.step_label(1))]
    cp = SimpleNamespace(plan=plan, engine=engine, settings=settings, history=lambda *_a, **_k: history)
    same = replay(cp, "r")  # type: ignore[arg-type]
    assert same.matches, "\n".join(f"{line.time:.3f} {line.text}" for line in same.lines)

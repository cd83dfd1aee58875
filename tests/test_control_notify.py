"""The control plane tells the outside world: every recorded change (start, promote, rollback, the guard's
automatic rollback) is posted to webhooks on a real local HTTP receiver and, when configured, emailed
through a real SMTP server (aiosmtpd), with the facts of its MLflow record; a failing or hung receiver
never fails the command nor holds it past `notify.wait_s`. Real MLflow registry, real SQLite; no Ray."""

from __future__ import annotations

import json
import time

from aiosmtpd.controller import Controller

from monitoring.notify import Notifier
from rollout.control import ControlPlane
from rollout.guard import Guard
from rollout.plan import load_plan
from roomsight.rollout_state import Stage
from tests.conftest import free_port, settings_for
from tests.receiver import Receiver, Reply
from tests.test_drift_mail import Inbox
from tests.test_guard import BUDGET, candidate_calls


def with_notify(settings, webhooks: list[dict], **env: str):
    return settings_for(settings.home, ROOMSIGHT_NOTIFY__WEBHOOKS=json.dumps(webhooks), **env)


def test_every_change_is_posted_and_emailed_with_its_record(settings):
    inbox, port = Inbox(), free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        with Receiver() as generic, Receiver() as slack:
            s = with_notify(settings, [{"url": generic.url}, {"url": slack.url, "kind": "slack", "events": ["rollback"]}],
                            ROOMSIGHT_NOTIFY__EMAIL_EVENTS='["promote", "rollback"]', ROOMSIGHT_SMTP__HOST="127.0.0.1",
                            ROOMSIGHT_SMTP__PORT=str(port), ROOMSIGHT_SMTP__SECURITY="none",
                            ROOMSIGHT_SMTP__RECIPIENTS='["ops@example.org"]')
            cp = ControlPlane(s, load_plan().unconditional(), actor="alice")  # notifier from settings
            rid = cp.start("models:/roomtype/2", reason="nightly candidate").after.rollout_id
            cp.promote("limited", regions=("eu-west",), percent=25, reason="shadow clean")
            cp.rollback("wrong on kitchens")
            history = {e["action"]: e for e in cp.history()}
    finally:
        smtp.stop()
    start, promote, rollback = generic.bodies()
    assert [b["event"] for b in (start, promote, rollback)] == ["start", "promote", "rollback"]
    for body in (start, promote, rollback):
        assert body["rollout_id"] == rid and body["actor"] == "alice" and body["candidate"] == "models:/roomtype/2"
        assert body["champion"] == "models:/roomtype/1" and body["mlflow_run_id"] == history[body["event"]]["run_id"]
    assert start["stage"] == {"from": "stable", "to": "shadow"} and start["reason"] == "nightly candidate"
    assert start["step"] == {"from": "stable", "to": "1/7 shadow", "index": 0}
    assert promote["stage"]["to"] == "limited" and promote["regions"] == ["eu-west"] and promote["region_percent"] == 25
    assert "requests" in promote["numbers"] and rollback["reason"] == "wrong on kitchens"
    assert rollback["stage"] == {"from": "limited", "to": "stable"}

    (only,) = slack.bodies()  # this one asked for rollbacks only
    assert "rolled back from 2/7 limited eu-west 25%" in only["text"] and "wrong on kitchens" in json.dumps(only["blocks"])

    assert [m["Subject"] for m in inbox.messages] == [
        f"[roomsight] rollout {rid[:8]}: models:/roomtype/2 promoted 1/7 shadow -> 2/7 limited eu-west 25% "
        "(25% of listings in eu-west) by alice",
        f"[roomsight] rollout {rid[:8]}: models:/roomtype/2 rolled back from 2/7 limited eu-west 25% by alice"]
    text = inbox.messages[0].get_body(("plain",)).get_content()
    assert "Reason:     shadow clean" in text and "Headline numbers" in text and history["promote"]["run_id"] in text


def test_a_failing_or_hung_receiver_never_fails_nor_holds_the_command(settings):
    """The hung receiver answers after 60 s; without the notifier's deadline, start would wait for it."""
    with Receiver(Reply(500)) as down, Receiver(Reply(200, delay_s=60)) as hung:
        s = with_notify(settings, [{"url": down.url, "name": "down", "retries": 1, "backoff_s": 0.01},
                                   {"url": hung.url, "name": "hung", "timeout_s": 30}], ROOMSIGHT_NOTIFY__WAIT_S="2")
        cp = ControlPlane(s, load_plan(), actor="bob")
        started = time.monotonic()
        out = cp.start("models:/roomtype/2")
        took = time.monotonic() - started
        assert len(down.received) == 2 and len(hung.received) == 1
    assert took < 30, took
    assert out.after.stage is Stage.SHADOW and cp.current().state.stage is Stage.SHADOW
    assert cp.history()[0]["action"] == "start"
    assert cp.notifier.failed == {"down": 1, "hung": 1} and not cp.notifier.sent


def test_the_guards_automatic_rollback_goes_through_the_injected_notifier(settings):
    with Receiver() as hook:
        notifier = Notifier.from_settings(with_notify(settings, [{"url": hook.url, "events": ["auto-rollback"]}]))
        cp = ControlPlane(settings, load_plan().unconditional(budget=BUDGET), actor="alice",
                          notifier=notifier)
        rid = cp.start("models:/roomtype/2").after.rollout_id
        cp.promote("limited")
        candidate_calls(settings, rid, 40, failing=10)
        assert Guard(cp.with_actor("guard")).tick() is not None
        (event,) = hook.bodies()
    assert event["event"] == "auto-rollback" and event["actor"] == "guard" and event["rollout_id"] == rid
    assert event["reason"].startswith("automatic: budget: candidate error rate 25.0%")
    assert event["numbers"]["candidate_error_rate"] == 0.25 and notifier.sent == {"generic webhook at 127.0.0.1": 1}


def test_a_start_after_full_is_told_under_the_new_rollout():
    """The state after full still names the finished rollout: the next start's notice must carry the new id,
    as its MLflow record does, or a webhook reader files it under the rollout that ended."""
    from roomsight.registry import ModelRef
    from roomsight.rollout_state import RoutingState
    from rollout import stages
    from rollout.control import Outcome
    from rollout.notices import rollout_event
    from tests.plans import open_plan

    plan = open_plan()
    first = RoutingState(champion=ModelRef("roomtype", "1"))
    begun = stages.start(first, ModelRef("roomtype", "2"), "first", plan, 0.0)
    full = stages.advance(begun, plan, len(plan.steps) - 1, 1.0)
    again = stages.start(full, ModelRef("roomtype", "1"), "second", plan, 2.0)
    assert full.rollout_id == "first"
    assert rollout_event(Outcome("start", full, again), "t", None).rollout_id == "second"
    assert rollout_event(Outcome("promote", begun, full), "t", None).rollout_id == "first"
    assert rollout_event(Outcome("rollback", again, stages.rollback(again)), "t", None).rollout_id == "second"


def test_a_rollback_after_full_is_told_as_the_version_it_took_off():
    """After full the state has no candidate: the version it made champion is the one a rollback takes off.
    The notice named the champion restored as the model rolled back, and no candidate at all."""
    from roomsight.registry import ModelRef
    from roomsight.rollout_state import RoutingState
    from rollout import stages
    from rollout.control import Outcome
    from rollout.notices import rollout_event
    from tests.plans import open_plan

    plan = open_plan()
    begun = stages.start(RoutingState(champion=ModelRef("roomtype", "1")), ModelRef("roomtype", "2"), "r", plan, 0.0)
    full = stages.advance(begun, plan, len(plan.steps) - 1, 1.0)
    told = rollout_event(Outcome("rollback", full, stages.rollback(full), from_step="7/7 full", to_step="stable"), "bob", "bad")
    assert (told.candidate, told.champion) == ("models:/roomtype/2", "models:/roomtype/1")
    assert told.headline() == "rollout r: models:/roomtype/2 rolled back from 7/7 full by bob"
    promoted = rollout_event(Outcome("promote", begun, full), "t", None)
    assert (promoted.candidate, promoted.champion) == ("models:/roomtype/2", "models:/roomtype/2")


def test_a_start_on_a_plan_without_shadow_says_the_step_it_started_on():
    """A plan may begin with a limited step: the notice of its start said the candidate started in shadow
    while it already answered a region's listings."""
    from roomsight.registry import ModelRef
    from roomsight.rollout_state import RoutingState
    from rollout import stages
    from rollout.control import Outcome
    from rollout.notices import rollout_event
    from rollout.plan import Plan

    # Without its conditions: the shipped ones read comparisons and verdicts, which a plan without a shadow
    # step never has, and it is refused at load for them (rollout.plan_order.check_evidence).
    d = load_plan().unconditional().model_dump(exclude_none=True, by_alias=True)
    plan = Plan.model_validate({**d, "steps": d["steps"][1:]})
    stable = RoutingState(champion=ModelRef("roomtype", "1"))
    begun = stages.start(stable, ModelRef("roomtype", "2"), "r", plan, 0.0)
    told = rollout_event(Outcome("start", stable, begun, from_step="stable", to_step="1/6 limited eu-west 100%"), "t", None)
    assert told.headline() == ("rollout r: models:/roomtype/2 started at 1/6 limited eu-west 100% "
                               "(100% of listings in eu-west) by t")
    shadow = stages.start(stable, ModelRef("roomtype", "2"), "r", load_plan(), 0.0)
    assert "started in shadow by t" in rollout_event(Outcome("start", stable, shadow, to_step="1/7 shadow"), "t", None).headline()

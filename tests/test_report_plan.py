"""The report names the steps of the plan a rollout started with, not those of the plan file as edited since:
a start records its plan's steps, and a report that has only the plan at hand says when it is another plan."""

from __future__ import annotations

import re

from roomsight import registry
from roomsight.rollout_state import RoutingState, Stage
from rollout import records
from rollout.control import ControlPlane
from rollout.plan import Plan
from rollout.plan_identity import fingerprint
from rollout.plan_text import step_line
from rollout.report import write_report
from rollout.report.build import Views
from rollout.report.inputs import from_events
from rollout.report.render import render
from tests.conftest import settings_for
from tests.plans import open_plan

LIMITED = 1  # the default plan's limited step, between shadow and gradual 10%


def _edited(plan: Plan) -> Plan:
    """`plan` with its limited step taken out: its third step is gradual 25% where the rollout's is gradual 10%."""
    steps = plan.steps[:LIMITED] + plan.steps[LIMITED + 1:]
    return plan.model_copy(update={"name": "edited", "steps": steps})


def _current(html: str) -> str:
    (line,) = re.findall(r'<li class="step step--current">(.*?)</li>', html)
    return line


def test_a_rollout_whose_plan_was_edited_is_reported_with_the_steps_it_started_with(settings, tmp_path) -> None:
    plan = open_plan()
    cp = ControlPlane(settings, plan, actor="alice")
    rid = cp.start("models:/roomtype/2", reason="new candidate").after.rollout_id
    cp.promote(reason="looks fine")
    cp.promote(reason="looks fine")  # gradual 10%, the third step
    edited = ControlPlane(settings, _edited(plan), actor="alice")
    live = write_report(edited, tmp_path / "live.html").read_text()
    edited.rollback("plan edited")
    past = write_report(edited, tmp_path / "past.html", rollout_id=rid).read_text()
    for html in (live, past):
        assert "answers 10% of listings everywhere" in _current(html)
        assert step_line(plan.steps[LIMITED]).split(": ", 1)[1] in html  # the step the edit took out
        assert "Plan <small>default</small>" in html
    # Live, the conditions to leave the step are judged by the plan at hand, and it promotes nothing: said.
    (notice,) = re.findall(r'<p class="unrecorded" id="plan-changed">(.*?)</p>', live, re.S)
    assert notice.startswith("The rollout is on step 3 of the plan it started with") and "nothing promotes it" in notice
    assert 'id="plan-changed"' not in past


def test_a_report_with_only_the_edited_plan_says_its_steps_are_todays(settings) -> None:
    """A start recorded before starts kept their plan: the report has only the plan at hand, and its
    fingerprint tells whether that is the plan the rollout started with."""
    plan = open_plan()
    state = {"champion": {"name": "roomtype", "version": "1"}, "candidate": {"name": "roomtype", "version": "2"},
             "rollout_id": "r1", "stage": "gradual", "step": 2, "regions": ["eu-west"], "region_percent": 100.0,
             "percent": 10.0, "plan_fingerprint": fingerprint(plan)}
    events = [{"time": 1.0, "action": "start", "rollout_id": "r1", "from": "stable", "to": "shadow", "actor": "ann",
               "reason": "", "forced": False, "conditions": [], "state": {**state, "stage": "shadow", "step": 0}},
              {"time": 2.0, "action": "promote", "rollout_id": "r1", "from": "limited", "to": "gradual",
               "to_step": "3/7 gradual 10%", "actor": "ann", "reason": "", "forced": False, "conditions": [],
               "state": state}]
    notice = "The plan on disk has changed since this rollout started: these are its steps today"
    assert notice in render(from_events("r1", _edited(plan), events), Views())
    assert 'id="plan-changed"' not in render(from_events("r1", plan, events), Views())
    unknown = [{**e, "state": {**e["state"], "plan_fingerprint": None}} for e in events]  # from before fingerprints
    assert 'id="plan-changed"' not in render(from_events("r1", _edited(plan), unknown), Views())


def test_an_event_recorded_by_older_code_reads_as_having_no_plan(tmp_path) -> None:
    """Its outbox row (an `Event.to_dict()` from before starts kept their plan) has no `plan` to record."""
    registry.configure(settings_for(tmp_path / "home"))
    v1, v2 = registry.ModelRef("roomtype", "1"), registry.ModelRef("roomtype", "2")
    after = RoutingState(champion=v1, stage=Stage.SHADOW, candidate=v2, rollout_id="r1", step=0)
    old = records.Event("start", RoutingState(champion=v1), after, "ann", "", False, [], {}, 1, "stable",
                        "1/7 shadow").to_dict()
    del old["plan"]
    records.record(settings_for(tmp_path / "home"), old)
    assert records.history()[0]["plan"] is None

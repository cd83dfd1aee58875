"""The rollout's record in a real local MLflow (a bare home: no models trained, no Ray): each event's
conditions read back with their numbers, for history and a past rollout's report."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest

from analysis import AnalysisResult, SegmentResult
from roomsight import registry
from roomsight.errors import RecordLost
from roomsight.rollout_state import RoutingState, Stage
from rollout import conditions, records
from rollout.plan import AnalysisRef, Budget, Gate, load_plan
from rollout.report.build import Views
from rollout.report.inputs import from_events
from rollout.report.render import kpis, render
from tests.conftest import settings_for

V1, V2 = registry.ModelRef("roomtype", "1"), registry.ModelRef("roomtype", "2")
RID = "r-records"


@pytest.fixture
def bare(tmp_path):
    s = settings_for(tmp_path / "home")
    registry.configure(s)
    return s


def _quality(segments: int = 1) -> AnalysisResult:
    cells = tuple(SegmentResult("region", f"region-{i}", "pass", 0.02, -0.01, 0.05, 40, 0.1, True, f"photos in region-{i}")
                  for i in range(segments))
    return AnalysisResult("quality", "pass", "candidate no worse", 0.02, -0.01, 0.05, 140, None, cells)


def _judged(segments: int = 1) -> list[conditions.ConditionResult]:
    values = {"compared": 183.0, "agreement": 0.907}
    return [conditions.gate(Gate(metric="compared", min=30), values), conditions.gate(Gate(metric="agreement", min=0.6), values),
            conditions.budget(Budget(), 120, 0.01, 80.0),
            conditions.analysis(AnalysisRef(analysis="quality"), _quality(segments))]


def _event(action: str, before: RoutingState, after: RoutingState, judged: list[conditions.ConditionResult],
           to_step: str) -> records.Event:
    return records.Event(action, before, after, "alice", action, False, judged, {"compared": 183.0}, 1, "1/7 shadow", to_step)


def _rolled_back(settings, judged: list[conditions.ConditionResult]) -> None:
    """start, a promotion checked on `judged`, then a rollback: a past rollout."""
    stable = RoutingState(champion=V1)
    shadow = RoutingState(champion=V1, stage=Stage.SHADOW, candidate=V2, rollout_id=RID, step=0)
    limited = RoutingState(champion=V1, stage=Stage.LIMITED, candidate=V2, rollout_id=RID, step=1,
                           regions=("eu-west", "us-east"), region_percent=50)
    step = "2/7 limited eu-west, us-east 50%"
    records.record(settings, _event("start", stable, shadow, [], "1/7 shadow"))
    records.record(settings, _event("promote", shadow, limited, judged, step))
    records.record(settings, _event("rollback", limited, stable, [], "stable"))


def test_a_past_rollout_keeps_each_condition_with_its_numbers(bare) -> None:
    judged = _judged()
    _rolled_back(bare, judged)
    events = records.history()
    promote = next(e for e in events if e["action"] == "promote")
    assert promote["conditions"] == json.loads(json.dumps([c.to_dict() for c in judged]))

    report = from_events(RID, load_plan(), events)
    assert report.next_step == "2/7 limited eu-west, us-east 50%"
    shown = {c.name: c for c in report.conditions}
    assert shown["compared >= 30"].numbers["value"] == 183 and shown["agreement >= 0.6"].numbers["value"] == pytest.approx(0.907)
    assert shown["agreement >= 0.6"].summary == "agreement >= 0.6: 0.907"
    assert shown["budget"].numbers["p99_ms"] == 80 and shown["budget"].numbers["calls"] == 120
    assert shown["analysis quality"].numbers["value"] == 0.02 and shown["analysis quality"].segments[0].value == "region-0"
    html = render(report, Views())
    assert '<td class="num">183</td>' in html and '<td class="num">0.907</td>' in html


def test_a_past_rollouts_report_shows_the_headline_numbers_its_decision_was_judged_on(bare) -> None:
    _rolled_back(bare, _judged())
    events = records.history()
    assert next(e for e in events if e["action"] == "promote")["evidence"] == {"compared": 183.0}
    report = from_events(RID, load_plan(), events)
    assert report.evidence == {"compared": 183.0}
    assert ("compared", "183") in kpis(report, None)


def test_an_event_recorded_with_names_and_outcomes_only_still_loads(bare) -> None:
    """Runs written before the record kept the numbers: the report shows the outcome and no value."""
    exp = registry.ensure_experiment(bare, registry.ROLLOUT_EXPERIMENT)
    state = RoutingState(champion=V1, stage=Stage.LIMITED, candidate=V2, rollout_id=RID, step=1, regions=("eu-west",),
                         region_percent=50)
    run = registry.client().create_run(exp, tags={
        "action": "promote", "from_stage": "shadow", "to_stage": "limited", "to_step": "2/7 limited eu-west 50%",
        "actor": "alice", "rollout_id": RID, "champion": V1.uri, "candidate": V2.uri,
        "conditions": json.dumps([{"name": "compared >= 30", "outcome": "pass"}]), "state_after": json.dumps(state.to_dict())})
    registry.client().set_terminated(run.info.run_id)  # as every release finished its runs
    events = records.history()
    assert events[0]["conditions"] == [{"name": "compared >= 30", "outcome": "pass"}]
    report = from_events(RID, load_plan(), events)
    (old,) = report.conditions
    assert (old.outcome, old.numbers.get("value")) == ("pass", None)
    assert '<td class="num">–</td>' in render(report, Views())


def test_conditions_too_long_for_a_tag_keep_their_values_and_the_artifact_keeps_them_whole(bare, tmp_path) -> None:
    judged = _judged(segments=60)
    assert len(json.dumps([c.to_dict() for c in judged])) > records.TAG_CHARS
    _rolled_back(bare, judged)
    promote = next(e for e in records.history() if e["action"] == "promote")
    analysis = promote["conditions"][3]
    assert (analysis["value"], analysis["analysis"]["estimate"], analysis["analysis"]["segments"]) == (0.02, 0.02, [])
    assert promote["conditions"][1]["value"] == pytest.approx(0.907)
    kept = json.loads(open(registry.client().download_artifacts(promote["run_id"], "evidence.json", str(tmp_path))).read())
    assert len(kept["conditions"][3]["analysis"]["segments"]) == 60


# -- pure parts ------------------------------------------------------------------------------------------
def test_the_conditions_tag_sheds_bulk_until_it_fits() -> None:
    from mlflow.utils.validation import MAX_TAG_VAL_LENGTH

    assert records.TAG_CHARS <= MAX_TAG_VAL_LENGTH  # else MLflow truncates the JSON
    judged = _judged(segments=3)
    whole = records.conditions_tag([c.to_dict() for c in judged])
    assert json.loads(whole) == json.loads(json.dumps([c.to_dict() for c in judged]))

    no_segments = json.loads(records.conditions_tag([c.to_dict() for c in judged], limit=len(whole) - 1))
    assert no_segments[3]["analysis"]["segments"] == [] and no_segments[3]["analysis"]["n"] == 140
    assert no_segments[:3] == json.loads(whole)[:3]

    bare_size = len(json.dumps([{**c.to_dict(), "analysis": None} for c in judged]))
    no_analysis = json.loads(records.conditions_tag([c.to_dict() for c in judged], limit=bare_size))
    assert no_analysis[3]["analysis"] is None and no_analysis[3]["value"] == 0.02 and no_analysis[0]["detail"] == "183"

    names = json.loads(records.conditions_tag([c.to_dict() for c in judged], limit=bare_size - 1))
    assert names[0] == {"name": "compared >= 30", "outcome": "pass"}


def test_a_rollouts_events_are_asked_for_by_its_id_not_picked_from_the_newest(bare) -> None:
    """Replay picked a rollout's events from the newest `limit` of all rollouts: an older rollout's fell
    outside them and it could not be replayed."""
    stable = RoutingState(champion=V1)
    first = RoutingState(champion=V1, stage=Stage.SHADOW, candidate=V2, rollout_id="r-first", step=0)
    records.record(bare, _event("start", stable, first, [], "1/7 shadow"))
    time.sleep(0.01)  # runs are ordered by their start, to the millisecond
    later = RoutingState(champion=V1, stage=Stage.SHADOW, candidate=V2, rollout_id="r-later", step=0)
    records.record(bare, _event("start", stable, later, [], "1/7 shadow"))
    assert [e["rollout_id"] for e in records.history(1)] == ["r-later"]
    assert [e["rollout_id"] for e in records.history(1, rollout_id="r-first")] == ["r-first"]
    with pytest.raises(ValueError, match="not a rollout id"):
        records.history(rollout_id="x' or tags.actor = 'alice")


def test_a_run_left_unfinished_by_a_dead_process_is_not_taken_for_the_record(bare, monkeypatch) -> None:
    """A process died between creating the run and finishing it: once the row's claim ran out, catching up
    took that run, without its evidence, for the record, and the change was never recorded whole."""
    from mlflow import MlflowClient

    from roomsight.db import engine_for
    from roomsight.rollout_state import write_state
    from rollout import outbox

    engine = engine_for(bare.db_url)
    before = RoutingState(champion=V1, stage=Stage.SHADOW, candidate=V2, rollout_id=RID, step=0)
    event, row = outbox.new_row(_event("rollback", before, RoutingState(champion=V1), [], "stable"), time.time())
    write_state(engine, event.after, None, outbox=row)
    monkeypatch.setattr(MlflowClient, "log_metric", lambda *_a, **_k: (_ for _ in ()).throw(OSError("process died")))
    with pytest.raises(OSError):
        records.record(bare, row["event"])
    monkeypatch.undo()
    exp_id = registry.ensure_experiment(bare, registry.ROLLOUT_EXPERIMENT)
    assert [r.info.status for r in registry.client().search_runs([exp_id])] == ["RUNNING"]
    assert records.history() == []  # an unfinished run is no record

    later = lambda: time.time() + outbox.LEASE_S + 1  # noqa: E731 - the dead process's claim ran out
    assert outbox.catch_up(engine, bare, lambda *_: None, lambda: event.after, clock=later) == 1
    (kept,) = records.history()
    assert registry.client().get_run(kept["run_id"]).info.status == "FINISHED"
    assert kept["evidence"] == {"compared": 183.0} and outbox.pending(engine) == 0


def test_history_shows_a_change_once_whatever_runs_other_processes_left_of_it(bare) -> None:
    """A process whose claim ran out created its run of a change just after another had recorded it, and
    died before finishing it: history showed the change twice, once from a run with no evidence; so did two
    finished runs of it, until the later process deleted the other."""
    stable = RoutingState(champion=V1)
    shadow = RoutingState(champion=V1, stage=Stage.SHADOW, candidate=V2, rollout_id=RID, step=0)
    start = records.record(bare, replace(_event("start", stable, shadow, [], "1/7 shadow"), event_id="e-start"))
    kept = records.record(bare, replace(_event("rollback", shadow, stable, [], "stable"), generation=2,
                                        event_id="e-rollback", at=time.time() + 1))
    client = registry.client()
    exp_id = registry.ensure_experiment(bare, registry.ROLLOUT_EXPERIMENT)
    first = client.get_run(kept)
    client.create_run(exp_id, start_time=first.info.start_time, tags=first.data.tags)  # the dead process's, RUNNING
    assert [e["run_id"] for e in records.history()] == [kept, start]
    assert [e["run_id"] for e in records.history(rollout_id=RID)] == [kept, start]

    twice = client.create_run(exp_id, start_time=first.info.start_time, tags=first.data.tags)
    client.set_terminated(twice.info.run_id)  # finished too, not yet deleted by `_first_of`
    assert [e["action"] for e in records.history()] == ["rollback", "start"]
    assert records.history()[0]["run_id"] == min(kept, twice.info.run_id)
    # A page of two holds both changes, not the two runs of the newest one; a page of one, that change once.
    assert [e["action"] for e in records.history(2)] == ["rollback", "start"]
    assert [e["action"] for e in records.history(1)] == ["rollback"]


def test_a_run_deleted_by_a_process_that_found_it_unfinished_is_not_returned_for_the_record(bare, monkeypatch) -> None:
    """A process whose claim ran out finished its run just after another, which had found it unfinished,
    deleted it: `record` returned the deleted run's id, the outbox row took the change for recorded, and
    the change had no record once the other process failed before finishing its own."""
    from mlflow import MlflowClient

    from roomsight.db import engine_for
    from roomsight.rollout_state import write_state
    from rollout import outbox

    engine = engine_for(bare.db_url)
    before = RoutingState(champion=V1, stage=Stage.SHADOW, candidate=V2, rollout_id=RID, step=0)
    event, row = outbox.new_row(_event("rollback", before, RoutingState(champion=V1), [], "stable"), time.time())
    write_state(engine, event.after, None, outbox=row)
    real = MlflowClient.set_terminated

    def terminated_then_deleted(self, run_id, *a, **k):
        real(self, run_id, *a, **k)
        self.delete_run(run_id)  # by the other process, which read the run while it was unfinished

    monkeypatch.setattr(MlflowClient, "set_terminated", terminated_then_deleted)
    with pytest.raises(RecordLost, match="deleted"):
        records.record(bare, row["event"])
    monkeypatch.undo()
    assert records.history() == []
    outbox.settle(engine, event.event_id, row["claimed_by"], None, True, "record: RecordLost")  # as the control plane settles it
    assert outbox.pending(engine) == 1
    assert outbox.catch_up(engine, bare, lambda *_: None, lambda: event.after) == 1
    (kept,) = records.history()
    assert registry.client().get_run(kept["run_id"]).info.status == "FINISHED" and outbox.pending(engine) == 0

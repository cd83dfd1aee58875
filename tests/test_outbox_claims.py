"""Who holds an outbox row (rollout.outbox): a claim has an owner, and a process whose claim ran out while
MLflow was slow for it neither overwrites nor releases the row another process took over, nor records
a change that is no longer its own. SQLite only, an injected clock, MLflow faked."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select

from roomsight.db import engine_for
from roomsight.registry import ModelRef
from roomsight.rollout_state import RoutingState, Stage
from roomsight.tables import rollout_outbox
from rollout import outbox, records
from rollout.records import Event

V1, V2 = ModelRef("roomtype", "1"), ModelRef("roomtype", "2")
T0 = 1_000_000.0
AFTER = RoutingState(champion=V1)


@pytest.fixture
def engine(tmp_path) -> Engine:
    return engine_for(f"sqlite:///{tmp_path / 'outbox.db'}")


def waiting(engine: Engine, generation: int, now: float = T0) -> dict[str, Any]:
    """A change's row as the control plane writes it, claimed at `now` by the process that made it."""
    before = RoutingState(champion=V1, stage=Stage.SHADOW, candidate=V2, rollout_id="r", step=0)
    event, row = outbox.new_row(Event("rollback", before, AFTER, "guard", "errors", False, [], {},
                                      generation=generation, from_step="1/7 shadow", to_step="stable"), now)
    with engine.begin() as conn:
        conn.execute(insert(rollout_outbox).values(**row))
    return row


def stored(engine: Engine, event_id: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(rollout_outbox).where(rollout_outbox.c.event_id == event_id)).first()


def fake_record(monkeypatch, then: Callable[[str], None] = lambda _id: None) -> list[str]:
    """records.record, as MLflow would answer it (one run per change), calling `then(event_id)` while on
    its way; returns the event ids it was asked to record, in order."""
    asked: list[str] = []

    def record(_settings: Any, event: dict[str, Any]) -> str:
        asked.append(event["event_id"])
        then(event["event_id"])
        return f"run-{event['event_id'][:8]}"

    monkeypatch.setattr(records, "record", record)
    return asked


def catch_up(engine: Engine, now: list[float]) -> int:
    return outbox.catch_up(engine, None, lambda _b, _a: None, lambda: AFTER, clock=lambda: now[0])


def test_a_late_settle_does_not_overwrite_the_row_another_process_finished(engine) -> None:
    """The settle of a process whose claim ran out wrote over the result of the process that took the row
    over: a recorded change, its aliases moved, went back to unrecorded, and was recorded a second time."""
    earlier = waiting(engine, 1)  # still waits: the later row, done, stays behind it
    slow = waiting(engine, 2)
    overtaker = outbox._claim(engine, slow["event_id"], T0 + outbox.LEASE_S + 1)
    assert overtaker is not None
    assert outbox.settle(engine, slow["event_id"], overtaker, "run-b", True)

    assert not outbox.settle(engine, slow["event_id"], slow["claimed_by"], None, False, "record: Timeout")
    row = stored(engine, slow["event_id"])
    assert (row.run_id, row.aliases_moved, row.last_error) == ("run-b", True, None)
    assert outbox.pending(engine) == 1 and len(outbox.events_without_run(engine)) == 1  # the earlier one only
    assert stored(engine, earlier["event_id"]).claimed_by == earlier["claimed_by"]


def test_a_late_settle_does_not_release_the_claim_another_process_holds(engine) -> None:
    """The late settle cleared the claim of the process now working on the row, so a third one claimed it
    too, and the change was written to MLflow by two at once again."""
    slow = waiting(engine, 1)
    later = T0 + outbox.LEASE_S + 1
    assert outbox._claim(engine, slow["event_id"], later) is not None  # taken over, its owner at work

    assert not outbox.settle(engine, slow["event_id"], slow["claimed_by"], None, True, "record: Timeout")
    assert outbox._claim(engine, slow["event_id"], later + 1) is None
    assert stored(engine, slow["event_id"]).run_id is None


def test_a_process_whose_claim_was_taken_over_stops_before_recording_the_change(engine, monkeypatch) -> None:
    """A catch-up slow on its first row, while its claims on the others ran out and another process caught
    up on them all, went on to record the rest itself: each of those changes was written twice."""
    first, second = waiting(engine, 1), waiting(engine, 2)
    for row in (first, second):  # the processes that made them died before settling
        with engine.begin() as conn:
            conn.execute(rollout_outbox.update().where(rollout_outbox.c.event_id == row["event_id"])
                         .values(claimed_until=T0 - 1))
    now = [T0]
    overtaken: list[int] = []

    def slow(_event_id: str) -> None:
        if not overtaken:
            overtaken.append(-1)
            now[0] += outbox.LEASE_S + 1
            overtaken[0] = catch_up(engine, now)  # another process, all claims out

    asked = fake_record(monkeypatch, slow)
    assert catch_up(engine, now) == 0
    assert overtaken == [2]
    assert asked == [first["event_id"], first["event_id"], second["event_id"]]  # never the second by us
    assert outbox.pending(engine) == 0 and stored(engine, second["event_id"]) is None


def test_renewing_a_claim_before_each_mlflow_call_keeps_the_row_from_another_process(engine, monkeypatch) -> None:
    """A claim lasted LEASE_S from the start of a catch-up, whatever the rows before it took: the last rows
    of a long backlog were claimed by another process while this one was still recording them."""
    first, second = waiting(engine, 1, now=T0 - outbox.LEASE_S - 1), waiting(engine, 2, now=T0 - outbox.LEASE_S - 1)
    now = [T0]
    taken: dict[str, str | None] = {}

    def slow_within_the_lease(event_id: str) -> None:
        if event_id == first["event_id"]:
            now[0] += outbox.LEASE_S - 1  # slow, but each call within its lease
        else:  # recording the second: its claim, made at T0, would have run out by now
            taken[event_id] = outbox._claim(engine, event_id, T0 + outbox.LEASE_S + 1)

    asked = fake_record(monkeypatch, slow_within_the_lease)
    assert catch_up(engine, now) == 2
    assert taken == {second["event_id"]: None} and asked == [first["event_id"], second["event_id"]]
    assert outbox.pending(engine) == 0


def test_each_claim_has_its_own_owner() -> None:
    event = Event("start", AFTER, replace(AFTER, stage=Stage.SHADOW, candidate=V2, rollout_id="r"), "dana", "", False,
                  [], {}, generation=1, from_step="stable", to_step="1/7 shadow")
    (_, a), (_, b) = outbox.new_row(event, T0), outbox.new_row(event, T0)
    assert a["claimed_by"] and b["claimed_by"] and a["claimed_by"] != b["claimed_by"]

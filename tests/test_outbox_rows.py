"""The outbox row a change writes (rollout.outbox.new_row), without a database or MLflow: JSON PostgreSQL
takes, dated when the change was made, claimed by the process that writes it."""

from __future__ import annotations

import math

from roomsight.registry import ModelRef
from roomsight.rollout_state import RoutingState, Stage
from rollout import outbox
from rollout.conditions import ConditionResult
from rollout.records import Event

V1, V2 = ModelRef("roomtype", "1"), ModelRef("roomtype", "2")


def event(at: float = 0.0, **evidence: float | None) -> Event:
    before = RoutingState(champion=V1, stage=Stage.LIMITED, candidate=V2, rollout_id="r", step=1,
                          regions=("eu-west",), region_percent=100)
    odd = ConditionResult("budget", "budget", "fail", "no calls timed", math.nan,
                          numbers={"p99_ms": math.inf, "error_rate": 0.5})
    return Event("rollback", before, RoutingState(champion=V1), "guard", "budget", False, [odd], dict(evidence),
                 generation=4, from_step="2/7 limited", to_step="stable", at=at)


def _numbers(value: object) -> list[float]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, (list, tuple)):
        return [n for v in value for n in _numbers(v)]
    return []


def test_the_row_holds_no_nan_or_infinity_anywhere_and_keeps_the_finite_numbers():
    _, row = outbox.new_row(event(drifted_share=-math.inf, ood_share=0.25), now=1000.0)
    numbers = _numbers(row["event"])
    assert numbers and all(math.isfinite(n) for n in numbers)
    [condition] = row["event"]["conditions"]
    assert condition["numbers"] == {"p99_ms": None, "error_rate": 0.5} and condition["value"] is None
    assert row["event"]["evidence"] == {"drifted_share": None, "ood_share": 0.25}
    assert row["event"]["after"]["champion"] == event().after.to_dict()["champion"]


def test_tuples_inside_the_json_are_walked_too():
    assert outbox._json({"a": (1.0, math.nan, [math.inf, {"b": -math.inf}])}) == {"a": [1.0, None, [None, {"b": None}]]}
    assert outbox._json({"n": 3, "s": "nan", "t": True, "z": None}) == {"n": 3, "s": "nan", "t": True, "z": None}


def test_a_new_row_is_dated_when_the_change_was_made_and_claimed_by_its_writer():
    written, row = outbox.new_row(event(), now=1000.0)
    assert written.at == row["event"]["at"] == 1000.0
    assert written.event_id and row["event_id"] == written.event_id == row["event"]["event_id"]
    assert row["claimed_until"] == 1000.0 + outbox.LEASE_S and row["run_id"] is None and not row["aliases_moved"]
    earlier, _ = outbox.new_row(event(at=900.0), now=1000.0)
    assert earlier.at == 900.0

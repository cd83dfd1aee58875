"""Rollout changes whose MLflow side is not done yet, and catching up on them (a transactional outbox).

A change writes its routing state and its row here in one transaction (`write_state(..., outbox=...)`): the
row holds the event to record (`records.Event.to_dict()`) and whether MLflow's aliases were moved. The
process that made the change does both at once (`settle`). When MLflow could not take them (down, or the
process died in between), `catch_up` does them later, from any process: the control plane after its next
change that MLflow took, and `rollout serve`'s guard every `CATCH_UP_S`. A row is claimed for `LEASE_S` by
the process working on it, and the run is tagged with the row's `event_id`, so a change is recorded once
even when a process dies between the record and the row's deletion.

A claim has an owner (`claimed_by`, a token per claim) as well as an end. A process slow on MLflow may see
its claim run out and another process take the row over; every write it then makes to the row is a
compare-and-set on its token: the claim is renewed before each record and each alias move, and a renewal
that fails (the claim was taken) stops the work on that row and the rows after it; a settle whose claim
was taken writes nothing (a warning says so) and leaves the row to its owner, whose result it would
overwrite.

A done row stays while an earlier one is not: catching up on an earlier change's aliases moves them again
for every change after it, in order, so each version ends tagged as the latest change left it.

This is what lets the guard's rollback go ahead while MLflow is down (rollout.control): the change still
reaches history, replay and the reports, dated when it was made.
"""

from __future__ import annotations

import logging
import math
import numbers
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, Connection, Engine, and_, delete, func, not_, or_, select, update

from roomsight.rollout_state import RoutingState
from roomsight.tables import rollout_outbox
from rollout import records

log = logging.getLogger(__name__)

# A claim covers the MLflow calls made for its row before it is renewed (the change's own process makes two,
# a catch-up renews before each), each of which may wait out the client's retries; a claim left by a process
# that died only delays its row's catch-up by this much.
LEASE_S = 600.0
CATCH_UP_S = 15.0

# Moves MLflow's aliases and version tags from one routing state to the next (ControlPlane.move_aliases).
MoveAliases = Callable[[RoutingState, RoutingState], None]


def new_row(event: records.Event, now: float) -> tuple[records.Event, dict[str, Any]]:
    """The event with an id, and its row, claimed by the process about to write it to MLflow (the row's
    `claimed_by` is the token that process settles it with)."""
    event = replace(event, event_id=str(uuid.uuid4()), at=event.at or now)
    return event, {"event_id": event.event_id, "generation": event.generation, "event": _json(event.to_dict()),
                   "run_id": None, "aliases_moved": False, "claimed_until": now + LEASE_S,
                   "claimed_by": str(uuid.uuid4()), "last_error": None}


def _json(value: Any) -> Any:
    """JSON every database takes, whatever the numbers: NaN and infinities (a rate over nothing) as null,
    numpy's scalars as Python's, anything else as its text. A value the row could not hold would fail the
    state's transaction, and with it the change, a rollback too."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    return str(value)


def _done() -> ColumnElement[bool]:
    return and_(rollout_outbox.c.run_id.is_not(None), rollout_outbox.c.aliases_moved.is_(True))


def settle(engine: Engine, event_id: str, claim: str, run_id: str | None, aliases_moved: bool,
           error: str | None = None) -> bool:
    """After a try under `claim`: the row keeps what was done and is released; done rows go once no earlier
    row waits. False, with nothing written, when the claim is no longer ours: another process took the row
    over once ours ran out, and what we did is no news to it (it finds our run by its `event_id`)."""
    with engine.begin() as conn:
        won = conn.execute(update(rollout_outbox).where(
            rollout_outbox.c.event_id == event_id, rollout_outbox.c.claimed_by == claim,
        ).values(run_id=run_id, aliases_moved=aliases_moved, claimed_until=None, claimed_by=None, last_error=error))
        if won.rowcount != 1:
            log.warning("the outbox row of rollout change %s was taken over by another process (our claim ran "
                        "out): left to it", event_id)
            return False
        _compact(conn)
    return True


def _compact(conn: Connection) -> None:
    oldest = conn.execute(select(func.min(rollout_outbox.c.generation)).where(not_(_done()))).scalar()
    conn.execute(delete(rollout_outbox).where(_done(), *([] if oldest is None else [rollout_outbox.c.generation < oldest])))


def pending(engine: Engine) -> int:
    """How many changes MLflow does not fully know of yet."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(rollout_outbox).where(not_(_done()))).scalar_one())


def events_without_run(engine: Engine) -> list[dict[str, Any]]:
    """The changes with no MLflow run yet (history and the reports lack them; `pending` also counts those
    recorded whose aliases wait), oldest first, as `records.history` lists a recorded one (with no run id):
    a past rollout none of whose changes MLflow has yet is reported on from them."""
    with engine.connect() as conn:
        events = conn.execute(select(rollout_outbox.c.event).where(rollout_outbox.c.run_id.is_(None))
                              .order_by(rollout_outbox.c.generation)).scalars().all()
    return [records.listed(e) for e in events]


def _claim(engine: Engine, event_id: str, now: float) -> str | None:
    """The new claim's token, or None when another process holds the row."""
    token = str(uuid.uuid4())
    with engine.begin() as conn:
        won = conn.execute(update(rollout_outbox).where(
            rollout_outbox.c.event_id == event_id,
            or_(rollout_outbox.c.claimed_until.is_(None), rollout_outbox.c.claimed_until < now),
        ).values(claimed_until=now + LEASE_S, claimed_by=token))
    return token if won.rowcount == 1 else None


def _renew(engine: Engine, event_id: str, claim: str, now: float) -> bool:
    """A fresh `LEASE_S` for our claim before another MLflow call; False when the claim was taken over. A
    claim that ran out with no one taking it is still ours: nobody else can have worked on the row."""
    with engine.begin() as conn:
        won = conn.execute(update(rollout_outbox).where(
            rollout_outbox.c.event_id == event_id, rollout_outbox.c.claimed_by == claim,
        ).values(claimed_until=now + LEASE_S))
    return won.rowcount == 1


def catch_up(engine: Engine, settings: Any, move_aliases: MoveAliases, current: Callable[[], RoutingState],
             clock: Callable[[], float] = time.time) -> int:
    """Record, then move the aliases of, every change not claimed by another process, oldest first; returns
    how many it finished. Stops at the first MLflow failure (the rest wait for the next try), and at the
    first row whose claim another process took over (that one and those after it are its to finish);
    never raises for MLflow."""
    with engine.connect() as conn:
        rows = conn.execute(select(rollout_outbox).order_by(rollout_outbox.c.generation)).all()
    claims = {r.event_id: token for r in rows
              if not (r.run_id and r.aliases_moved) and (token := _claim(engine, r.event_id, clock())) is not None}
    mine = [r for r in rows if r.event_id in claims]
    run_ids = {r.event_id: r.run_id for r in mine}
    lost: str | None = None  # the first row whose claim was taken over

    def still_mine(event_id: str) -> bool:
        nonlocal lost
        if event_id in claims and lost is None and not _renew(engine, event_id, claims[event_id], clock()):
            lost = event_id
        return lost is None

    try:
        for r in mine:
            if run_ids[r.event_id] is None:
                if not still_mine(r.event_id):
                    break
                run_ids[r.event_id] = records.record(settings, r.event)
        first = min((r.generation for r in mine if not r.aliases_moved), default=None)
        if first is not None and lost is None:
            # In order, and every later change's again: each takes off what its change took off (the versions'
            # tags), and a later change's tags, already moved, would be overwritten by an earlier one's. A row
            # taken over stops this: its new owner moves them all again, from its own first row on.
            for r in rows:
                if r.generation >= first:
                    if not still_mine(r.event_id):
                        break
                    move_aliases(RoutingState.from_dict(r.event["before"]), RoutingState.from_dict(r.event["after"]))
            if lost is None:
                _last_word(move_aliases, current)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
        log.warning("MLflow has not caught up with %d rollout change(s) yet: %s", len(mine), error)
        for r in mine:
            settle(engine, r.event_id, claims[r.event_id], run_ids[r.event_id], r.aliases_moved, error)
        return 0
    if lost is not None:
        log.warning("rollout change %s was taken over by another process while MLflow was slow for us; left to it",
                    lost)
        for r in mine:  # the rows still ours keep their records, and wait for their aliases
            if r.event_id != lost:
                settle(engine, r.event_id, claims[r.event_id], run_ids[r.event_id], r.aliases_moved, r.last_error)
        return 0
    return sum(settle(engine, r.event_id, claims[r.event_id], run_ids[r.event_id], True) for r in mine)


def _last_word(move_aliases: MoveAliases, current: Callable[[], RoutingState], tries: int = 5) -> None:
    """Make MLflow say what routing says now. A change another process commits between our read and our move
    moves its own aliases first; moved after it, the state we read would have the last word, with no row left
    to correct it: so the move is made again until routing stays as read (the other process then moves after
    us)."""
    state = current()
    for _ in range(tries):
        move_aliases(state, state)
        now = current()
        if now == state:
            return
        state = now

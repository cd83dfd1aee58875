"""The rollout state row: written by the control plane with compare-and-swap, polled by every ingress.

One row per database (id = 1). `generation` increases on every write; a writer states the generation
it read, so of two concurrent promotes exactly one wins and the other gets StateConflict.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from roomsight.tables import rollout_state
from serving.routing import RoutingState

_ROW = 1


class StateConflict(RuntimeError):
    """Someone else changed the rollout state since it was read."""


@dataclass(frozen=True)
class Versioned:
    generation: int
    state: RoutingState
    updated_at: float


def read_state(engine: Engine) -> Versioned | None:
    with engine.connect() as conn:
        row = conn.execute(select(rollout_state).where(rollout_state.c.id == _ROW)).first()
    if row is None:
        return None
    return Versioned(row.generation, RoutingState.from_dict(row.state), row.updated_at)


def write_state(engine: Engine, state: RoutingState, expected_generation: int | None) -> Versioned:
    """Write `state` if the stored generation is still `expected_generation` (None: no row yet)."""
    now = time.time()
    with engine.begin() as conn:
        if expected_generation is None:
            try:
                conn.execute(insert(rollout_state).values(id=_ROW, generation=1, state=state.to_dict(), updated_at=now))
            except IntegrityError:
                raise StateConflict("the rollout state was created concurrently; read it again") from None
            return Versioned(1, state, now)
        result = conn.execute(
            update(rollout_state)
            .where(rollout_state.c.id == _ROW, rollout_state.c.generation == expected_generation)
            .values(generation=expected_generation + 1, state=state.to_dict(), updated_at=now)
        )
        if result.rowcount != 1:
            raise StateConflict("the rollout state changed since it was read (another command won); nothing was written")
    return Versioned(expected_generation + 1, state, now)


class NotReady(Exception):
    """Raised by a `prepare` hook: the new state must not be routed on yet (its champion cannot be
    loaded, e.g. the MLflow store is down); keep the current one and try again at the next poll."""


class StateWatcher:
    """Keeps the latest rollout state in memory, re-reading it every `interval` seconds in a thread,
    so the request path only reads an attribute. A failed read keeps the last known state.

    `prepare` runs (in the watcher thread) before a new state is exposed: the Serve app uses it to load
    new model versions first, so the switch itself costs requests nothing. It should bound its own time.
    If it raises `NotReady` the switch waits (counted in `held`); any other failure switches anyway, so a
    slow warm-up never holds a change back for good.
    """

    def __init__(self, engine: Engine, interval: float, prepare: Callable[[RoutingState], None] | None = None) -> None:
        self._engine = engine
        self._interval = interval
        self._prepare = prepare
        self.prepare_errors = 0
        self.held = 0  # polls at which a newer state was kept back by NotReady
        self._stop = threading.Event()
        self.current: Versioned | None = read_state(engine)
        self.read_errors = 0
        self._thread = threading.Thread(target=self._run, name="rollout-state-watcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        if self.current is not None:
            self._prepare_for(self.current.state)
        while not self._stop.wait(self._interval):
            try:
                latest = read_state(self._engine)
            except Exception:
                self.read_errors += 1
                continue
            if latest is not None and (self.current is None or latest.generation != self.current.generation):
                if self._prepare_for(latest.state):
                    self.current = latest
                else:
                    self.held += 1

    def _prepare_for(self, state: RoutingState) -> bool:
        """Whether `state` may be routed on now."""
        if self._prepare is None:
            return True
        try:
            self._prepare(state)
        except NotReady:
            self.prepare_errors += 1
            return self.current is None  # nothing to keep serving instead
        except Exception:  # a slow or failing warm-up must not hold the new routing back for good
            self.prepare_errors += 1
        return True

    def stop(self) -> None:
        self._stop.set()

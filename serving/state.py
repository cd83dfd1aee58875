"""Following the rollout state: every ingress keeps the latest routing state in memory (`StateWatcher`),
re-reading the row the control plane writes (roomsight.rollout_state) on a short interval.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy import Engine

from roomsight.errors import NotReady
from roomsight.rollout_state import RoutingState, Versioned, read_state


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
        self.prepare_errors = 0  # states whose warm-up failed (/healthz: warm_errors)
        self.held = 0  # polls at which a newer state was kept back by NotReady
        self.read_errors = 0  # polls at which the state could not be read: the last one read stays
        self._stop = threading.Event()
        self.current: Versioned | None = read_state(engine)
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

"""The budget guard: while the candidate answers traffic (limited, gradual), it watches the candidate's
recent error rate and latency, and takes the candidate off traffic when the plan's budget is broken.

`breach` is pure (budget + numbers -> a reason or None). `Guard` is the loop around it; `rollout serve`
runs one beside the Serve app, and a rollback it makes is recorded like any other, with actor `guard`.
"""

from __future__ import annotations

import logging
import threading

from rollout.control import ControlPlane, Outcome, RolloutError
from rollout.evidence import candidate_window
from rollout.plan import Budget
from serving.routing import Stage

log = logging.getLogger(__name__)

GUARD_ACTOR = "guard"
MIN_CALLS = 20  # fewer candidate calls than this is too little to judge a rate on


def breach(budget: Budget, calls: float, error_rate: float | None, p99_ms: float | None) -> str | None:
    """Why the candidate must come off traffic, or None while it is within budget."""
    if calls < MIN_CALLS:
        return None
    if error_rate is not None and error_rate > budget.max_error_rate:
        return f"candidate error rate {error_rate:.1%} over its last {calls:.0f} calls exceeds the budget {budget.max_error_rate:.1%}"
    if p99_ms is not None and p99_ms > budget.max_p99_ms:
        return f"candidate p99 latency {p99_ms:.0f} ms over its last {calls:.0f} calls exceeds the budget {budget.max_p99_ms:.0f} ms"
    return None


class Guard:
    def __init__(self, control: ControlPlane, interval_s: float = 2.0) -> None:
        self.control = control
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> Outcome | None:
        """Check once; roll back and return the outcome if the budget is broken."""
        state = self.control.current().state
        if state.stage not in (Stage.LIMITED, Stage.GRADUAL) or state.rollout_id is None:
            return None
        budget = self.control.plan.budget
        w = candidate_window(self.control.engine, state.rollout_id, budget.window)
        why = breach(budget, w.calls, w.error_rate, w.p99_ms)
        if why is None:
            return None
        try:
            out = self.control.rollback(f"automatic: {why}", auto=True)
        except RolloutError as exc:  # someone else changed the state first; look again next tick
            log.warning("guard could not roll back: %s", exc)
            return None
        log.warning("guard took the candidate off traffic: %s", why)
        return out

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rollout-guard", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.tick()
            except Exception:  # the guard must outlive a database or MLflow hiccup
                log.exception("guard check failed")

    def stop(self) -> None:
        self._stop.set()

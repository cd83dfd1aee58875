"""The guard: the rollout's background analysis. Every few seconds, while a rollout is in progress, it
judges what the current step watches (the budget on errors and latency while the candidate answers users,
the plan's analyses and drift alarm) and acts on its own:

- a watched condition fails: roll back, or pause, as the plan says for that condition;
- a step whose time is up (`pause: {duration}` or `auto_advance: {after}`) and whose exit conditions pass:
  promote to the next step. A watched condition still inconclusive does not hold it: watching is a
  tripwire (a sequential analysis reads inconclusive until it can say more), and what a step must show
  before it ends is its exit, as for a person's promotion;
- exit conditions inconclusive (or the time not up): hold the step; status says what is still wanted.

`decide` is pure (judged conditions + state + time -> an action or None); `Guard` is the loop around it.
`rollout serve` runs one beside the Serve app; what it does is recorded like any other change, with actor
`guard`, and notified. Its rollback and pause take effect without MLflow (MLflow is written after the
routing state, and a change it missed waits in the outbox); a second loop gives MLflow the changes it
missed once it is back (`ControlPlane.catch_up`), on its own thread, so that a backlog is not caught up
between two judgements.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from roomsight.errors import RolloutError
from roomsight.rollout_state import RoutingState
from rollout import assess, outbox, stages
from rollout.conditions import ConditionResult
from rollout.control import ControlPlane, Outcome
from rollout.plan import Plan

log = logging.getLogger(__name__)

GUARD_ACTOR = "guard"


@dataclass(frozen=True)
class Action:
    kind: str  # rollback | pause | promote
    reason: str
    conditions: tuple[ConditionResult, ...]


def decide(plan: Plan, state: RoutingState, watch: list[ConditionResult], exit_outcome: str | None, now: float) -> Action | None:
    """What the guard does about one judgement of the current step; None: nothing (hold)."""
    failing = [r for r in watch if r.outcome == "fail"]
    if failing:
        kind = "rollback" if any(r.on_fail == "rollback" for r in failing) else "pause"
        if kind == "pause" and state.held:
            return None  # already paused, and a person has been told
        why = "; ".join(f"{r.name}: {r.detail}" for r in failing)
        return Action(kind, f"automatic: {why}", tuple(failing))
    if state.held or state.step is None:
        return None
    wait = plan.steps[state.step].wait_s
    if wait is None or state.since is None or now - state.since < wait or exit_outcome != "pass":
        return None
    return Action("promote", f"automatic: step {state.step + 1} ran its {wait:g} s and its exit conditions passed", ())


def needs_exit(plan: Plan, state: RoutingState, now: float) -> bool:
    """Whether the exit conditions matter at this tick: only once the step's time is up (they cost a query)."""
    if state.held or state.step is None or state.since is None:
        return False
    wait = plan.steps[state.step].wait_s
    return wait is not None and now - state.since >= wait


class Guard:
    def __init__(self, control: ControlPlane, interval_s: float = 2.0, catch_up_s: float = outbox.CATCH_UP_S) -> None:
        self.control = control
        self.interval_s = interval_s
        self.catch_up_s = catch_up_s
        self.last: assess.Judged | None = None  # the latest judgement, for whoever asks
        self._told: tuple[str | None, int] | None = None  # the rollout and generation last warned about a changed plan
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def tick(self) -> Outcome | None:
        """Judge once and act; returns the change made, if any."""
        cp = self.control
        cur = cp.current()
        state = cur.state
        if not state.in_progress or state.step is None or state.step >= len(cp.plan.steps):
            return None
        now = cp.clock()
        # A plan changed under the rollout (other steps than it started with: stages.off_plan) still has it rolled
        # back or paused on a failure, but never promoted: the steps after its index are not the ones it took.
        off = stages.off_plan(state, cp.plan)
        if off is not None and self._told != (state.rollout_id, cur.generation):
            # Once per state, not per tick: status and a refused promotion say it too, but only when asked.
            log.warning("guard: not promoting: %s", off)
            self._told = (state.rollout_id, cur.generation)
        with_exit = off is None and needs_exit(cp.plan, state, now)
        # What its promotion must pass, the steps a --percent override skips included: judged on the current
        # step alone, a skipped step's failing condition had it try a refused promotion at every tick.
        judged = assess.judge(cp.plan, state, cp.engine, cp.settings, all_evidence=False,
                              exit_steps=stages.next_promotion(state, cp.plan)[1] if with_exit else range(0))
        self.last = judged
        action = decide(cp.plan, state, judged.watch, judged.exit_outcome if with_exit else None, now)
        if action is None:
            return None
        # The action applies to the state judged, or to none: `generation` makes the control plane refuse it
        # once anyone has changed the rollout since.
        try:
            if action.kind == "rollback":
                out = cp.rollback(action.reason, auto=True, gates=list(action.conditions), generation=cur.generation)
            elif action.kind == "pause":
                out = cp.pause(action.reason, gates=list(action.conditions), generation=cur.generation)
            else:
                out = cp.promote(reason=action.reason, auto=True, generation=cur.generation)
        except RolloutError as exc:  # someone else changed the state first, or the evidence moved: look again next tick
            # Neutral words: the error also comes after routing changed but MLflow failed, and says which.
            log.warning("guard's %s: %s", action.kind, exc)
            return None
        log.warning("guard: %s (%s)%s", action.kind, action.reason,
                    f"; MLflow has not taken its {' and '.join(out.mlflow_pending)} yet" if out.mlflow_pending else "")
        return out

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._every, args=(self.interval_s, self.tick), name="rollout-guard", daemon=True),
                         threading.Thread(target=self._every, args=(self.catch_up_s, self.control.catch_up),
                                          name="rollout-catch-up", daemon=True)]
        for t in self._threads:
            t.start()

    def _every(self, interval_s: float, work: Callable[[], object]) -> None:
        while not self._stop.wait(interval_s):
            try:
                work()
            except Exception:  # the guard must outlive a database or MLflow hiccup
                log.exception("%s failed", threading.current_thread().name)

    def stop(self) -> None:
        self._stop.set()

"""The control plane's operations: start, promote (or preview it), pause, rollback, status, history.

Each change is: read the routing state -> compute the next one (pure, `stages`) -> judge the conditions
on the evidence (`assess`) -> compare-and-swap the state row, with the change's row in the outbox (the
Serve app follows the state within its poll interval) -> move MLflow aliases and version tags -> record an
MLflow run with actor, reason, the conditions and the state after it (`records`) -> notify. The state row
is written first and only by the winner of a concurrent race, so MLflow never records a change that did
not happen; the outbox row (`outbox`) makes sure it records every change that did, late if MLflow was down.

A change that gives a model traffic waits for MLflow (the registry is asked for the versions first); one
that only takes traffic from the candidate (a rollback, the guard's pause) goes ahead without it.
"""

from __future__ import annotations

import getpass
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from roomsight import registry
from roomsight.config import Settings
from roomsight.db import engine_for
from roomsight.errors import BadModelUri, GatesFailed, PlanError, RegistryError, RolloutError, StateConflict, TransitionError
from roomsight.registry import CHAMPION, ModelRef
from roomsight.rollout_state import RoutingState, Versioned, read_state, write_state
from monitoring.notify import Notifier
from rollout import aliases, assess, outbox, plan_text, records, stages
from rollout.conditions import ConditionResult, overall
from rollout.notices import rollout_event
from rollout.plan import Plan


@dataclass
class Outcome:
    action: str
    before: RoutingState
    after: RoutingState
    gates: list[ConditionResult] = field(default_factory=list)
    evidence: dict[str, float | None] = field(default_factory=dict)
    forced: bool = False
    run_id: str | None = None
    generation: int = 0
    from_step: str = ""
    to_step: str = ""
    applied: bool = True  # False: a dry run, nothing was changed
    mlflow_pending: tuple[str, ...] = ()  # what MLflow could not take yet ("aliases", "record"): the outbox has it

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "applied": self.applied, "before": self.before.to_dict(),
                "after": self.after.to_dict(), "from_step": self.from_step, "to_step": self.to_step, "forced": self.forced,
                "gates": [g.to_dict() for g in self.gates], "generation": self.generation, "mlflow_run_id": self.run_id,
                "mlflow_pending": list(self.mlflow_pending)}


@dataclass
class Status:
    state: RoutingState
    generation: int
    updated_at: float
    evidence: dict[str, float | None]
    step: str | None  # "3/7 gradual 10%"
    next_step: str | None
    exit: list[ConditionResult]  # to leave the current step
    watch: list[ConditionResult]  # what the guard checks on it
    unrecorded: int = 0  # changes MLflow does not fully know of yet (the outbox)
    plan_changed: str | None = None  # why the plan at hand is not the one the rollout started with, if it is not

    @property
    def next_stage(self) -> str | None:
        return self.next_step.split(" ")[1] if self.next_step else None

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state.to_dict(), "generation": self.generation, "updated_at": self.updated_at,
                "step": self.step, "next_step": self.next_step, "next_stage": self.next_stage, "evidence": self.evidence,
                "exit": [r.to_dict() for r in self.exit], "exit_outcome": overall(self.exit) if self.exit else None,
                "watch": [r.to_dict() for r in self.watch], "unrecorded": self.unrecorded, "plan_changed": self.plan_changed}


log = logging.getLogger(__name__)

# Changes that only take traffic from the candidate: made while MLflow is down (the outbox records them).
_WITHOUT_MLFLOW = frozenset({"rollback", "auto-rollback", "auto-pause"})

# What writes the report of a committed change into its MLflow run: (control plane, outcome, reason).
Reporter = Callable[["ControlPlane", Outcome, str | None], object]


def _event_report(control: ControlPlane, outcome: Outcome, reason: str | None) -> object:
    from rollout.report.build import attach_event_report

    return attach_event_report(control, outcome, reason)


def _transition(fn: Callable[[], Any]) -> Any:
    """A pure transition's refusal, as the control plane's error (the API answers it with 409)."""
    try:
        return fn()
    except (TransitionError, PlanError) as exc:
        raise RolloutError(str(exc)) from None


def default_actor() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return os.environ.get("USER", "unknown")


class ControlPlane:
    def __init__(self, settings: Settings, plan: Plan, actor: str | None = None, engine: Engine | None = None,
                 clock: Callable[[], float] = time.time, notifier: Notifier | None = None,
                 reporter: Reporter | None = None) -> None:
        self.settings = settings
        self.plan = plan
        self.actor = actor or default_actor()
        self.engine = engine or engine_for(settings.db_url)
        self.clock = clock
        self.notifier = notifier or Notifier.from_settings(settings)
        self.reporter = reporter or _event_report
        registry.configure(settings)

    def with_actor(self, actor: str) -> ControlPlane:
        return ControlPlane(self.settings, self.plan, actor=actor, engine=self.engine, clock=self.clock,
                            notifier=self.notifier, reporter=self.reporter)

    # -- reading ----------------------------------------------------------------------------------
    def current(self) -> Versioned:
        """The routing state, created from the MLflow `champion` alias on first use."""
        found = read_state(self.engine)
        if found is not None:
            return found
        version = registry.alias_version(self.settings.model_name, CHAMPION)
        if version is None:
            raise RolloutError(f"no champion: registered model {self.settings.model_name!r} has no `champion` alias "
                               "yet; train one with `rollout train`")
        state = RoutingState(champion=ModelRef(self.settings.model_name, version),
                             shadow_sample=1.0, hold_ood_on_champion=self.plan.hold_ood_on_champion)
        try:
            return write_state(self.engine, state, None)
        except StateConflict:
            return read_state(self.engine)  # type: ignore[return-value] - someone else bootstrapped it

    def step_label(self, state: RoutingState) -> str:
        return plan_text.step_label(self.plan, state)

    def status(self, as_of: float | None = None) -> Status:
        cur = self.current()
        state = cur.state
        nxt, exits = None, None
        if state.in_progress:
            # What the next promotion checks: the steps it skips (behind an override's share) too.
            target, exits = stages.next_promotion(state, self.plan)
            nxt = self.plan.step_label(target) if target is not None else None
        judged = assess.judge(self.plan, state, self.engine, self.settings, exit_steps=exits, as_of=as_of)
        return Status(state, cur.generation, cur.updated_at, judged.evidence,
                      self.step_label(state) if state.in_progress else None, nxt, judged.exit, judged.watch,
                      self.unrecorded(), stages.off_plan(state, self.plan))

    def history(self, limit: int = 50, at: float | None = None, rollout_id: str | None = None) -> list[dict[str, Any]]:
        """Rollout events as MLflow recorded them, newest first (at or before `at`, of `rollout_id`, when given)."""
        return records.history(limit, at=at, rollout_id=rollout_id)

    # -- changing ---------------------------------------------------------------------------------
    def start(self, candidate_uri: str, reason: str | None = None) -> Outcome:
        cur = self.current()
        try:
            candidate = registry.resolve(candidate_uri)
        except BadModelUri as exc:  # MLflow out of reach stays a RegistryError: a retry may cure that
            raise RolloutError(str(exc)) from None
        if candidate.name != self.settings.model_name:
            raise RolloutError(f"{candidate_uri} is not a version of {self.settings.model_name!r}")
        after = _transition(lambda: stages.start(cur.state, candidate, str(uuid.uuid4()), self.plan, self.clock()))
        return self._commit("start", cur, after, reason=reason, resolved=candidate, plan=plan_text.as_recorded(self.plan))

    def promote(self, stage: str | None = None, regions: tuple[str, ...] | None = None, percent: float | None = None,
                force: bool = False, reason: str | None = None, dry_run: bool = False, auto: bool = False,
                generation: int | None = None) -> Outcome:
        """Move to the next step (or the first later step of kind `stage`) if the exit conditions of the
        current step, and of every step skipped, pass. With `dry_run`, only say what would happen; with
        `generation`, only if the state is still the one read then."""
        if force and not (reason and reason.strip()):
            raise RolloutError("--force needs --reason: an override must say why, for the record")
        cur = self._unchanged_since(generation)
        target = _transition(lambda: stages.target_step(cur.state, self.plan, stage))
        after = _transition(lambda: stages.advance(cur.state, self.plan, target, self.clock(), regions, percent))
        judged = assess.judge(self.plan, cur.state, self.engine, self.settings,
                              exit_steps=stages.exits_to_check(cur.state, target), watch=False)
        results, passed = judged.exit, overall(judged.exit) == "pass"
        label = self.step_label(after)
        if dry_run:
            return Outcome("promote", cur.state, after, results, judged.evidence, forced=force and not passed,
                           generation=cur.generation, from_step=self.step_label(cur.state), to_step=label, applied=False)
        if not passed and not force:
            raise GatesFailed(label, results)
        return self._commit("auto-promote" if auto else "promote", cur, after, reason=reason, gates=results,
                            ev=judged.evidence, forced=force and not passed)

    def pause(self, reason: str, gates: list[ConditionResult] | None = None, generation: int | None = None) -> Outcome:
        """Hold the rollout where it is (the guard's answer to a condition whose plan says pause)."""
        cur = self._unchanged_since(generation)
        after = _transition(lambda: stages.hold(cur.state, reason))
        return self._commit("auto-pause", cur, after, reason=reason, gates=gates)

    def rollback(self, reason: str, auto: bool = False, gates: list[ConditionResult] | None = None,
                 generation: int | None = None) -> Outcome:
        if not reason or not reason.strip():
            raise RolloutError("rollback needs --reason")
        cur = self._unchanged_since(generation)
        after = _transition(lambda: stages.rollback(cur.state))
        ev = assess.judge(self.plan, cur.state, self.engine, self.settings, watch=False).evidence
        return self._commit("auto-rollback" if auto else "rollback", cur, after, reason=reason, gates=gates, ev=ev)

    def unrecorded(self) -> int:
        """How many changes MLflow has not fully taken yet: their record, or their aliases."""
        return outbox.pending(self.engine)

    def events_without_run(self) -> list[dict[str, Any]]:
        """Of those, the ones with no record yet (history and reports lack them), oldest first, as `history` lists."""
        return outbox.events_without_run(self.engine)

    def catch_up(self) -> int:
        """Give MLflow the changes it missed (their records and aliases); returns how many it took."""
        return outbox.catch_up(self.engine, self.settings, self.move_aliases, lambda: self.current().state)

    def _unchanged_since(self, generation: int | None) -> Versioned:
        """The current state; with `generation`, refused unless it is still the state of that generation.
        An automatic action was decided on the state it read: applied to another (someone promoted or
        rolled back meanwhile) it would act twice, and a rollback after a rollback restores the previous
        champion."""
        cur = self.current()
        if generation is not None and cur.generation != generation:
            said = "changed since it was judged" if generation < cur.generation else "has not reached that generation"
            raise RolloutError(f"the rollout {said} (generation {generation}, now {cur.generation}); nothing was changed")
        return cur

    def _commit(self, action: str, cur: Versioned, after: RoutingState, *, reason: str | None,
                gates: list[ConditionResult] | None = None, ev: dict[str, float | None] | None = None,
                forced: bool = False, resolved: ModelRef | None = None, plan: dict[str, Any] | None = None) -> Outcome:
        """`resolved`: a version the caller has just found in the registry (not asked for again)."""
        taken_up = {after.champion, after.candidate} - {cur.state.champion, cur.state.candidate, None}
        if action not in _WITHOUT_MLFLOW or taken_up:
            try:  # a model given traffic is checked against the registry first, so it waits for MLflow
                registry.check_reachable()
            except Exception as exc:
                raise RegistryError(f"the MLflow registry is unreachable ({type(exc).__name__}); nothing was changed") from None
            # A version routing takes up anew (the previous champion a rollback after full restores) may have
            # been deleted since: routed to, no replica could load it.
            for ref in taken_up - {resolved}:
                assert ref is not None
                try:
                    registry.resolve(ref.uri)
                except BadModelUri as exc:
                    raise RolloutError(f"{exc}; nothing was changed") from None
        to_step = self.step_label(after) if after.rollout_id else after.stage.value
        event, row = outbox.new_row(records.Event(
            action, cur.state, after, self.actor, reason or "", forced, gates or [], ev or {}, cur.generation + 1,
            self.step_label(cur.state), to_step, plan=plan), time.time())
        try:
            written = write_state(self.engine, after, cur.generation, outbox=row)
        except StateConflict as exc:
            raise RolloutError(str(exc)) from None
        outcome = Outcome(action, cur.state, after, event.conditions, event.evidence, forced,
                          generation=written.generation, from_step=event.from_step, to_step=to_step)
        # Routing has changed and stays changed (reverting could race another command); what MLflow cannot
        # take now, the outbox gives it later (`catch_up`). The notice goes either way.
        failed: dict[str, str] = {}
        try:
            self.move_aliases(cur.state, after)
        except Exception as exc:
            failed["aliases"] = type(exc).__name__
        try:
            outcome.run_id = records.record(self.settings, row["event"])  # as catch_up would record it
        except Exception as exc:
            failed["record"] = type(exc).__name__
        try:
            outbox.settle(self.engine, event.event_id, row["claimed_by"], outcome.run_id, "aliases" not in failed,
                          "; ".join(f"{k}: {v}" for k, v in failed.items()) or None)
        except Exception:  # the row stays claimed; once its lease is out, catch_up finds the run by its event_id
            log.exception("could not settle the outbox row of generation %d", written.generation)
        outcome.mlflow_pending = tuple(sorted(failed))
        if outcome.run_id is not None:
            self.reporter(self, outcome, reason)  # the rollout report, attached to the run; never raises
        self.notifier.send(rollout_event(outcome, self.actor, reason))  # never raises; bounded by notify.wait_s
        if not failed:
            try:
                self.catch_up()  # MLflow takes changes again: earlier ones it missed, if any
            except Exception:  # the change is made and told; the guard's catch-up tries again
                log.exception("could not catch MLflow up with earlier rollout changes")
        return outcome

    def move_aliases(self, before: RoutingState, after: RoutingState) -> None:
        """Make MLflow's aliases and version tags say what the routing state says."""
        aliases.move(self.settings.model_name, before, after, self.step_label(after))

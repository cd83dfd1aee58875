"""The control plane's operations: start, promote, rollback, status, history.

Each change is: read the routing state -> compute the next one (pure, `stages`) -> check gates (pure,
`gates`) on the evidence -> compare-and-swap the state row (the Serve app follows it within its poll
interval) -> move MLflow aliases and version tags -> record an MLflow run with actor, reason and the
gate evidence. The state row is written first and only by the winner of a concurrent race, so MLflow
never records a change that did not happen.
"""

from __future__ import annotations

import getpass
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from monitoring.notify import Notifier
from roomsight import registry
from roomsight.config import Settings
from roomsight.db import engine_for
from roomsight.errors import UserError
from roomsight.registry import CANDIDATE, CHAMPION, ModelRef
from rollout import evidence as evidence_mod
from rollout import stages
from rollout.gates import GateResult, all_passed, check
from rollout.notices import rollout_event
from rollout.plan import Plan
from serving.routing import RoutingState, Stage
from serving.state import StateConflict, Versioned, read_state, write_state


class RolloutError(UserError, RuntimeError):
    """A command cannot be carried out; the message says why and what to do instead."""


class GatesFailed(RolloutError):
    def __init__(self, target: str, results: list[GateResult]) -> None:
        failing = [r for r in results if not r.passed]
        super().__init__(f"promotion to {target} refused: {len(failing)} gate(s) failed: "
                         + "; ".join(r.describe() for r in failing) + " (use --force --reason to override)")
        self.target = target
        self.results = results


@dataclass
class Outcome:
    action: str
    before: RoutingState
    after: RoutingState
    gates: list[GateResult] = field(default_factory=list)
    evidence: dict[str, float | None] = field(default_factory=dict)
    forced: bool = False
    run_id: str | None = None
    generation: int = 0


@dataclass
class Status:
    state: RoutingState
    generation: int
    updated_at: float
    evidence: dict[str, float | None]
    next_stage: str | None
    next_gates: list[GateResult]


def default_actor() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return os.environ.get("USER", "unknown")


def next_stage(state: RoutingState, plan: Plan) -> str | None:
    if state.stage is Stage.SHADOW:
        return "limited"
    if state.stage is Stage.LIMITED:
        return "gradual"
    if state.stage is Stage.GRADUAL:
        return "gradual" if any(s > state.percent for s in plan.gradual.steps) else "full"
    return None


class ControlPlane:
    def __init__(self, settings: Settings, plan: Plan, actor: str | None = None, engine: Engine | None = None,
                 notifier: Notifier | None = None) -> None:
        self.settings = settings
        self.plan = plan
        self.actor = actor or default_actor()
        self.engine = engine or engine_for(settings.db_url)
        self.notifier = notifier or Notifier.from_settings(settings)
        registry.configure(settings)

    def with_actor(self, actor: str) -> ControlPlane:
        return ControlPlane(self.settings, self.plan, actor=actor, engine=self.engine, notifier=self.notifier)

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
                             shadow_sample=self.plan.shadow.sample, hold_ood_on_champion=self.plan.hold_ood_on_champion)
        try:
            return write_state(self.engine, state, None)
        except StateConflict:
            return read_state(self.engine)  # type: ignore[return-value] - someone else bootstrapped it

    def evidence(self, state: RoutingState) -> dict[str, float | None]:
        return evidence_mod.collect(self.engine, self.settings, state.rollout_id).values

    def status(self) -> Status:
        cur = self.current()
        ev = self.evidence(cur.state)
        nxt = next_stage(cur.state, self.plan)
        return Status(cur.state, cur.generation, cur.updated_at, ev, nxt,
                      check(self.plan.gates_for(nxt), ev) if nxt else [])

    def history(self, limit: int = 50) -> list[dict[str, Any]]:
        """Rollout events as MLflow recorded them, newest first."""
        c = registry.client()
        with registry.reaching():
            exp = c.get_experiment_by_name(registry.ROLLOUT_EXPERIMENT)
            if exp is None:
                return []
            runs = c.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"], max_results=limit)
        out = []
        for run in runs:
            tags = run.data.tags
            out.append({
                "time": run.info.start_time / 1000.0, "action": tags.get("action"), "from": tags.get("from_stage"),
                "to": tags.get("to_stage"), "actor": tags.get("actor"), "reason": tags.get("reason", ""),
                "forced": tags.get("forced") == "true", "champion": tags.get("champion"), "candidate": tags.get("candidate"),
                "regions": tags.get("regions", ""), "percent": tags.get("percent", ""), "rollout_id": tags.get("rollout_id"),
                "gates": json.loads(tags.get("gates", "[]")), "run_id": run.info.run_id,
            })
        return out

    # -- changing ---------------------------------------------------------------------------------
    def start(self, candidate_uri: str, reason: str | None = None) -> Outcome:
        cur = self.current()
        try:
            candidate = registry.resolve(candidate_uri)
        except registry.RegistryError as exc:
            raise RolloutError(str(exc)) from None
        if candidate.name != self.settings.model_name:
            raise RolloutError(f"{candidate_uri} is not a version of {self.settings.model_name!r}")
        after = self._transition(lambda: stages.start(cur.state, candidate, str(uuid.uuid4()), self.plan))
        return self._commit("start", cur, after, reason=reason)

    def promote(self, stage: str, regions: tuple[str, ...] | None = None, percent: float | None = None,
                force: bool = False, reason: str | None = None) -> Outcome:
        if force and not (reason and reason.strip()):
            raise RolloutError("--force needs --reason: an override must say why, for the record")
        cur = self.current()
        after = self._transition(lambda: stages.promote(cur.state, stage, self.plan, regions, percent))
        ev = self.evidence(cur.state)
        results = check(self.plan.gates_for(stage), ev)
        if not all_passed(results) and not force:
            raise GatesFailed(stage, results)
        return self._commit("promote", cur, after, reason=reason, gates=results, ev=ev, forced=force and not all_passed(results))

    def rollback(self, reason: str, auto: bool = False) -> Outcome:
        if not reason or not reason.strip():
            raise RolloutError("rollback needs --reason")
        cur = self.current()
        after = self._transition(lambda: stages.rollback(cur.state))
        return self._commit("auto-rollback" if auto else "rollback", cur, after, reason=reason, ev=self.evidence(cur.state))

    def _transition(self, fn):  # noqa: ANN001, ANN202
        try:
            return fn()
        except (stages.TransitionError, ValueError) as exc:
            raise RolloutError(str(exc)) from None

    def _commit(self, action: str, cur: Versioned, after: RoutingState, *, reason: str | None,
                gates: list[GateResult] | None = None, ev: dict[str, float | None] | None = None,
                forced: bool = False) -> Outcome:
        try:  # MLflow must be reachable before routing changes, or the record would miss the change
            registry.check_reachable()
        except Exception as exc:
            raise RolloutError(f"the MLflow registry is unreachable ({type(exc).__name__}); nothing was changed") from None
        try:
            written = write_state(self.engine, after, cur.generation)
        except StateConflict as exc:
            raise RolloutError(str(exc)) from None
        try:
            self._move_aliases(cur.state, after)
        except Exception as exc:
            # Routing has changed and stays changed (reverting could race another command). Aliases are
            # derived from the routing state, so the next command sets them right again.
            raise RolloutError(f"routing changed (generation {written.generation}) but MLflow could not be updated "
                               f"({type(exc).__name__}); the next rollout command re-syncs the aliases") from None
        outcome = Outcome(action, cur.state, after, gates or [], ev or {}, forced, generation=written.generation)
        outcome.run_id = self._record(outcome, reason)
        self.notifier.send(rollout_event(outcome, self.actor, reason))  # never raises; bounded by notify.wait_s
        return outcome

    def _move_aliases(self, before: RoutingState, after: RoutingState) -> None:
        """Make MLflow say what the routing state says: who is champion, who is candidate, where."""
        name = self.settings.model_name
        if registry.alias_version(name, CHAMPION) != after.champion.version:
            registry.set_alias(after.champion, CHAMPION)
        registry.set_version_tags(after.champion, {"stage": "champion", "regions": "all", "percent": "100"})
        if after.candidate is not None:
            registry.set_alias(after.candidate, CANDIDATE)
            regions = ",".join(after.regions) if after.stage is Stage.LIMITED else ("all" if after.stage is Stage.GRADUAL else "")
            registry.set_version_tags(after.candidate, {"stage": after.stage.value, "regions": regions,
                                                        "percent": f"{after.percent:g}", "rollout_id": after.rollout_id or ""})
        else:
            registry.delete_alias(name, CANDIDATE)
        for ref in {before.champion, before.candidate} - {after.champion, after.candidate, None}:
            assert ref is not None
            was_candidate = ref == before.candidate
            registry.set_version_tags(ref, {"stage": "rolled-back" if was_candidate else "retired", "percent": "0", "regions": ""})

    def _record(self, o: Outcome, reason: str | None) -> str:
        exp_id = registry.ensure_experiment(self.settings, registry.ROLLOUT_EXPERIMENT)
        tags = {
            "action": o.action, "from_stage": o.before.stage.value,
            "to_stage": "full" if (o.action == "promote" and o.after.stage is Stage.STABLE) else o.after.stage.value,
            "actor": self.actor, "reason": reason or "", "forced": str(o.forced).lower(),
            "rollout_id": o.before.rollout_id or o.after.rollout_id or "",
            "champion": o.after.champion.uri, "candidate": (o.after.candidate or o.before.candidate).uri
            if (o.after.candidate or o.before.candidate) else "",
            "regions": ",".join(o.after.regions), "percent": f"{o.after.percent:g}",
            "gates": json.dumps([g.to_dict() for g in o.gates]), "generation": str(o.generation),
        }
        client = registry.client()
        run = client.create_run(exp_id, run_name=f"{o.action}:{tags['to_stage']}", tags=tags)
        ts = int(time.time() * 1000)
        for key, value in o.evidence.items():
            if value is not None:
                client.log_metric(run.info.run_id, key, float(value), timestamp=ts)
        client.log_dict(run.info.run_id, {"gates": [g.to_dict() for g in o.gates], "evidence": o.evidence,
                                          "before": o.before.to_dict(), "after": o.after.to_dict()}, "evidence.json")
        client.set_terminated(run.info.run_id)
        return run.info.run_id


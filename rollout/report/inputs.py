"""What a report is about, in one dataclass: the state, the plan's steps, the conditions with their
outcomes, the evidence, the recorded events. It holds results, never computes them: the control plane
computes them once, for its gates, and the report shows the same numbers.

The adapters at the bottom (`from_status`, `from_outcome`, `from_events`) are the one place that knows
the control plane's shapes: `Status` (the step, its exit and watched conditions as ConditionResult), a
committed change's `Outcome`, and the recorded events.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from roomsight.errors import UserError
from rollout.records import rollout_of

if TYPE_CHECKING:
    from rollout.control import Outcome as Change, Status
    from rollout.plan import Plan

Outcome = Literal["pass", "fail", "inconclusive"]
OUTCOMES: tuple[Outcome, ...] = ("pass", "fail", "inconclusive")

IDLE_EVENTS = 10  # recent events shown when no rollout is in progress
_STRUCTURAL = {"name", "kind", "outcome", "summary", "detail", "segments", "on_fail", "analysis", "numbers"}


@dataclass(frozen=True)
class Segment:
    """One cell of a per-segment result: e.g. region=ap-south, with its estimate and interval."""

    key: str
    value: str
    outcome: Outcome | None = None
    estimate: float | None = None
    lower: float | None = None
    upper: float | None = None
    n: int | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Segment:
        return cls(key=str(d["key"]), value=str(d["value"]), outcome=_outcome(d.get("outcome")),
                   estimate=_num(d.get("estimate")), lower=_num(d.get("lower")), upper=_num(d.get("upper")),
                   n=int(d["n"]) if d.get("n") is not None else None)


@dataclass(frozen=True)
class Condition:
    """One thing that must hold to leave the current step (a gate, an analysis), with its outcome."""

    name: str
    kind: str  # gate | analysis | whatever the plan calls it
    outcome: Outcome
    summary: str  # one line in words
    numbers: dict[str, float | None] = field(default_factory=dict)
    segments: tuple[Segment, ...] = ()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Condition:
        """A `rollout.conditions.ConditionResult.to_dict()` (an analysis's segments included), as the
        control plane judges it and an event's record keeps it; or the bare `{name, outcome}` of an event
        recorded before records kept the numbers (no numbers, then)."""
        outcome = _outcome(d.get("outcome"))
        if outcome is None:
            raise ValueError(f"condition {d.get('name')!r} has no outcome (one of {', '.join(OUTCOMES)})")
        analysis = d.get("analysis") or {}
        flat = {**{k: v for k, v in d.items() if k not in _STRUCTURAL}, **(d.get("numbers") or {})}
        numbers = {k: _num(v) for k, v in flat.items()
                   if (v is None or isinstance(v, (int, float))) and not isinstance(v, bool)}
        summary = d.get("detail") or d.get("summary") or ""
        return cls(name=str(d.get("name")), kind=str(d.get("kind") or "gate"), outcome=outcome,
                   summary=f"{d.get('name')}: {summary}" if summary else str(d.get("name")), numbers=numbers,
                   segments=tuple(Segment.from_dict(s) for s in analysis.get("segments") or ()))


@dataclass(frozen=True)
class ReportInput:
    """Everything the report says about the rollout's decision; the pictures are gathered beside it."""

    rollout_id: str | None
    state: dict[str, Any]  # RoutingState.to_dict() of the rollout reported on
    plan_name: str  # of the plan the rollout started with, as its start recorded it (else the plan at hand)
    plan_steps: tuple[str, ...]  # the plan's steps as readable lines, "name: what happens"
    step_index: int | None  # where the rollout stands in plan_steps (None: no rollout)
    next_step: str | None  # what the conditions are for
    conditions: tuple[Condition, ...]
    evidence: dict[str, float | None]
    events: tuple[dict[str, Any], ...] = ()  # this rollout's recorded events, oldest first
    event: dict[str, Any] | None = None  # the event this report was written for
    live: bool = True  # the state as it is now (False: a past rollout, or the moment of an event)
    thresholds: dict[str, float] = field(default_factory=dict)  # lines on the plots: budget and gate bounds
    unrecorded: int = 0  # changes MLflow has no record of yet: the events, read from it, lack them
    # The events are the outbox's copies of those changes: MLflow had none of this past rollout's yet.
    unrecorded_shown: bool = False
    # MLflow was out of reach (its error): the events are only those copies, none MLflow recorded.
    history_unreachable: str | None = None
    # The steps are the plan at hand's, which is not the plan the rollout started with (their fingerprints differ).
    plan_changed: str | None = None  # why the steps shown, or the conditions judged, are not the rollout's plan's
    generated_at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class Verdict:
    kind: Literal["ready", "waiting", "failing", "idle", "ended"]
    title: str
    detail: str


def verdict(inp: ReportInput) -> Verdict:
    """The headline: ready, not yet, or failing, from the conditions' outcomes (pure)."""
    champion = model_uri(inp.state.get("champion")) or "the champion"
    if inp.rollout_id is None:
        return Verdict("idle", "No rollout in progress", f"{champion} answers every request.")
    last = inp.event or (inp.events[-1] if inp.events else None)
    if last and last.get("action") in ("rollback", "auto-rollback"):
        auto = "automatically " if last["action"] == "auto-rollback" else ""
        return Verdict("ended", f"Rolled back {auto}".strip(), last.get("reason") or "no reason recorded")
    if last and last.get("to") == "full":
        return Verdict("ended", "Promoted to full", f"the candidate became the champion ({last.get('reason') or 'no reason recorded'})")
    target = inp.next_step or "the next step"
    if inp.event and inp.event.get("action") == "start":
        return Verdict("waiting", "Rollout started in shadow", f"{model_uri(inp.state.get('candidate'))} runs beside {champion}.")
    if inp.event and inp.event.get("action") in ("promote", "auto-promote"):
        failed = [c for c in inp.conditions if c.outcome != "pass"]
        if not failed:
            return Verdict("ready", f"Promoted to {target}", f"{len(inp.conditions)} of {len(inp.conditions)} conditions passed")
        return Verdict("failing", f"Promoted to {target} past {len(failed)} unmet condition(s)",
                       f"forced by {inp.event.get('actor')}: {inp.event.get('reason') or 'no reason recorded'}; unmet: "
                       + "; ".join(c.summary for c in failed))
    failing = [c for c in inp.conditions if c.outcome == "fail"]
    waiting = [c for c in inp.conditions if c.outcome == "inconclusive"]
    if failing:
        return Verdict("failing", f"Not ready for {target}",
                       f"{len(failing)} of {len(inp.conditions)} conditions fail: " + "; ".join(c.summary for c in failing))
    if waiting:
        return Verdict("waiting", f"Waiting for evidence before {target}",
                       "waiting on: " + "; ".join(c.summary for c in waiting))
    if inp.next_step is None:
        return Verdict("waiting", "At the plan's last step", "nothing left to promote to")
    shown = f"{len(inp.conditions)} of {len(inp.conditions)} conditions pass" if inp.conditions else "the plan sets no conditions for it"
    return Verdict("ready", f"Ready for {target}", shown)


# -- adapters from the control plane ------------------------------------------------------------------
_TODAYS_STEPS = ("The plan on disk has changed since this rollout started: these are its steps today, not the ones the "
                 "rollout was on, and where it stands among them may be wrong. Its start did not record the steps it "
                 "started with.")


def rollout_plan(plan: Plan, state: dict[str, Any],
                 mine: tuple[dict[str, Any], ...]) -> tuple[str, tuple[str, ...], str | None]:
    """The name and steps in words of the plan the rollout started with, as its start event (among its events
    `mine`) recorded them. A start recorded before starts kept their plan, or not among the events read: the plan
    at hand's, and a notice when it is known to be another plan than the rollout's (its fingerprint differs)."""
    from rollout.plan_identity import comparable, fingerprint
    from rollout.plan_text import as_recorded

    started = next((e["plan"] for e in mine if e.get("action") == "start" and e.get("plan")), None)
    if started is not None:
        return str(started["name"]), tuple(started["steps"]), None
    recorded, today = state.get("plan_fingerprint"), as_recorded(plan)
    changed = comparable(recorded) and recorded != fingerprint(plan)
    return today["name"], tuple(today["steps"]), _TODAYS_STEPS if changed else None


def step_index(steps: tuple[str, ...], state: dict[str, Any], ended_full: bool = False) -> int | None:
    """The index in `steps` of the step the state is on."""
    if ended_full:
        return len(steps) - 1
    index = state.get("step")
    return index if isinstance(index, int) and 0 <= index < len(steps) else None


def _thresholds(plan: Plan, step: int | None) -> dict[str, float]:
    out = {"max_error_rate": plan.budget.max_error_rate, "max_p99_ms": plan.budget.max_p99_ms}
    from rollout.plan import Gate

    for g in plan.steps[step].exit if step is not None and step < len(plan.steps) else ():
        if isinstance(g, Gate) and g.metric == "agreement" and g.min is not None:
            out["agreement_min"] = g.min
    return out


def from_status(status: Status, plan: Plan, events: list[dict[str, Any]]) -> ReportInput:
    """The live rollout, from `ControlPlane.status()`: the conditions to leave the step and those watched
    on it, judged on the numbers the guard and the promotion read."""
    state = status.state.to_dict()
    rid = state.get("rollout_id") if status.state.in_progress else None
    mine = _of_rollout(events, rid)
    name, steps, changed = rollout_plan(plan, state, mine)
    index = step_index(steps, state)
    judged = {r.name: r for r in (*status.watch, *status.exit)}
    return ReportInput(
        rollout_id=rid, state=state, plan_name=name, plan_steps=steps, step_index=index,
        next_step=status.next_step, conditions=tuple(Condition.from_dict(r.to_dict()) for r in judged.values()),
        evidence=dict(status.evidence),
        events=mine if rid else tuple(sorted(events[:IDLE_EVENTS], key=lambda e: e["time"])),
        # The steps may be the rollout's own, but what it takes to leave this one is judged by the plan at hand.
        thresholds=_thresholds(plan, index), plan_changed=changed or _capital(status.plan_changed))


def _capital(text: str | None) -> str | None:
    return text[:1].upper() + text[1:] + "." if text else None


def from_outcome(outcome: Change, plan: Plan, events: list[dict[str, Any]], actor: str, reason: str | None) -> ReportInput:
    """The moment of one recorded change (`ControlPlane._commit`'s Outcome): its conditions and evidence."""
    rolled_back = outcome.action in ("rollback", "auto-rollback")
    to_full = outcome.after.stage.value == "full"
    shown = outcome.before if (rolled_back or to_full) else outcome.after
    state = shown.to_dict()
    rid = rollout_of(outcome.action, outcome.before, outcome.after) or None
    mine = _of_rollout(events, rid)
    name, steps, changed = rollout_plan(plan, state, mine)
    index = step_index(steps, state, ended_full=to_full)
    event = {"time": time.time(), "action": outcome.action, "from": outcome.before.stage.value,
             "to": outcome.after.stage.value, "from_step": outcome.from_step, "to_step": outcome.to_step,
             "actor": actor, "reason": reason or "", "forced": outcome.forced, "run_id": outcome.run_id}
    return ReportInput(
        rollout_id=rid, state=state, plan_name=name, plan_steps=steps, step_index=index,
        next_step=outcome.to_step if outcome.action in ("promote", "auto-promote") else None,
        conditions=tuple(Condition.from_dict(g.to_dict()) for g in outcome.gates), evidence=dict(outcome.evidence),
        events=mine, event=event, live=False, thresholds=_thresholds(plan, index), plan_changed=changed)


def from_events(rollout_id: str, plan: Plan, events: list[dict[str, Any]]) -> ReportInput:
    """A past rollout, from what MLflow recorded: its last state, and the conditions and evidence of its last
    decision."""
    mine = _of_rollout(events, rollout_id)
    if not mine:
        raise UserError(f"rollout {rollout_id} has no recorded events (start, promote, rollback) in MLflow")
    last = mine[-1]
    decided = next((e for e in reversed(mine) if e.get("conditions")), None)
    to_full = last.get("to") == "full"
    before_last = next((e for e in reversed(mine[:-1]) if e.get("state")), None)
    shown = (before_last or last) if to_full or last.get("action") in ("rollback", "auto-rollback") else last
    state = shown.get("state") or _state_of_tags(shown, rollout_id)
    name, steps, changed = rollout_plan(plan, state, mine)
    index = step_index(steps, state, ended_full=to_full)
    return ReportInput(
        rollout_id=rollout_id, state=state, plan_name=name, plan_steps=steps, step_index=index,
        # Only a promotion's conditions are for the step it went to; the guard's rollback or pause recorded the
        # watched conditions it acted on, and its to_step is where it left the rollout.
        next_step=decided.get("to_step") if decided and decided.get("action") in ("promote", "auto-promote") else None,
        conditions=tuple(Condition.from_dict(g) for g in decided["conditions"]) if decided else (),
        evidence=dict(decided.get("evidence") or {}) if decided else {}, events=mine, live=False,
        thresholds=_thresholds(plan, index), plan_changed=changed)


def _state_of_tags(event: dict[str, Any], rollout_id: str) -> dict[str, Any]:
    """The state after an event recorded before events kept it, from its tags: the report reads a step's
    regions and shares as well as its stage and models."""
    stage = event.get("to") or "stable"
    regions = [r for r in (event.get("regions") or "").split(",") if r]
    percent = float(event.get("percent") or 0)
    # Then limited's percent was within its regions, and gradual kept them whole (as RoutingState.from_dict reads it).
    region_percent, percent = (percent, 0.0) if stage == "limited" else (100.0 if regions else 0.0, percent)
    return {"stage": stage, "rollout_id": rollout_id, "champion": {"uri": event.get("champion")},
            "candidate": {"uri": event.get("candidate")}, "regions": regions, "region_percent": region_percent,
            "percent": percent}


def _of_rollout(events: list[dict[str, Any]], rollout_id: str | None) -> tuple[dict[str, Any], ...]:
    """Events of one rollout, oldest first (history lists them newest first)."""
    if rollout_id is None:
        return ()
    return tuple(sorted((e for e in events if e.get("rollout_id") == rollout_id), key=lambda e: e["time"]))


def model_uri(ref: dict[str, Any] | None) -> str | None:
    """`models:/name/version` of a ModelRef dict (or the `uri` a recorded event kept)."""
    if not ref:
        return None
    if ref.get("uri"):
        return str(ref["uri"])
    return f"models:/{ref['name']}/{ref['version']}" if ref.get("name") else None


def _num(v: Any) -> float | None:
    return None if v is None else float(v)


def _outcome(v: Any) -> Outcome | None:
    if v is None:
        return None
    if v not in OUTCOMES:
        raise ValueError(f"unknown outcome {v!r}; one of {', '.join(OUTCOMES)}")
    return v  # type: ignore[return-value]

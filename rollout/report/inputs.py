"""What a report is about, in one dataclass: the state, the plan's steps, the conditions with their
outcomes, the evidence, the recorded events. It holds results, never computes them: the control plane
computes them once, for its gates, and the report shows the same numbers.

The adapters at the bottom (`from_status`, `from_outcome`, `from_events`) are the one place that knows
today's shapes (`Status.next_gates` as GateResult, the plan's fixed stages). When the plan becomes steps
whose conditions return an outcome, and the analyses return `AnalysisResult`, only these adapters change:
`Condition.from_dict` already reads an `AnalysisResult.to_dict()` and a gate dict with an `outcome`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from rollout.control import Outcome as Change, Status
    from rollout.plan import Plan

Outcome = Literal["pass", "fail", "inconclusive"]
OUTCOMES: tuple[Outcome, ...] = ("pass", "fail", "inconclusive")

# Gate metrics that only grow with traffic: a `min` gate on one not reached yet is waiting for evidence,
# not failing (more of the same traffic passes it).
COUNT_METRICS = frozenset({"requests", "compared", "candidate_served", "candidate_requests", "reviewed"})
IDLE_EVENTS = 10  # recent events shown when no rollout is in progress
_STRUCTURAL = {"name", "kind", "outcome", "summary", "segments", "metric", "bound", "passed"}


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
        """An `AnalysisResult.to_dict()`, a gate result with an `outcome`, or today's `GateResult.to_dict()`."""
        if "metric" in d and "outcome" not in d:
            return gate_condition(d)
        outcome = _outcome(d.get("outcome"))
        if outcome is None:
            raise ValueError(f"condition {d.get('name')!r} has no outcome (one of {', '.join(OUTCOMES)})")
        numbers = {k: _num(v) for k, v in d.items()
                   if k not in _STRUCTURAL and (v is None or isinstance(v, (int, float))) and not isinstance(v, bool)}
        return cls(name=str(d.get("name") or d.get("metric")), kind=str(d.get("kind") or ("analysis" if "segments" in d else "gate")),
                   outcome=outcome, summary=str(d.get("summary") or ""), numbers=numbers,
                   segments=tuple(Segment.from_dict(s) for s in d.get("segments") or ()))


@dataclass(frozen=True)
class ReportInput:
    """Everything the report says about the rollout's decision; the pictures are gathered beside it."""

    rollout_id: str | None
    state: dict[str, Any]  # RoutingState.to_dict() of the rollout reported on
    plan_name: str
    plan_steps: tuple[str, ...]  # the plan's steps as readable lines, "name: what happens"
    step_index: int | None  # where the rollout stands in plan_steps (None: no rollout)
    next_step: str | None  # what the conditions are for
    conditions: tuple[Condition, ...]
    evidence: dict[str, float | None]
    events: tuple[dict[str, Any], ...] = ()  # this rollout's recorded events, oldest first
    event: dict[str, Any] | None = None  # the event this report was written for
    live: bool = True  # the state as it is now (False: a past rollout, or the moment of an event)
    plan_regions: tuple[str, ...] = ()
    thresholds: dict[str, float] = field(default_factory=dict)  # lines on the plots: budget and gate bounds
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
    if inp.event and inp.event.get("action") == "promote":
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


# -- adapters from today's control plane --------------------------------------------------------------
def gate_condition(g: dict[str, Any]) -> Condition:
    """Today's GateResult dict as a condition. No value: inconclusive. A count below its minimum:
    inconclusive (waiting for traffic). Otherwise the gate's own pass or fail."""
    metric, bound, threshold, value = g["metric"], g["bound"], float(g["threshold"]), _num(g.get("value"))
    op = ">=" if bound == "min" else "<="
    shown = "no evidence yet" if value is None else f"{value:.4g}"
    if g["passed"]:
        outcome: Outcome = "pass"
    elif value is None or (bound == "min" and metric in COUNT_METRICS):
        outcome = "inconclusive"
    else:
        outcome = "fail"
    return Condition(name=metric, kind="gate", outcome=outcome, summary=f"{metric} {op} {threshold:g}: {shown}",
                     numbers={"value": value, "threshold": threshold})


def plan_steps(plan: Plan, state: dict[str, Any], ended_full: bool = False) -> tuple[tuple[str, ...], int | None]:
    """Today's plan (fixed shadow/limited/gradual sections) as steps, and the index the state is at."""
    steps = [f"shadow: the candidate runs beside the champion on {plan.shadow.sample:.0%} of requests, off the critical path",
             f"limited: the candidate answers {plan.limited.percent:g}% of listings in "
             f"{', '.join(plan.limited.regions) or 'the regions named at promotion'}"]
    steps += [f"gradual {p:g}%: the candidate answers {p:g}% of listings everywhere" for p in plan.gradual.steps]
    steps.append("full: the candidate becomes the champion")
    stage, percent = state.get("stage"), float(state.get("percent") or 0)
    if ended_full:
        return tuple(steps), len(steps) - 1
    if stage == "shadow":
        return tuple(steps), 0
    if stage == "limited":
        return tuple(steps), 1
    if stage == "gradual":
        reached = [i for i, p in enumerate(plan.gradual.steps) if p <= percent]
        return tuple(steps), 2 + (reached[-1] if reached else 0)
    return tuple(steps), None


def _thresholds(plan: Plan, target: str | None) -> dict[str, float]:
    out = {"max_error_rate": plan.budget.max_error_rate, "max_p99_ms": plan.budget.max_p99_ms}
    for g in plan.gates_for(target) if target else ():
        if g.metric == "agreement" and g.min is not None:
            out["agreement_min"] = g.min
    return out


def _next_label(status_next: str | None, state: dict[str, Any], plan: Plan) -> str | None:
    if status_next == "gradual":
        current = float(state.get("percent") or 0) if state.get("stage") == "gradual" else 0.0
        nxt = [p for p in plan.gradual.steps if p > current]
        return f"gradual {nxt[0]:g}%" if nxt else "gradual"
    return status_next


def from_status(status: Status, plan: Plan, events: list[dict[str, Any]]) -> ReportInput:
    """The live rollout, from `ControlPlane.status()` (the numbers its gates were checked on)."""
    state = status.state.to_dict()
    steps, index = plan_steps(plan, state)
    rid = state.get("rollout_id")
    return ReportInput(
        rollout_id=rid, state=state, plan_name=plan.name, plan_steps=steps, step_index=index,
        next_step=_next_label(status.next_stage, state, plan),
        conditions=tuple(Condition.from_dict(g.to_dict()) for g in status.next_gates),
        evidence=dict(status.evidence), plan_regions=tuple(plan.regions),
        events=_of_rollout(events, rid) if rid else tuple(sorted(events[:IDLE_EVENTS], key=lambda e: e["time"])),
        thresholds=_thresholds(plan, status.next_stage))


def from_outcome(outcome: Change, plan: Plan, events: list[dict[str, Any]], actor: str, reason: str | None) -> ReportInput:
    """The moment of one recorded change (`ControlPlane._commit`'s Outcome): its gates and evidence."""
    rolled_back = outcome.action in ("rollback", "auto-rollback")
    to_full = outcome.action == "promote" and outcome.after.stage.value == "stable"
    shown = outcome.before if (rolled_back or to_full) else outcome.after
    state = shown.to_dict()
    rid = outcome.before.rollout_id or outcome.after.rollout_id
    steps, index = plan_steps(plan, state, ended_full=to_full)
    event = {"time": time.time(), "action": outcome.action, "from": outcome.before.stage.value,
             "to": "full" if to_full else outcome.after.stage.value, "actor": actor, "reason": reason or "",
             "forced": outcome.forced, "run_id": outcome.run_id}
    return ReportInput(
        rollout_id=rid, state=state, plan_name=plan.name, plan_steps=steps, step_index=index,
        next_step=event["to"] if outcome.action == "promote" else None,
        conditions=tuple(Condition.from_dict(g.to_dict()) for g in outcome.gates), evidence=dict(outcome.evidence),
        events=_of_rollout(events, rid), event=event, live=False, plan_regions=tuple(plan.regions),
        thresholds=_thresholds(plan, event["to"]))


def from_events(rollout_id: str, plan: Plan, events: list[dict[str, Any]]) -> ReportInput:
    """A past rollout, from what MLflow recorded: its last state and the gates of its last decision."""
    mine = _of_rollout(events, rollout_id)
    if not mine:
        raise ValueError(f"no recorded events for rollout {rollout_id}")
    last = mine[-1]
    decided = next((e for e in reversed(mine) if e.get("gates")), None)
    to_full = last.get("to") == "full"
    state = {"stage": last.get("to") if not to_full else "gradual", "rollout_id": rollout_id,
             "champion": {"uri": last.get("champion")}, "candidate": {"uri": last.get("candidate")},
             "regions": [r for r in (last.get("regions") or "").split(",") if r],
             "percent": float(last.get("percent") or 0)}
    steps, index = plan_steps(plan, state, ended_full=to_full)
    return ReportInput(
        rollout_id=rollout_id, state=state, plan_name=plan.name, plan_steps=steps, step_index=index,
        next_step=decided.get("to") if decided else None,
        conditions=tuple(Condition.from_dict(g) for g in decided["gates"]) if decided else (),
        evidence={}, events=mine, live=False, plan_regions=tuple(plan.regions),
        thresholds=_thresholds(plan, decided.get("to") if decided else None))


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

"""`rollout plan replay`: a plan run over a logged rollout, to see what it would have done before it can roll
anything back. The rollout's predictions and verdicts stay as they were logged; the replay walks their
moments in time order and, at each, judges the plan's conditions as of then (`assess.judge(as_of=...)`),
decides as the guard would (`guard.decide`, the same function), and follows the people's recorded
promotions and rollbacks. It reports when each condition would have passed or failed, what the plan would
have done, and whether that matches what the guard did live.

"As of then" means what the guard could have read then: a request counts from its `ts` (when its answer
was sent), and the shadow model's answer on it, written on its row later, from when that answer landed
(`shadow_at`; a request logged before that column existed, from its `ts`), so a comparison still in flight
at a moment is not yet compared, nor the candidate's shadow call yet counted in its budget window.
The log's counts are the rollup's, less the shadow answers of the moment's last review.settle_s that landed
after it (roomsight.rollup.known_counts), so they cost what the guard's do, however long the log; the review
sample at a past moment still groups the rollout's compared requests up to it (monitoring.review).

Caveat, said in the output: a different plan would have routed differently, so its candidate would have
answered other requests; the replay judges the traffic as it was routed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select

from roomsight.errors import TransitionError
from roomsight.rollout_state import RoutingState
from roomsight.tables import predictions, review_verdicts
from rollout import assess, stages
from rollout.control import ControlPlane
from rollout.guard import GUARD_ACTOR, decide
from rollout.plan import Plan
from rollout.plan_text import step_label

GRID_POINTS = 200  # evaluation moments spread over the rollout, besides every verdict and event
AUTOMATIC = ("auto-rollback", "auto-pause", "auto-promote")


@dataclass(frozen=True)
class Line:
    time: float
    text: str


@dataclass
class Replay:
    rollout_id: str
    plan: Plan
    lines: list[Line] = field(default_factory=list)
    decisions: list[tuple[float, str, str]] = field(default_factory=list)  # (time, action, step) the plan took by itself
    recorded: list[tuple[float, str, str]] = field(default_factory=list)  # (time, action, step) the guard took live

    @property
    def matches(self) -> bool:
        """Whether the plan's own actions are those the guard took live, in order and on the same steps."""
        return [(a, s) for _, a, s in self.decisions] == [(a, s) for _, a, s in self.recorded]


def moments(cp: ControlPlane, rollout_id: str, start: float, end: float, events: list[dict]) -> list[float]:
    """When to judge: every verdict, every recorded event, and an even grid over the rollout."""
    with cp.engine.connect() as conn:
        verdicts = [t for (t,) in conn.execute(select(review_verdicts.c.ts).where(
            review_verdicts.c.rollout_id == rollout_id, review_verdicts.c.ts >= start, review_verdicts.c.ts <= end))]
    grid = [start + (end - start) * i / GRID_POINTS for i in range(1, GRID_POINTS + 1)] if end > start else []
    return sorted(set(verdicts) | {e["time"] for e in events} | set(grid))


def replay(cp: ControlPlane, rollout_id: str) -> Replay:
    """Run `cp.plan` over the logged rollout `rollout_id` (its events come from the MLflow record)."""
    plan = cp.plan
    events = sorted(cp.history(10_000, rollout_id=rollout_id), key=lambda e: e["time"])
    begun = next((e for e in events if e["action"] == "start"), None)
    if begun is None or not begun.get("state"):
        raise TransitionError(f"no recorded start of rollout {rollout_id} with its state: nothing to replay "
                                     "(`rollout history` lists the rollouts recorded)")
    with cp.engine.connect() as conn:
        last_ts = conn.execute(select(func.max(predictions.c.ts)).where(predictions.c.rollout_id == rollout_id)).scalar()
    end_event = next((e for e in events if e["action"] in ("rollback", "auto-rollback") or e["to"] == "full"), None)
    end = end_event["time"] if end_event else max(last_ts or begun["time"], events[-1]["time"])
    out = Replay(rollout_id, plan)
    out.recorded = [(e["time"], e["action"], e["from_step"]) for e in events if e["action"] in AUTOMATIC]
    first = RoutingState.from_dict(begun["state"])
    # The first step began when its recorded state says, as for a person's promotion (`_follow`).
    state = stages.start(RoutingState(champion=first.champion), first.candidate, rollout_id, plan,  # type: ignore[arg-type]
                         first.since if first.since is not None else begun["time"])
    out.lines.append(Line(begun["time"], f"start: step {step_label(plan, state)} (recorded, by {begun['actor']})"))
    seen: dict[str, str] = {}
    human = [e for e in events if e["action"] in ("promote", "rollback") and e["actor"] != GUARD_ACTOR]
    for t in moments(cp, rollout_id, begun["time"], end, events):
        if not state.in_progress:
            break
        for e in [e for e in human if e["time"] <= t]:
            human.remove(e)
            moved = _follow(out, cp, plan, state, e)
            if not moved.in_progress:
                return out
            if moved != state:  # a new step: its conditions are said afresh, as after the plan's own moves
                seen.clear()
            state = moved
        # What the guard's promotion must pass: the steps a --percent override skips too, as it judges them.
        judged = assess.judge(plan, state, cp.engine, cp.settings, exit_steps=stages.next_promotion(state, plan)[1], as_of=t)
        _changes(out, plan, state, judged, seen, t)
        action = decide(plan, state, judged.watch, judged.exit_outcome, t)
        if action is None:
            continue
        label = step_label(plan, state)
        out.decisions.append((t, {"rollback": "auto-rollback", "pause": "auto-pause", "promote": "auto-promote"}[action.kind], label))
        out.lines.append(Line(t, f"the plan would {action.kind} at step {label}: {action.reason}"))
        if action.kind == "rollback":
            return out
        state = stages.hold(state, action.reason) if action.kind == "pause" else \
            stages.advance(state, plan, stages.target_step(state, plan), _began(events, label, state, t))
        seen.clear()
    return out


def _began(events: list[dict], label: str, state: RoutingState, t: float) -> float:
    """When the plan's own promotion from step `label` at `t` began the next step: when the guard's live one
    from that step stamped its state, if it had by `t`, else `t`. A drift check reads a step's traffic from
    the moment its state says; from the event's, later, none of the step's checks was evidence of it."""
    for e in events:
        if e["action"] == "auto-promote" and e["from_step"] == label and e.get("state"):
            since = RoutingState.from_dict(e["state"]).since
            if since is not None and (state.since is None or state.since < since) and since <= t:
                return since
    return t


def _follow(out: Replay, cp: ControlPlane, plan: Plan, state: RoutingState, e: dict) -> RoutingState:
    """A person's recorded promotion or rollback, judged with this plan as of its moment and then followed."""
    t = e["time"]
    if e["action"] == "rollback":
        out.lines.append(Line(t, f"rollback (recorded, by {e['actor']}): {e['reason']}"))
        return stages.rollback(state)
    target_state = RoutingState.from_dict(e["state"]) if e.get("state") else None
    kind = target_state.stage.value if target_state else e["to"]
    regions = tuple(target_state.regions) if target_state and target_state.regions and kind == "limited" else None
    # The share the person set (a --percent override included) is part of the promotion followed.
    percent = None if target_state is None else \
        {"limited": target_state.region_percent, "gradual": target_state.percent}.get(kind)
    # The step began when the recorded state says, as the guard read it live: the state is stamped before the
    # promotion's conditions are judged and MLflow is reached, the event after. From the event's time, a drift
    # check made in between was no evidence of the step here, and the guard's pause on it did not reproduce.
    began = target_state.since if target_state is not None and target_state.since is not None else t
    began = max(began, state.since or began)  # never before the step this replay took the rollout to itself
    try:
        target = stages.target_step(state, plan, kind)
        moved = stages.advance(state, plan, target, began, regions, percent)
    except TransitionError as exc:
        out.lines.append(Line(t, f"promote to {kind} (recorded, by {e['actor']}): this plan cannot follow it ({exc})"))
        return state
    judged = assess.judge(plan, state, cp.engine, cp.settings, exit_steps=stages.exits_to_check(state, target),
                          watch=False, as_of=t)
    verdict = "its conditions pass" if judged.exit_outcome == "pass" else \
        "this plan would have refused it: " + "; ".join(r.describe() for r in judged.exit if not r.passed)
    out.lines.append(Line(t, f"promote to step {step_label(plan, moved)} (recorded, by {e['actor']}"
                             f"{', forced' if e['forced'] else ''}): {verdict}"))
    return moved


def _changes(out: Replay, plan: Plan, state: RoutingState, judged: assess.Judged, seen: dict[str, str], t: float) -> None:
    """A line whenever a condition's outcome changes on the current step."""
    label = step_label(plan, state)
    for part, results in (("to leave", judged.exit), ("watched", judged.watch)):
        for r in results:
            key = f"{part}:{r.name}"
            if seen.get(key) != r.outcome:
                seen[key] = r.outcome
                out.lines.append(Line(t, f"step {label}, {part}: {r.describe()}"))

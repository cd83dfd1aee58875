"""Where the evidence meets the plan: gather the numbers a set of conditions needs (the log, the review
verdicts, drift) and judge them with the pure functions of `rollout.conditions`. Status, promotion, the
guard and the replay all come through here, so they judge alike; `as_of` judges a past moment.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sqlalchemy import Engine

from analysis import AnalysisResult, analyse
from roomsight.config import Settings
from roomsight.rollout_state import RoutingState
from rollout import conditions, evidence
from rollout.conditions import ConditionResult
from rollout.plan import AnalysisRef, Condition, Gate, OnFail, Plan


@dataclass
class Judged:
    """The conditions to leave a step and those watched on it, judged on one read of the evidence."""

    evidence: dict[str, float | None]
    exit: list[ConditionResult] = field(default_factory=list)
    watch: list[ConditionResult] = field(default_factory=list)

    @property
    def exit_outcome(self) -> str:
        return conditions.overall(self.exit)

    @property
    def failing_watch(self) -> list[ConditionResult]:
        return [r for r in self.watch if r.outcome == "fail"]


def analyses(names: set[str], plan: Plan, engine: Engine, settings: Settings, rollout_id: str,
             as_of: float | None = None) -> dict[str, AnalysisResult]:
    if not names:
        return {}
    from monitoring.review.evidence import review_sample

    sample = review_sample(engine, settings, rollout_id, as_of=as_of)
    return {name: analyse(name, plan.analyses[name], sample) for name in sorted(names)}


def judge(plan: Plan, state: RoutingState, engine: Engine, settings: Settings, *, exit_steps: range | None = None,
          watch: bool = True, as_of: float | None = None, all_evidence: bool = True) -> Judged:
    """The exit conditions of `exit_steps` (default: the current step) and, with `watch`, what the guard
    watches on the current step (the budget too while the candidate answers users). Without
    `all_evidence`, only the evidence those conditions name is gathered (the guard's tick)."""
    rid = state.rollout_id
    # A plan shorter than the step the rollout is on (changed mid-rollout) has no conditions for it: status and
    # rollback, which the refusal to promote points to, still get the evidence.
    if rid is None or state.step is None or not state.in_progress or state.step >= len(plan.steps):
        return Judged(evidence.collect(engine, settings, rid, as_of=as_of, since=state.since).values)
    steps = exit_steps if exit_steps is not None else range(state.step, state.step + 1)
    exits: list[tuple[Condition, OnFail]] = [(c, plan.steps[i].on_fail) for i in steps for c in plan.steps[i].exit]
    watched: list[tuple[Condition, OnFail]] = ([(c, plan.steps[state.step].on_fail)
                                                for c in plan.watched(state.step, state.answers_traffic)] if watch else [])
    named_metrics = {c.metric for c, _ in exits + watched if isinstance(c, Gate)}
    # A rate's count may come from another provider (`ood_share` is the drift provider's, `requests` the log's).
    counts = (n for m in named_metrics for n in conditions.RATE_COUNTS.get(m, ()))
    needed = None if all_evidence else frozenset({*named_metrics, *counts})
    values = evidence.collect(engine, settings, rid, as_of=as_of, needed=needed, since=state.since).values
    named = {c.analysis for c, _ in exits + watched if isinstance(c, AnalysisRef)}
    results = analyses(named, plan, engine, settings, rid, as_of)
    out = Judged(values, exit=_dedup(_judge(exits, values, results)), watch=_dedup(_judge(watched, values, results)))
    if watch and state.answers_traffic:
        b = plan.budget
        w = evidence.candidate_window(engine, rid, b.window, as_of=as_of)
        out.watch.insert(0, conditions.budget(b, w.calls, w.error_rate, w.p99_ms))
    return out


def _judge(pairs: list[tuple[Condition, OnFail]], values: dict[str, float | None],
           results: dict[str, AnalysisResult]) -> list[ConditionResult]:
    return [r for c, on_fail in pairs for r in conditions.judge((c,), values, results, on_fail)]


def _dedup(results: list[ConditionResult]) -> list[ConditionResult]:
    """The same condition on several skipped steps, or watched plan-wide and by the step, is one check: keep
    the first of each name, with the stronger action any of them asks for (a rollback over a pause)."""
    seen: dict[str, ConditionResult] = {}
    for r in results:
        kept = seen.setdefault(r.name, r)
        if r.on_fail == "rollback" and kept.on_fail != "rollback":
            seen[r.name] = replace(kept, on_fail="rollback")
    return list(seen.values())

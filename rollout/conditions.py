"""Conditions judged, pure: a plan's gates, analyses and budget against evidence numbers and analysis
results -> pass, fail or inconclusive, each with the numbers that decided it. No I/O; `rollout.assess`
gathers the evidence.

A gate on a count below its `min` is inconclusive (the evidence is still coming in), never a failure;
any gate without evidence yet is inconclusive too, and so is a gate on a rate (or a p99, or a precision from
verdicts) over fewer than MIN_BUDGET_CALLS of its count (RATE_COUNTS), as the budget is.
Only `pass` lets a step end, and only `fail` makes the guard act.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from analysis import AnalysisResult, Outcome
from rollout.metrics import COUNT_METRICS
from rollout.plan import MIN_BUDGET_CALLS, AnalysisRef, Budget, Condition, Gate, OnFail


# A metric read over counts (a rate, a p99 over its calls, a precision over reviewed answers) -> those counts, which
# the judgement gathers with it (rollout.assess). Over the first few of a count it says little: one failed call
# among them read as a 100% error rate, one slow call as the p99, one wrong verdict as a precision of 0, one
# flagged photo as an out-of-domain share of 1, and a watched gate rolled the rollout back on it.
RATE_COUNTS: dict[str, tuple[str, ...]] = {
    "agreement": ("compared",), "candidate_error_rate": ("candidate_requests",),
    "candidate_p99_ms": ("candidate_requests",), "champion_p99_ms": ("champion_requests",),
    "ood_share": ("requests",), "step_agreement": ("step_compared",),
    "step_candidate_error_rate": ("step_candidate_requests",), "step_ood_share": ("step_requests",),
    "candidate_precision_lower": ("candidate_reviewed",), "champion_precision_lower": ("champion_reviewed",),
    "precision_margin": ("candidate_reviewed", "champion_reviewed"), "candidate_win_rate": ("decided_disagreements",),
    "min_class_precision": ("candidate_reviewed",)}


@dataclass(frozen=True)
class ConditionResult:
    name: str  # e.g. "agreement >= 0.6", "analysis quality", "budget"
    kind: str  # gate | analysis | budget
    outcome: Outcome
    detail: str  # the numbers, in words
    value: float | None = None
    on_fail: OnFail = "rollback"
    analysis: AnalysisResult | None = None
    numbers: dict[str, float | None] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.outcome == "pass"

    def describe(self) -> str:
        return f"{self.outcome.upper()} {self.name}: {self.detail}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "outcome": self.outcome, "detail": self.detail,
                "value": self.value, "on_fail": self.on_fail, "numbers": self.numbers,
                "analysis": self.analysis.to_dict() if self.analysis else None}


def gate(g: Gate, values: dict[str, float | None], on_fail: OnFail = "rollback") -> ConditionResult:
    value = values.get(g.metric)
    action = g.on_fail or on_fail
    if value is None:
        return ConditionResult(g.name, "gate", "inconclusive", "no evidence yet", None, action)
    short = [(name, n) for name in RATE_COUNTS.get(g.metric, ()) if (n := values.get(name)) is not None and n < MIN_BUDGET_CALLS]
    if short:
        over = " and ".join(f"{n:.0f} {name}" for name, n in short)
        return ConditionResult(g.name, "gate", "inconclusive", f"{value:.4g} over {over} so far; judged from "
                               f"{MIN_BUDGET_CALLS}", value, action)
    ok = value >= g.min if g.min is not None else value <= g.max  # type: ignore[operator]
    if ok:
        return ConditionResult(g.name, "gate", "pass", f"{value:.4g}", value, action)
    if g.min is not None and g.metric in COUNT_METRICS:
        return ConditionResult(g.name, "gate", "inconclusive", f"{value:.4g} so far; {g.min - value:.4g} more wanted",
                               value, action)
    return ConditionResult(g.name, "gate", "fail", f"{value:.4g}", value, action)


def analysis(ref: AnalysisRef, result: AnalysisResult, on_fail: OnFail = "rollback") -> ConditionResult:
    # The summary already says how many more verdicts an inconclusive analysis likely needs.
    return ConditionResult(ref.name, "analysis", result.outcome, result.summary, result.estimate, ref.on_fail or on_fail,
                           result)


def budget(b: Budget, calls: float, error_rate: float | None, p99_ms: float | None) -> ConditionResult:
    """The candidate's errors and latency over its last `b.window` calls."""
    numbers = {"calls": calls, "error_rate": error_rate, "p99_ms": p99_ms}
    if calls < MIN_BUDGET_CALLS:
        return ConditionResult("budget", "budget", "inconclusive", f"{calls:.0f} candidate calls so far; judged from "
                               f"{MIN_BUDGET_CALLS}", None, "rollback", numbers=numbers)
    if error_rate is not None and error_rate > b.max_error_rate:
        return ConditionResult("budget", "budget", "fail", f"candidate error rate {error_rate:.1%} over its last {calls:.0f} "
                               f"calls exceeds the budget {b.max_error_rate:.1%}", error_rate, "rollback", numbers=numbers)
    if p99_ms is not None and p99_ms > b.max_p99_ms:
        return ConditionResult("budget", "budget", "fail", f"candidate p99 latency {p99_ms:.0f} ms over its last {calls:.0f} "
                               f"calls exceeds the budget {b.max_p99_ms:.0f} ms", p99_ms, "rollback", numbers=numbers)
    shown = "n/a" if error_rate is None else f"{error_rate:.1%}"
    p99 = "n/a" if p99_ms is None else f"{p99_ms:.0f} ms"
    return ConditionResult("budget", "budget", "pass", f"error rate {shown}, p99 {p99} over the last {calls:.0f} calls",
                           error_rate, "rollback", numbers=numbers)


def judge(conditions: tuple[Condition, ...], values: dict[str, float | None], analyses: dict[str, AnalysisResult],
          on_fail: OnFail = "rollback") -> list[ConditionResult]:
    """Each condition against the evidence; `analyses` holds the result of every analysis the conditions name."""
    out = []
    for c in conditions:
        if isinstance(c, AnalysisRef):
            out.append(analysis(c, analyses[c.analysis], on_fail))
        else:
            out.append(gate(c, values, on_fail))
    return out


def overall(results: list[ConditionResult]) -> Outcome:
    """fail if any fails; else inconclusive if any is; else pass (also when there is nothing to check)."""
    outcomes = {r.outcome for r in results}
    return "fail" if "fail" in outcomes else "inconclusive" if "inconclusive" in outcomes else "pass"

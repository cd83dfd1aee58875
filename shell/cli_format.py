"""How the control plane's objects read in a terminal: the routing state in a sentence, conditions with
their outcome in colour, an analysis's segments as a table. Shared by `rollout start`, `promote`,
`rollback`, `status` and `serve`."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from roomsight.rollout_state import RoutingState
from rollout.conditions import ConditionResult

COLOUR = {"pass": "green", "fail": "red", "inconclusive": "yellow"}


def describe_state(s: RoutingState, step: str | None = None) -> str:
    champ = f"champion {s.champion.uri}"
    where = f"step {step}" if step else f"stage {s.stage}"
    if s.candidate is None:
        return f"[bold]{s.stage}[/]: {champ} answers everything"
    cand = f"candidate {s.candidate.uri}"
    held = f" [red](held: {s.held})[/]" if s.held else ""
    if not s.answers_traffic:
        return f"[bold]{where}[/]: {champ} answers; {cand} runs on {s.shadow_sample:.0%} in shadow{held}"
    parts = []
    if s.percent > 0:
        parts.append(f"{s.percent:g}% of listings everywhere")
    if s.regions and s.region_percent > s.percent:
        parts.append(("all listings" if s.region_percent >= 100 else f"{s.region_percent:g}% of listings")
                     + f" in {', '.join(s.regions)}")
    return f"[bold]{where}[/]: {cand} answers {' and '.join(parts)}; {champ} the rest{held}"


def print_conditions(console: Console, results: list[ConditionResult], indent: str = "  ") -> None:
    for r in results:
        console.print(f"{indent}[{COLOUR[r.outcome]}]{r.describe()}[/]", highlight=False)
        if r.analysis is not None and r.analysis.segments:
            console.print(segment_table(r), highlight=False)


def segment_table(r: ConditionResult) -> Table:
    """An analysis per segment: the candidate minus the champion, with its any-time bounds. Their levels are
    in the analysis's summary (a cell's lower bound is read at the part of alpha it clears on), so the header
    names none."""
    t = Table("segment", "outcome", "candidate - champion", "bounds", "verdicts", box=None, padding=(0, 1, 0, 4))
    for seg in r.analysis.segments if r.analysis else ():
        est = "n/a" if seg.estimate is None else f"{seg.estimate:+.3f}"
        cs = "n/a" if seg.lower is None or seg.upper is None else f"[{seg.lower:+.3f}, {seg.upper:+.3f}]"
        t.add_row(f"{seg.key}={seg.value}", f"[{COLOUR[seg.outcome]}]{seg.outcome}[/]", est, cs, str(seg.n))
    return t


def pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1%}"


def mlflow_behind(pending: tuple[str, ...] | int) -> str | None:
    """A warning when MLflow has not taken a change (its record, its aliases) or several changes yet."""
    if not pending:
        return None
    what = (f"{pending} rollout change(s)" if isinstance(pending, int)
            else f"this change's {' and '.join(pending)}")
    return (f"[yellow]MLflow could not take {what} yet[/]; routing is as shown, and the change is given to MLflow "
            "once it is reachable (by `rollout serve`'s guard, or the next change)")

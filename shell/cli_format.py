"""How the control plane's objects read in a terminal: the routing state in a sentence, conditions with
their outcome in colour, an analysis's segments as a table, the rollout's events. Shared by `rollout start`,
`promote`, `rollback`, `status`, `history` and `serve`."""

from __future__ import annotations

from rich import box
from rich.cells import cell_len
from rich.console import Console, Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

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


HISTORY_COLUMNS = ("time (UTC)", "action", "from", "to", "actor", "champion", "candidate")
_GAP = 2  # between two columns: a cell's padding and the box's blank rule, collapsed


def history_table(rows: list[tuple[str, ...]], reasons: list[Text], width: int) -> Group:
    """Events as table rows, each with its reason on indented lines of its own beneath: in a column of its own the
    reason had the width the others left, at 80 columns a few characters a line with its longer words cut. Each
    row is a table of its own (Rich spans no cell over columns), all of the same widths."""
    widths = _fit(rows, width - _GAP * (len(HISTORY_COLUMNS) - 1))

    def table(*cells: tuple[str, ...]) -> Table:
        t = Table(box=box.SIMPLE_HEAD, show_header=not cells, show_edge=False, pad_edge=False, collapse_padding=True)
        for name, w in zip(HISTORY_COLUMNS, widths):
            t.add_column(name, width=w)
        for row in cells:
            t.add_row(*(Text(c) for c in row))  # as written: a "[...]" in an actor's name is no markup
        return t

    indented = (Padding(reason, (0, 0, 0, 4), expand=False) for reason in reasons)
    return Group(table(), *(part for row, reason in zip(rows, indented) for part in (table(row), reason)))


def _fit(rows: list[tuple[str, ...]], room: int) -> list[int]:
    """Each column as wide as its longest cell, the widest narrowed first (to its longest word, no further) until
    the columns fit in room."""
    columns = list(zip(HISTORY_COLUMNS, *rows))
    widths = [max(cell_len(c) for c in column) for column in columns]
    least = [max(cell_len(word) for c in column for word in c.split() or [""]) for column in columns]
    while sum(widths) > room and (narrower := [i for i, w in enumerate(widths) if w > least[i]]):
        widths[max(narrower, key=lambda i: widths[i])] -= 1
    return widths


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

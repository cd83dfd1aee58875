"""The report's plots over time, drawn with matplotlib's Agg canvas (no display, no pyplot state, so it
is safe in the page's background thread) and inlined as PNG data: URIs. A plot with nothing to show is
None, and the report says so in words instead of drawing empty axes."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from rollout.report.reviews import PrecisionPoint
from rollout.report.series import Series, planned_share

CHAMPION, CANDIDATE = "#4c6a92", "#e07a1f"
REGION_COLOURS = ("#2a9d8f", "#8e5ea2", "#e76f51", "#457b9d", "#6a994e", "#bc4749")
LIMIT = "#c0392b"
DPI = 150
Events = tuple[dict[str, Any], ...] | list[dict[str, Any]]  # recorded rollout events, oldest first


@dataclass(frozen=True)
class Plot:
    key: str
    title: str
    caption: str
    uri: str  # data:image/png;base64,...


def _when(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


def _figure(height: float = 2.6) -> tuple[Figure, Axes]:
    # Narrow figures with large text: shown at about half size in two columns, and at a phone's width.
    fig = Figure(figsize=(5.2, height), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", color="#e6e6e6", linewidth=0.8)
    ax.set_axisbelow(True)
    ax.tick_params(labelsize=9)
    locator = AutoDateLocator(minticks=3, maxticks=7)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator, tz=timezone.utc))
    return fig, ax


def _events(ax: Axes, events: Events) -> None:
    """A thin line at every recorded change, labelled with where it went (what it was, when it went nowhere new:
    a pause's step is the one the rollout was already on)."""
    for e in events:
        label = e.get("to_step") or e.get("to") or ""
        if e.get("action") in ("rollback", "auto-rollback", "auto-pause"):
            label = e["action"]
        ax.axvline(_when(e["time"]), color="#9a9a9a", linewidth=0.8, linestyle=(0, (2, 2)), zorder=0)
        ax.annotate(label, (_when(e["time"]), 1.0), xycoords=("data", "axes fraction"), fontsize=8, color="#666",
                    rotation=90, ha="right", va="top", xytext=(-2, -2), textcoords="offset points")


def _encode(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _legend(ax: Axes, ncols: int = 4) -> None:
    ax.legend(fontsize=8, frameon=False, loc="lower left", bbox_to_anchor=(0, 1.0), ncols=ncols, borderaxespad=0.2,
              handlelength=1.6, columnspacing=1.0)


def _points(times: list[float], values: list[float | None]) -> tuple[list[datetime], list[float]]:
    pairs = [(_when(t), v) for t, v in zip(times, values) if v is not None]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _plain(text: str) -> str:
    """Text drawn as written: matplotlib reads what is between dollar signs as mathtext, and a region is
    whatever a caller sent (a formula it cannot parse fails the figure, and the report with it)."""
    return text.replace("$", r"\$")


def _percent(share: float) -> str:
    """A share as a percentage with the digits it has: rounded to the percent, the ticks of an axis up to a
    few percent repeat (0%, 0%, 1%, 2%, 2%) and a bound of 0.5% reads 0%."""
    return f"{share * 100:.3g}%"


def _mid(s: Series) -> list[float]:
    return [t + s.width / 2 for t in s.times]


def agreement(s: Series, events: Events, minimum: float | None) -> Plot | None:
    if not any(s.compared):
        return None
    fig, ax = _figure()
    x, y = _points(_mid(s), s.agreement())
    ax.plot(x, y, color=CANDIDATE, marker="o", markersize=2.5, linewidth=1.4, label="agreement per interval")
    if minimum is not None:
        ax.axhline(minimum, color=LIMIT, linestyle=":", linewidth=1.2, label=f"gate: at least {_percent(minimum)}")
    ax.set_ylim(0, 1.05)
    ax.yaxis.set_major_formatter(lambda v, _: _percent(v))
    _events(ax, events)
    _legend(ax)
    return Plot("agreement", "Agreement between the models",
                "Share of compared requests where the models agree (the same answer, confidences within "
                f"serve.disagreement_gap), per {_width(s.width)}.", _encode(fig))


def precision(over_time: dict[str, list[PrecisionPoint]], events: Events) -> Plot | None:
    if not over_time or not any(p.n for pts in over_time.values() for p in pts):
        return None
    fig, ax = _figure()
    for model, colour in (("champion", CHAMPION), ("candidate", CANDIDATE)):
        pts = [p for p in over_time.get(model, []) if p.value is not None]
        if not pts:
            continue
        x = [_when(p.time) for p in pts]
        ax.fill_between(x, [p.lower for p in pts], [p.upper for p in pts], color=colour, alpha=0.18, linewidth=0,
                        step="post")
        ax.step(x, [p.value for p in pts], where="post", color=colour, linewidth=1.6,
                label=f"{model} ({pts[-1].n} answers reviewed)")
    ax.set_ylim(0, 1.05)
    ax.yaxis.set_major_formatter(lambda v, _: _percent(v))
    _events(ax, events)
    _legend(ax)
    return Plot("precision", "Reviewed precision",
                "Each model's precision on the reviewed photos it answered, over all verdicts up to that moment; "
                "the band is the Wilson 95% interval.", _encode(fig))


def share(s: Series, events: Events) -> Plot | None:
    if not s.regions:
        return None
    fig, ax = _figure(2.8)
    for (region, rs), colour in zip(s.regions.items(), REGION_COLOURS * 4):
        x, y = _points(_mid(s), rs.share())
        ax.plot(x, y, color=colour, marker="o", markersize=2.5, linewidth=1.4, label=_plain(region))
        planned = planned_share(events, region, s.times, s.width)
        ax.step([_when(t) for t in s.times] + [_when(s.times[-1] + s.width)], planned + planned[-1:], where="post",
                color=colour, linestyle="--", linewidth=1, alpha=0.8)
    ax.set_ylim(-0.03, 1.05)
    ax.yaxis.set_major_formatter(lambda v, _: _percent(v))
    _events(ax, events)
    ax.plot([], [], color="#777", linestyle="--", linewidth=1, label="plan")
    _legend(ax)
    return Plot("share", "Candidate's share of traffic per region",
                "Share of each region's requests the candidate answered (solid) against the share the plan routes to it "
                "(dashed); out-of-domain photos held on the champion make the first lower.", _encode(fig))


def errors(s: Series, events: Events, budget: float | None) -> Plot | None:
    if not any(s.candidate_calls):
        return None
    fig, ax = _figure()
    x, y = _points(_mid(s), s.error_rate())
    ax.plot(x, y, color=CANDIDATE, marker="o", markersize=2.5, linewidth=1.4, label="candidate error rate")
    top = max([v for v in y] + [0.0])
    if budget is not None:
        ax.axhline(budget, color=LIMIT, linestyle=":", linewidth=1.2, label=f"budget: at most {_percent(budget)}")
        top = max(top, budget)
    ax.set_ylim(0, max(top * 1.25, 0.01))
    ax.yaxis.set_major_formatter(lambda v, _: _percent(v))
    _events(ax, events)
    _legend(ax)
    total, failed = sum(s.candidate_calls), sum(s.candidate_errors)
    return Plot("errors", "Candidate errors",
                f"Share of candidate calls that failed or timed out, per {_width(s.width)} "
                f"({failed} of {total} calls in all).", _encode(fig))


def latency(s: Series, events: Events, budget_ms: float | None) -> Plot | None:
    if not any(v is not None for v in (*s.candidate_ms_mean, *s.champion_ms_mean)):
        return None
    fig, ax = _figure()
    top = 0.0
    for name, mean, peak, colour in (("candidate", s.candidate_ms_mean, s.candidate_ms_max, CANDIDATE),
                                     ("champion", s.champion_ms_mean, s.champion_ms_max, CHAMPION)):
        x, y = _points(_mid(s), mean)
        if not y:
            continue
        ax.plot(x, y, color=colour, linewidth=1.4, label=f"{name} mean")
        xm, ym = _points(_mid(s), peak)
        ax.plot(xm, ym, color=colour, linewidth=0.8, linestyle=":", label=f"{name} max")
        top = max(top, *ym)
    caption = f"Model time per call, mean and maximum per {_width(s.width)}."
    if budget_ms is not None and budget_ms <= top * 3:
        ax.axhline(budget_ms, color=LIMIT, linestyle=":", linewidth=1.2, label=f"p99 budget {budget_ms:g} ms")
        top = max(top, budget_ms)
    elif budget_ms is not None:
        caption += f" The p99 budget ({budget_ms:g} ms) is far above, off this scale."
    ax.set_ylim(0, max(top * 1.15, 1.0))
    ax.set_ylabel("ms", fontsize=9)
    _events(ax, events)
    _legend(ax, ncols=2)
    return Plot("latency", "Latency", caption, _encode(fig))


def _width(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"{unit}" if n == 1 else f"{n} {unit}s"
    return "second" if seconds == 1 else f"{seconds:g} seconds"

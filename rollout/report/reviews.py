"""What the verdicts say, for the report: each model's reviewed precision over time with its Wilson
interval, and per segment (region, predicted class, out-of-domain flag). The numbers come from
`monitoring.review.stats` on the rows `monitoring.review.queue.reviewed` returns: the functions and rows
the review gates read, so the report cannot disagree with them.

Verdicts are bounded by what people can review; the log is not, so the only read of the prediction log
here is the out-of-domain flags of the reviewed requests, by request id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select

from monitoring.review import queue
from monitoring.review.stats import UNUSABLE, Precision, Reviewed, precision, summarize
from roomsight.tables import predictions

MAX_POINTS = 40  # points on the precision-over-time plot
_CHUNK = 500  # request ids per IN (...) query


@dataclass(frozen=True)
class PrecisionPoint:
    time: float
    value: float | None
    lower: float | None
    upper: float | None
    n: int


@dataclass(frozen=True)
class SegmentRow:
    key: str  # region | predicted class | out-of-domain
    value: str
    reviewed: int
    champion: Precision
    candidate: Precision


@dataclass
class ReviewView:
    reviewed: int
    unusable: int
    disagreements: int
    candidate_right: int
    champion_right: int
    champion: Precision
    candidate: Precision
    over_time: dict[str, list[PrecisionPoint]] = field(default_factory=dict)  # champion / candidate
    segments: list[SegmentRow] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)  # the verdict rows, with `ood_flags`


def ood_flags(engine: Engine, request_ids: list[str]) -> dict[str, list[str]]:
    """The out-of-domain flags logged with each of these requests (bounded: looked up by id)."""
    p = predictions.c
    out: dict[str, list[str]] = {}
    with engine.connect() as conn:
        for i in range(0, len(request_ids), _CHUNK):
            chunk = request_ids[i:i + _CHUNK]
            for rid, ood in conn.execute(select(p.request_id, p.ood).where(p.request_id.in_(chunk))):
                out[rid] = list((ood or {}).get("flags") or [])
    return out


def review_view(engine: Engine, rollout_id: str) -> ReviewView:
    rows = queue.reviewed(engine, rollout_id)
    flags = ood_flags(engine, [r["request_id"] for r in rows])
    for r in rows:
        r["ood_flags"] = flags.get(r["request_id"], [])
    items = queue.as_reviewed(rows)
    s = summarize(items)
    return ReviewView(reviewed=s.reviewed, unusable=s.unusable, disagreements=s.disagreements,
                      candidate_right=s.candidate_right, champion_right=s.champion_right,
                      champion=s.champion.overall, candidate=s.candidate.overall,
                      over_time=over_time(items, [r["ts"] for r in rows]), segments=segments(items, rows), rows=rows)


def over_time(items: list[Reviewed], times: list[float], max_points: int = MAX_POINTS) -> dict[str, list[PrecisionPoint]]:
    """Each model's precision on the verdicts given up to each moment (cumulative), at most `max_points`
    moments spread evenly over the verdicts. `times` are the verdicts' times, in the order of `items`."""
    if not items:
        return {}
    order = sorted(range(len(items)), key=lambda i: times[i])
    step = max(1, len(order) // max_points)
    cuts = sorted({*range(step, len(order) + 1, step), len(order)})
    out: dict[str, list[PrecisionPoint]] = {"champion": [], "candidate": []}
    for k in cuts:
        seen = [items[i] for i in order[:k]]
        t = times[order[k - 1]]
        for model in out:
            p = precision(seen, model).overall
            ci = p.interval
            out[model].append(PrecisionPoint(t, p.value, ci[0] if ci else None, ci[1] if ci else None, p.n))
    return out


def segments(items: list[Reviewed], rows: list[dict[str, Any]]) -> list[SegmentRow]:
    """Both models' precision per region, per predicted class (each model's own answers of that class)
    and for photos flagged out-of-domain or not."""
    out: list[SegmentRow] = []
    for region in sorted({it.region for it in items}):
        subset = [it for it in items if it.region == region]
        s = summarize(subset)
        out.append(SegmentRow("region", region, len(subset), s.champion.overall, s.candidate.overall))
    champ, cand = precision(items, "champion").per_class, precision(items, "candidate").per_class
    for cls in sorted(set(champ) | set(cand)):
        n = sum(1 for it in items if it.truth != UNUSABLE and cls in (it.champion, it.candidate))
        out.append(SegmentRow("predicted class", cls, n, champ.get(cls, Precision(0, 0)), cand.get(cls, Precision(0, 0))))
    names = sorted({f for r in rows for f in r["ood_flags"]})
    for name in (*names, "none") if names else ():
        subset = [it for it, r in zip(items, rows) if (name in r["ood_flags"] if name != "none" else not r["ood_flags"])]
        s = summarize(subset)
        out.append(SegmentRow("out-of-domain", name, len(subset), s.champion.overall, s.candidate.overall))
    return out

"""A rollout's logged traffic over time, per region: one SQL GROUP BY over time buckets, so the database
returns a few hundred rows however many millions it logged. Buckets of a minute or more are sums over the
per-minute rollup the database keeps (roomsight.rollup: one row per minute and region, not per request);
shorter ones, for a rollout of less than MAX_BUCKETS minutes, group its rows.

The buckets are aligned to a round width (seconds, minutes, hours) chosen so that a rollout's span fits
in at most `MAX_BUCKETS`. The counts follow `rollout.evidence.log_evidence`'s definitions (what a
"candidate call" and a "comparison" are), so the series add up to the evidence the gates read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from sqlalchemy import Engine, Integer, and_, case, cast, func, select, text

from roomsight.rollup import MINUTE_S
from roomsight.tables import candidate_ran, predictions, traffic_minutes

MAX_BUCKETS = 60
_WIDTHS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
           2 * 86400, 7 * 86400)


@dataclass
class RegionSeries:
    requests: list[int]
    candidate_served: list[int]

    def share(self) -> list[float | None]:
        """The candidate's share of the region's answers per bucket (None: no requests then)."""
        return [s / r if r else None for s, r in zip(self.candidate_served, self.requests)]


@dataclass
class Series:
    """Per-bucket totals; index i covers [times[i], times[i] + width)."""

    width: float
    times: list[float]
    requests: list[int]
    compared: list[int]
    disagreements: list[int]
    candidate_calls: list[int]
    candidate_errors: list[int]
    candidate_ms_mean: list[float | None]
    candidate_ms_max: list[float | None]
    champion_ms_mean: list[float | None]
    champion_ms_max: list[float | None]
    regions: dict[str, RegionSeries] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.requests)

    def agreement(self) -> list[float | None]:
        return [1 - d / c if c else None for d, c in zip(self.disagreements, self.compared)]

    def error_rate(self) -> list[float | None]:
        return [e / n if n else None for e, n in zip(self.candidate_errors, self.candidate_calls)]


def bucket_width(span_s: float, max_buckets: int = MAX_BUCKETS) -> float:
    """The smallest round width that covers `span_s` in at most `max_buckets` buckets."""
    need = span_s / max_buckets
    return float(next((w for w in _WIDTHS if w >= need), math.ceil(need / 86400) * 86400))


def _bucket(engine: Engine, t0: float, width: float):  # noqa: ANN202 - a SQL expression
    """floor((ts - t0) / width). SQLite's CAST to INTEGER truncates, which is floor for the non-negative
    values here; PostgreSQL's rounds, so it gets floor()."""
    offset = (predictions.c.ts - t0) / width
    if engine.dialect.name == "sqlite":
        return cast(offset, Integer)
    return cast(func.floor(offset), Integer)


def span(engine: Engine, rollout_id: str) -> tuple[float, float] | None:
    """First and last logged time of a rollout (two ends of an index range); None when nothing is logged."""
    p = predictions.c
    with engine.connect() as conn:
        lo = conn.execute(select(func.min(p.ts)).where(p.rollout_id == rollout_id)).scalar()
        hi = conn.execute(select(func.max(p.ts)).where(p.rollout_id == rollout_id)).scalar()
    return None if lo is None else (float(lo), float(hi))


def traffic(engine: Engine, rollout_id: str) -> Series | None:
    """The rollout's traffic per time bucket and region; None when it has logged nothing."""
    found = span(engine, rollout_id)
    if found is None:
        return None
    lo, hi = found
    width = bucket_width(max(hi - lo, 1.0))
    t0 = math.floor(lo / width) * width
    n = int((hi - t0) // width) + 1
    rows = (_from_minutes if width >= MINUTE_S else _from_log)(engine, rollout_id, t0, width, lo, hi)
    s = Series(width=width, times=[t0 + i * width for i in range(n)], requests=[0] * n, compared=[0] * n,
               disagreements=[0] * n, candidate_calls=[0] * n, candidate_errors=[0] * n,
               candidate_ms_mean=[None] * n, candidate_ms_max=[None] * n, champion_ms_mean=[None] * n,
               champion_ms_max=[None] * n)
    ms: dict[str, list[list[float]]] = {"cand": [[0.0, 0.0] for _ in range(n)], "champ": [[0.0, 0.0] for _ in range(n)]}
    for (i, region, req, served, compared, dis, calls, errors, c_sum, c_n, c_max, h_sum, h_n, h_max) in rows:
        i = min(max(int(i), 0), n - 1)
        reg = s.regions.setdefault(region, RegionSeries([0] * n, [0] * n))
        reg.requests[i] += int(req)
        reg.candidate_served[i] += int(served or 0)
        s.requests[i] += int(req)
        s.compared[i] += int(compared or 0)
        s.disagreements[i] += int(dis or 0)
        s.candidate_calls[i] += int(calls or 0)
        s.candidate_errors[i] += int(errors or 0)
        for key, total, count, top, peak in (("cand", c_sum, c_n, c_max, s.candidate_ms_max),
                                             ("champ", h_sum, h_n, h_max, s.champion_ms_max)):
            if count:
                ms[key][i][0] += float(total)
                ms[key][i][1] += int(count)
                peak[i] = max(peak[i] or 0.0, float(top))
    for i in range(n):
        for key, mean in (("cand", s.candidate_ms_mean), ("champ", s.champion_ms_mean)):
            total, count = ms[key][i]
            mean[i] = total / count if count else None
    s.regions = dict(sorted(s.regions.items()))
    return s


# Each reader returns, per bucket index and region: requests, candidate answers, comparisons,
# disagreements, candidate calls and errors, then the sum, count and maximum of each model's latency.
def _from_minutes(engine: Engine, rollout_id: str, t0: float, width: float, lo: float, hi: float) -> list:
    """Buckets of whole minutes from the rollup the database keeps: one row per minute and region."""
    m = traffic_minutes.c
    b = ((m.minute * MINUTE_S - int(t0)) // int(width)).label("b")  # whole numbers: t0 and width are whole minutes
    query = (select(b, m.region, func.sum(m.requests), func.sum(m.candidate_served), func.sum(m.compared),
                    func.sum(m.disagreements), func.sum(m.candidate_calls), func.sum(m.candidate_errors),
                    func.sum(m.candidate_ms_sum), func.sum(m.candidate_timed), func.max(m.candidate_ms_max),
                    func.sum(m.champion_ms_sum), func.sum(m.champion_timed), func.max(m.champion_ms_max))
             .where(m.rollout_id == rollout_id).group_by(b, m.region))
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(query) if r[2]]


def _from_log(engine: Engine, rollout_id: str, t0: float, width: float, lo: float, hi: float) -> list:
    """Buckets shorter than a minute, from the log's rows: the rollout spans less than MAX_BUCKETS minutes."""
    p = predictions.c
    ran = text(candidate_ran())
    timed = and_(ran, p.candidate_ms.is_not(None))
    b = _bucket(engine, t0, width).label("b")

    def count_if(cond):  # noqa: ANN001, ANN202
        return func.sum(case((cond, 1), else_=0))

    query = (select(b, p.region, func.count(), count_if(p.served_by == "candidate"), func.count(p.disagreement),
                    count_if(p.disagreement.is_(True)), count_if(ran), count_if(and_(ran, p.candidate_error.is_not(None))),
                    func.sum(case((timed, p.candidate_ms), else_=None)), count_if(timed),
                    func.max(case((timed, p.candidate_ms), else_=None)),
                    func.sum(p.champion_ms), func.count(p.champion_ms), func.max(p.champion_ms))
             .where(p.rollout_id == rollout_id, p.ts >= lo, p.ts <= hi).group_by(b, p.region))
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(query)]


def planned_share(events: tuple[dict, ...] | list[dict], region: str, times: list[float], width: float) -> list[float]:
    """The share of a region's listings the plan put on the candidate at the end of each bucket, from the
    state each recorded event left (after `full` the candidate, now champion, answers all of them)."""
    from rollout.records import live_at

    out = []
    for t in times:
        share = 0.0
        for e in events:
            if e["time"] > t + width:
                break
            live = live_at(e, region)
            share = 1.0 if e.get("to") == "full" else (live.candidate_share if live else 0.0)
        out.append(share)
    return out

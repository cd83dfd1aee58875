"""Evidence from review verdicts, read with bounded queries (the rollout's resolved items, and counts of its
log by SQL GROUP BY; never every prediction row):

- `review_sample`: what the analyses read (roomsight.verdicts.ReviewSample);
- `evidence`: today's gate metrics (`rollout.plan.METRICS` under "review verdicts"), kept so plans that
  name them still load and so the old gates can be compared with the analyses side by side.

Both take `as_of` (unix seconds): only what was known then (predictions logged and truths resolved by
then), so a plan can be replayed over a rollout's past.
"""

from __future__ import annotations

import math
import weakref
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, func, select

from monitoring.review.queue import as_reviewed
from monitoring.review.sampling import compared_sql, stratum_sql
from monitoring.review.stats import gate_metrics, summarize
from roomsight.config import Settings
from roomsight.tables import predictions, review_fill, review_items
from roomsight.verdicts import IN_DOMAIN, STRATA, UNSURE, Cell, CountRow, ReviewSample, VerdictRow

# Rows logged this close before the oldest unresolved item are still behind it.
FRONTIER_EPS = 1e-6


def evidence(engine: Engine, settings: Settings, rollout_id: str, as_of: float | None = None) -> dict[str, float | None]:
    """reviewed, candidate/champion precision lower bounds, their margin, the weakest candidate class and
    the candidate's win rate on disagreements, counted unweighted over resolved items (as gates have read
    them so far). Read-only: filling the queue is the reviewer service's job."""
    it, p = review_items.c, predictions.c
    q = (select(it.truth, it.region, p.champion_label, p.candidate_label, p.disagreement)
         .select_from(review_items.join(predictions, p.request_id == it.request_id))
         .where(it.rollout_id == rollout_id, it.truth.is_not(None)))
    if as_of is not None:
        q = q.where(it.resolved_at <= as_of)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(q)]
    return gate_metrics(summarize(as_reviewed(rows)))


def _ood_flag() -> object:
    return func.coalesce(predictions.c.ood[("flags", 0)].as_string(), IN_DOMAIN)


def frontier(engine: Engine, rollout_id: str, as_of: float | None = None) -> float | None:
    """The time up to which every sampled disagreement of the rollout has its truth resolved (and every
    logged row has been sampled): the sequential comparison reads the log and the verdicts up to it. None
    before the first fill."""
    it, f = review_items.c, review_fill.c
    upto = math.inf if as_of is None else as_of
    with engine.connect() as conn:
        settled = conn.execute(select(f.settled_to).where(f.rollout_id == rollout_id)).scalar()
        # Unresolved then: no truth yet, or a truth resolved later (items queued later count too).
        oldest = conn.execute(select(func.min(it.logged_at)).where(
            it.rollout_id == rollout_id, it.reason == "disagreement",
            (it.resolved_at.is_(None)) | (it.resolved_at > upto))).scalar()
    if settled is None:
        return None
    return min(upto, settled, math.inf if oldest is None else oldest - FRONTIER_EPS)


def review_sample(engine: Engine, settings: Settings, rollout_id: str, as_of: float | None = None) -> ReviewSample:
    """The rollout's resolved verdicts with their inclusion probabilities and segment cells, and the counts
    of its compared predictions per stratum and cell (settled: logged up to the frontier)."""
    p, it = predictions.c, review_items.c
    edge = frontier(engine, rollout_id, as_of)
    keys = (stratum_sql(settings.review.low_confidence), p.region, p.champion_label, _ood_flag(),
            p.champion_label != p.candidate_label, p.champion_label != UNSURE, p.candidate_label != UNSURE)
    verdicts_q = (select(it.reason, it.pi, p.region, p.champion_label, p.candidate_label, _ood_flag(), it.truth,
                         it.logged_at, it.resolved_at)
                  .select_from(review_items.join(predictions, p.request_id == it.request_id))
                  .where(it.rollout_id == rollout_id, it.truth.is_not(None), it.pi.is_not(None), compared_sql())
                  .order_by(it.logged_at, it.id))
    pending_q = select(func.count()).where(it.rollout_id == rollout_id, it.truth.is_(None))
    if as_of is not None:
        verdicts_q = verdicts_q.where(it.resolved_at <= as_of)
        pending_q = select(func.count()).where(it.rollout_id == rollout_id, it.created_at <= as_of,
                                               (it.resolved_at.is_(None)) | (it.resolved_at > as_of))
    with engine.connect() as conn:
        if as_of is None:
            counts = _Counting(conn, rollout_id, keys).now(engine, settings, edge)
        else:
            counts = _Counting(conn, rollout_id, keys).as_of(as_of, edge)
        verdicts = tuple(VerdictRow(reason, pi, Cell(region, champ, flag), champ, cand, truth, logged, resolved)
                         for reason, pi, region, champ, cand, flag, truth, logged, resolved in conn.execute(verdicts_q))
        pending = conn.execute(pending_q).scalar_one()
    return ReviewSample(rollout_id, as_of, {s: settings.review.rate(s) for s in STRATA}, counts, verdicts, edge,
                        pending)


# -- counts of the log, kept per process -------------------------------------------------------------
Key = tuple[str, Cell, bool, bool, bool]  # a CountRow without its n and settled


@dataclass(frozen=True)
class _Kept:
    """What a process has counted of one rollout: the rows up to the fill's watermark (final: the fill waits
    for their shadow answers) and, among them, those up to the analysis frontier (settled)."""

    final_to: float
    final: Counter
    edge: float
    settled: Counter


# The guard reads the sample every few seconds; grouping the whole rollout each time would cost what the
# log holds. Final counts only grow, so a later sample groups only the rows past what was kept: those
# logged since the last fill, and those the frontier passed since.
_KEPT: weakref.WeakKeyDictionary[Engine, dict[tuple[str, float], _Kept]] = weakref.WeakKeyDictionary()


class _Counting:
    def __init__(self, conn: Connection, rollout_id: str, keys: tuple) -> None:
        self.conn, self.rollout_id, self.keys = conn, rollout_id, keys

    def _grouped(self, *where: object, flags: tuple = ()) -> list[tuple[Key, tuple[bool, ...], int]]:
        p = predictions.c
        q = (select(*self.keys, *flags, func.count()).where(p.rollout_id == self.rollout_id, compared_sql(), *where)
             .group_by(*self.keys, *flags))
        out = []
        for row in self.conn.execute(q):
            s, region, champ, flag, disc, a, b = row[:7]
            out.append(((s, Cell(region, champ, flag), bool(disc), bool(a), bool(b)), tuple(bool(f) for f in row[7:-1]),
                        int(row[-1])))
        return out

    def as_of(self, as_of: float, edge: float | None) -> tuple[CountRow, ...]:
        p = predictions.c
        return tuple(CountRow(*k, n, settled) for k, (settled,), n in
                     self._grouped(p.ts <= as_of, flags=(p.ts <= (edge if edge is not None else -1.0),)))

    def now(self, engine: Engine, settings: Settings, edge: float | None) -> tuple[CountRow, ...]:
        p = predictions.c
        final_to = self.conn.execute(select(review_fill.c.settled_to)
                                     .where(review_fill.c.rollout_id == self.rollout_id)).scalar()
        slot = (self.rollout_id, settings.review.low_confidence)
        kept = _KEPT.get(engine, {}).get(slot)
        final, settled, recent = Counter(), Counter(), Counter()
        if kept is None or edge is None or final_to is None or edge < kept.edge or final_to < kept.final_to:
            upto = (p.ts <= (edge if edge is not None else -1.0), p.ts <= (final_to if final_to is not None else -1.0))
            for k, (is_settled, is_final), n in self._grouped(flags=upto):
                (final if is_final else recent)[k] += n
                settled[k] += n if is_settled else 0
        else:
            final.update(kept.final)
            settled.update(kept.settled)
            for k, _, n in self._grouped(p.ts > kept.edge, p.ts <= edge):
                settled[k] += n
            for k, (is_final,), n in self._grouped(p.ts > kept.final_to, flags=(p.ts <= final_to,)):
                (final if is_final else recent)[k] += n
        if edge is not None and final_to is not None:
            _KEPT.setdefault(engine, {})[slot] = _Kept(final_to, final, edge, settled)
        # The frontier never passes the fill's watermark, so the settled rows are among the final ones.
        unsettled = (final + recent) - settled
        return (tuple(CountRow(*k, n, True) for k, n in settled.items() if n)
                + tuple(CountRow(*k, n, False) for k, n in unsettled.items()))

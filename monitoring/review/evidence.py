"""Evidence from review verdicts, read with bounded queries (the rollout's resolved items, and counts of its
log by SQL GROUP BY; never every prediction row):

- `review_sample`: what the analyses read (roomsight.verdicts.ReviewSample), its counts of the log from
  `monitoring.review.cell_counts`;
- `evidence`: today's gate metrics (`rollout.metrics.METRICS` under "review verdicts"), kept so plans that
  name them still load and so the old gates can be compared with the analyses side by side.

Both take `as_of` (unix seconds): only what was known then (predictions logged and truths resolved by
then), so a plan can be replayed over a rollout's past.
"""

from __future__ import annotations

import math

from sqlalchemy import Connection, Engine, func, select

from monitoring.review.cell_counts import CellCounts, ood_flag
from monitoring.review.queue import as_reviewed
from monitoring.review.sampling import compared_sql, rollout_low, unit
from monitoring.review.stats import gate_metrics, summarize
from roomsight.config import Settings
from roomsight.tables import predictions, review_fill, review_items, review_unseen
from roomsight.verdicts import STRATA, Cell, ReviewSample, UnseenRow, VerdictRow

# Rows logged this close before the oldest unresolved item are still behind it.
FRONTIER_EPS = 1e-6


def evidence(engine: Engine, settings: Settings, rollout_id: str, as_of: float | None = None) -> dict[str, float | None]:
    """reviewed, candidate/champion precision lower bounds, their margin, the weakest candidate class and
    the candidate's win rate on disagreements, counted unweighted over resolved items (as gates have read
    them so far). Read-only: filling the queue is the reviewer service's job."""
    it, p = review_items.c, predictions.c
    q = (select(it.truth, it.region, p.champion_label, p.candidate_label, p.disagreement)
         .select_from(review_items.join(predictions, p.request_id == it.request_id))
         .where(it.rollout_id == rollout_id, it.truth.is_not(None))
         # In the order of the partial index on resolved items, so SQLite's planner takes it: by the rollout
         # alone it took the index of every queued item, read in time that grew with the queue.
         .order_by(it.logged_at))
    if as_of is not None:
        q = q.where(it.resolved_at <= as_of)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(q)]
    return gate_metrics(summarize(as_reviewed(rows)))


def frontier(conn: Connection, rollout_id: str, settled_to: float | None, as_of: float | None = None,
             reason: str = "disagreement") -> float | None:
    """The time up to which every sampled photo of the rollout's stratum `reason` has its truth resolved (and
    every logged row has been sampled, up to the fill's watermark `settled_to`): the sequential comparison
    reads the log and the disagreements' verdicts up to it, the weighted estimates the log and every
    verdict up to the earliest over the strata. None before the first fill."""
    if settled_to is None:
        return None
    it = review_items.c
    upto = math.inf if as_of is None else as_of
    # Unresolved then: no truth yet, or a truth resolved later (items queued later count too). Now: no
    # truth yet, read from the open items' index.
    open_then = it.truth.is_(None) if as_of is None else (it.resolved_at.is_(None)) | (it.resolved_at > upto)
    oldest = conn.execute(select(func.min(it.logged_at)).where(
        it.rollout_id == rollout_id, it.reason == reason, open_then)).scalar()
    if as_of is not None:
        # settled_to is today's: a photo given up after as_of was then neither queued nor unseen, and the
        # fill's settled_to of then stood before it, as it stands before a photo not yet kept.
        u = review_unseen.c
        lost_later = conn.execute(select(func.min(u.logged_at)).where(
            u.rollout_id == rollout_id, u.reason == reason, u.created_at > as_of)).scalar()
        if lost_later is not None:
            oldest = lost_later if oldest is None else min(oldest, lost_later)
    return min(upto, settled_to, math.inf if oldest is None else oldest - FRONTIER_EPS)


def review_sample(engine: Engine, settings: Settings, rollout_id: str, as_of: float | None = None) -> ReviewSample:
    """The rollout's resolved verdicts with their inclusion probabilities and segment cells, the sampled
    photos no reviewer can see, and the counts of its compared predictions per stratum and cell (settled:
    logged up to the frontier, and up to the common frontier of every stratum), by the stratum rule the
    rollout's photos were drawn by (its pinned review.low_confidence, monitoring.review.sampling)."""
    p, it = predictions.c, review_items.c
    verdicts_q = (select(it.reason, it.pi, it.photo_key, p.region, p.champion_label, p.candidate_label, ood_flag(),
                         it.truth, it.logged_at, it.resolved_at)
                  .select_from(review_items.join(predictions, p.request_id == it.request_id))
                  .where(it.rollout_id == rollout_id, it.truth.is_not(None), it.pi.is_not(None), compared_sql())
                  .order_by(it.logged_at, it.id))
    u = review_unseen.c
    unseen_q = (select(u.reason, u.pi, u.photo_key, p.region, p.champion_label, ood_flag(), u.logged_at)
                .select_from(review_unseen.join(predictions, p.request_id == u.request_id))
                .where(u.rollout_id == rollout_id))
    # Every item queued, with a verdict or not: the frontier stops before an open one, so the photos the
    # filler passed over before it are read at its rate only once that rate is known.
    drawn_q = select(it.reason, func.min(it.pi)).where(it.rollout_id == rollout_id, it.pi.is_not(None)).group_by(it.reason)
    if as_of is not None:
        verdicts_q = verdicts_q.where(it.resolved_at <= as_of)
        unseen_q = unseen_q.where(u.created_at <= as_of)
        drawn_q = drawn_q.where(it.created_at <= as_of)
    with engine.connect() as conn:
        # Read once: the frontier never passes settled_to, and the counts keep what is up to the watermark.
        f = review_fill.c
        filled = conn.execute(select(f.settled_to, f.watermark, f.disagreement_rate, f.low_confidence)
                              .where(f.rollout_id == rollout_id)).first()
        settled_to, watermark, fill_rate, recorded = filled if filled is not None else (None, None, None, None)
        # One query per stratum, each the first entry of the open items' index; all None before the first fill.
        edges = [frontier(conn, rollout_id, settled_to, as_of, reason) for reason in STRATA]
        edge = edges[STRATA.index("disagreement")]
        common = None if edge is None else min(e for e in edges if e is not None)
        # Counted by the stratum rule the photos were drawn by: the rollout's threshold, not this process's.
        cells = CellCounts(conn, rollout_id, rollout_low(rollout_id, settings.review.low_confidence, recorded))
        counts = (cells.now(edge, settled_to, watermark, common) if as_of is None
                  else cells.as_of(as_of, edge, common))
        rows = conn.execute(verdicts_q).all()
        lost = conn.execute(unseen_q).all()
        drawn = [(reason, pi) for reason, pi in conn.execute(drawn_q)]
        drawn += [("disagreement", fill_rate)] if fill_rate is not None else []
    rates = drawn_rates(settings, drawn + [(r.reason, r.pi) for r in lost])
    # A photo is queued iff its number is below its stratum's rate: those below the smaller rate are a
    # draw at that rate, whatever rate queued them.
    verdicts = tuple(VerdictRow(reason, rates[reason], Cell(region, champ, flag), champ, cand, truth, logged, resolved)
                     for reason, _, key, region, champ, cand, flag, truth, logged, resolved in rows
                     if unit(key) < rates[reason])
    unseen = tuple(UnseenRow(reason, Cell(region, champ, flag), logged)
                   for reason, _, key, region, champ, flag, logged in lost if unit(key) < rates[reason])
    return ReviewSample(rollout_id, as_of, rates, counts, verdicts, edge, unseen, common)


def drawn_rates(settings: Settings, recorded: list[tuple[str, float]]) -> dict[str, float]:
    """Each stratum's inclusion probability for the analyses: the smallest of the rate configured here
    and those the fills, queued items and unseen photos recorded. The analyses scale by one rate per stratum, and
    the filler (another process, perhaps configured otherwise, or before the share was changed) drew at its
    own."""
    rates = {s: settings.review.rate(s) for s in STRATA}
    for stratum, pi in recorded:
        rates[stratum] = min(rates[stratum], pi)
    return rates

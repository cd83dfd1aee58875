"""Counts of a rollout's compared predictions per sampling stratum and segment cell, for the review sample,
in time that follows the rows logged since the last reading, not the length of the log.

The guard reads the sample every few seconds and every `rollout status` or `promote` process reads it
once; grouping the whole rollout each time would cost what the log holds. Two facts make the counts
incremental: rows logged up to the fill's `settled_to` (`final_to`) no longer change (the fill waited
for their shadow answers), and the analysis frontier (`edge`) moves forward as reviewers work (back only
to a photo whose verdict was undone). So the counts as last read are kept in the database
(`review_counts`), and a reading groups only the rows logged past the kept `final_to` and those between
the kept `edge` and the frontier now. Any process, the first of its kind included, starts from what
another one kept. A reading at a past moment (`as_of`, replay) groups the rows
up to it.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import Connection, func, select, update
from sqlalchemy.exc import IntegrityError

from monitoring.review.sampling import compared_sql, first_of_photo_sql, stratum_sql
from roomsight.tables import predictions, review_counts
from roomsight.verdicts import IN_DOMAIN, UNSURE, Cell, CountRow

Key = tuple[str, Cell, bool, bool, bool]  # a CountRow without its n and settled


def ood_flag() -> object:
    """A row's `ood` segment value: its first out-of-domain flag, else IN_DOMAIN."""
    return func.coalesce(predictions.c.ood[("flags", 0)].as_string(), IN_DOMAIN)


def _keys(low_confidence: float) -> tuple:
    p = predictions.c
    return (stratum_sql(low_confidence), p.region, p.champion_label, ood_flag(),
            p.champion_label != p.candidate_label, p.champion_label != UNSURE, p.candidate_label != UNSURE)


@dataclass(frozen=True)
class Kept:
    """One rollout's counts as read: every compared row logged up to `final_to` (final) and, among them,
    those up to the frontier `edge` (settled; the frontier never passes the fill's watermark)."""

    final_to: float
    final: Counter
    edge: float
    settled: Counter

    def to_json(self) -> list[list]:
        return [[s, cell.region, cell.predicted_class, cell.ood, d, a, b, n, self.settled[(s, cell, d, a, b)]]
                for (s, cell, d, a, b), n in self.final.items()]

    @classmethod
    def from_row(cls, final_to: float, edge: float, rows: list[list]) -> Kept:
        final, settled = Counter(), Counter()
        for s, region, predicted, ood, d, a, b, n_final, n_settled in rows:
            key = (s, Cell(region, predicted, ood), bool(d), bool(a), bool(b))
            final[key], settled[key] = n_final, n_settled
        return cls(final_to, final, edge, settled)


class CellCounts:
    """Reads one rollout's counts through one connection."""

    def __init__(self, conn: Connection, rollout_id: str, low_confidence: float) -> None:
        self.conn, self.rollout_id, self.low = conn, rollout_id, low_confidence
        self.keys = _keys(low_confidence)

    def _grouped(self, *where: object, flags: tuple = ()) -> list[tuple[Key, tuple[bool, ...], int]]:
        p = predictions.c
        q = (select(*self.keys, *flags, func.count())
             .where(p.rollout_id == self.rollout_id, compared_sql(), first_of_photo_sql(), *where)
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

    def now(self, edge: float | None, final_to: float | None) -> tuple[CountRow, ...]:
        """The counts now, with `edge` the frontier and `final_to` the fill's watermark (review_fill.settled_to)."""
        p = predictions.c
        kept = self._kept()
        final, settled, recent = Counter(), Counter(), Counter()
        if kept is None or edge is None or final_to is None or final_to < kept.final_to:
            upto = (p.ts <= (edge if edge is not None else -1.0), p.ts <= (final_to if final_to is not None else -1.0))
            for k, (is_settled, is_final), n in self._grouped(flags=upto):
                (final if is_final else recent)[k] += n
                settled[k] += n if is_settled else 0
        else:
            final.update(kept.final)
            settled.update(kept.settled)
            # The frontier steps back only when a verdict is undone, to the photo reopened.
            lo, hi, sign = (kept.edge, edge, 1) if edge >= kept.edge else (edge, kept.edge, -1)
            if hi > lo:
                for k, _, n in self._grouped(p.ts > lo, p.ts <= hi):
                    settled[k] += sign * n
            for k, (is_final,), n in self._grouped(p.ts > kept.final_to, flags=(p.ts <= final_to,)):
                (final if is_final else recent)[k] += n
        if edge is not None and final_to is not None and (kept is None or (edge, final_to) != (kept.edge, kept.final_to)):
            self._keep(Kept(final_to, final, edge, settled))
        unsettled = (final + recent) - settled
        return (tuple(CountRow(*k, n, True) for k, n in settled.items() if n)
                + tuple(CountRow(*k, n, False) for k, n in unsettled.items()))

    def _kept(self) -> Kept | None:
        c = review_counts.c
        row = self.conn.execute(select(c.final_to, c.edge, c.counts)
                                .where(c.rollout_id == self.rollout_id, c.low_confidence == self.low)).first()
        return None if row is None else Kept.from_row(row.final_to, row.edge, row.counts)

    def _keep(self, kept: Kept) -> None:
        """Store `kept` unless another process has kept counts of more final rows (any kept counts are exact;
        those further along save the next reader more)."""
        c = review_counts.c
        values = {"final_to": kept.final_to, "edge": kept.edge, "counts": kept.to_json(), "updated_at": time.time()}
        with self.conn.engine.begin() as conn:
            moved = conn.execute(update(review_counts)
                                 .where(c.rollout_id == self.rollout_id, c.low_confidence == self.low,
                                        c.final_to <= kept.final_to)
                                 .values(**values)).rowcount
        if moved:
            return
        try:
            with self.conn.engine.begin() as conn:
                conn.execute(review_counts.insert().values(rollout_id=self.rollout_id, low_confidence=self.low, **values))
        except IntegrityError:
            pass  # another process keeps counts of more final rows, or kept them first

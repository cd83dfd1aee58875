"""Counts of a rollout's compared predictions per sampling stratum and segment cell, for the review sample,
in time that follows the rows logged since the last reading, not the length of the log.

The guard reads the sample every few seconds and every `rollout status` or `promote` process reads it
once; grouping the whole rollout each time would cost what the log holds. Two facts make the counts
incremental: rows logged up to the fill's watermark no longer change (the fill waited for their shadow
answers, and a row written after it moved past is `late`, outside the sample), and the analysis frontier
(`edge`) moves forward as reviewers work (back only to a photo whose verdict was undone). So the counts
up to both, as last read, are kept in the database (`review_counts`), and a reading groups only the rows
logged past the kept `final_to` (some review.settle_s of traffic past the watermark, and what is new) and
those between the kept `edge` and the frontier now. Any process, the first of its kind included, starts
from what another one kept. A reading at a past moment (`as_of`, replay) groups the rows up to it that
were compared by then (their shadow answer landed, roomsight.tables.answers_known).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import Connection, func, select, text, update
from sqlalchemy.exc import IntegrityError

from monitoring.review.sampling import compared_sql, first_of_photo_sql, stratum_sql
from roomsight.tables import answers_known, predictions, review_counts
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

    def _grouped(self, *where: object, flags: tuple = (), known_at: float | None = None) -> list[tuple[Key, tuple[bool, ...], int]]:
        p = predictions.c
        q = (select(*self.keys, *flags, func.count())
             .where(p.rollout_id == self.rollout_id, compared_sql(), first_of_photo_sql(known_at), *where)
             .group_by(*self.keys, *flags))
        out = []
        for row in self.conn.execute(q):
            s, region, champ, flag, disc, a, b = row[:7]
            out.append(((s, Cell(region, champ, flag), bool(disc), bool(a), bool(b)), tuple(bool(f) for f in row[7:-1]),
                        int(row[-1])))
        return out

    def as_of(self, as_of: float, edge: float | None, common: float | None = None) -> tuple[CountRow, ...]:
        p = predictions.c
        # A row was compared then only if its shadow answer had landed by then.
        known = text(answers_known(":known_at", "predictions."))
        return tuple(CountRow(*k, n, settled, up_to_common) for k, (settled, up_to_common), n in
                     self._grouped(p.ts <= as_of, known.bindparams(known_at=as_of), known_at=as_of,
                                   flags=(p.ts <= (edge if edge is not None else -1.0),
                                          p.ts <= (common if common is not None else -1.0))))

    def now(self, edge: float | None, final_to: float | None, watermark: float | None,
            common: float | None = None) -> tuple[CountRow, ...]:
        """The counts now, with `edge` the frontier, `common` the common frontier of every stratum (at most
        `edge`) and `final_to` and `watermark` the fill's settled_to and watermark (all None before the first
        fill). Only rows up to the watermark can no longer change:
        one written later is late and outside the sample, while a row between it and settled_to may still
        come from a slower replica. So the counts are kept up to the watermark, and what lies past it is
        grouped at every reading."""
        p = predictions.c
        if edge is None or final_to is None or watermark is None:
            return self._rows(Counter(), Counter(), self._grouped(flags=(p.ts <= -1.0, p.ts <= -1.0)))
        keep_final, keep_edge = min(final_to, watermark), min(edge, watermark)
        kept = self._kept()
        if kept is None or keep_final < kept.final_to:
            final, settled = Counter(), Counter()
            past = []
            for k, (is_final, is_settled, *flags), n in self._grouped(
                    flags=(p.ts <= keep_final, p.ts <= keep_edge, p.ts <= final_to, p.ts <= edge)):
                final[k] += n if is_final else 0
                settled[k] += n if is_settled else 0
                if not is_final:
                    past.append((k, tuple(flags), n))
        else:
            final, settled = Counter(kept.final), Counter(kept.settled)
            # The frontier steps back only when a verdict is undone, to the photo reopened.
            lo, hi, sign = (kept.edge, keep_edge, 1) if keep_edge >= kept.edge else (keep_edge, kept.edge, -1)
            if hi > lo:
                for k, _, n in self._grouped(p.ts > lo, p.ts <= hi):
                    settled[k] += sign * n
            past = []
            for k, (is_final, *flags), n in self._grouped(p.ts > kept.final_to,
                                                           flags=(p.ts <= keep_final, p.ts <= final_to, p.ts <= edge)):
                if is_final:
                    final[k] += n
                else:
                    past.append((k, tuple(flags), n))
        if kept is None or (keep_edge, keep_final) != (kept.edge, kept.final_to):
            self._keep(Kept(keep_final, +final, keep_edge, +settled))
        # The rows between the two frontiers are grouped at every reading, not kept: as many as the agreements'
        # backlog holds, where the kept counts stay the same however long the log grows.
        behind: Counter = Counter()
        if common is not None and common < edge:
            for k, _, n in self._grouped(p.ts > common, p.ts <= edge):
                behind[k] += n
        return self._rows(final, settled, past, behind if common is not None else None)

    @staticmethod
    def _rows(final: Counter, settled: Counter, past: list[tuple[Key, tuple[bool, ...], int]],
              behind: Counter | None = None) -> tuple[CountRow, ...]:
        """CountRows from the kept part (`final`, `settled`) and the rows past it, each with whether it is
        logged up to settled_to, up to the frontier and up to the common frontier (all those settled but the
        ones `behind` it; None: no common frontier, none are)."""
        final, settled, recent = Counter(final), Counter(settled), Counter()
        for k, (is_final, is_settled), n in past:
            (final if is_final else recent)[k] += n
            settled[k] += n if is_settled else 0
        unsettled = (final + recent) - settled
        common = settled - behind if behind is not None else Counter()
        return (tuple(CountRow(*k, n, True, True) for k, n in common.items() if n)
                + tuple(CountRow(*k, n, True) for k, n in (settled - common).items())
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

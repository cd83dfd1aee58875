"""Counts of a rollout's compared predictions per sampling stratum and segment cell, for the review sample,
in time that follows the rows logged since the last reading, not the length of the log.

The guard reads the sample every few seconds and every `rollout status` or `promote` process reads it
once; grouping the whole rollout each time would cost what the log holds. Two facts make the counts
incremental: rows logged up to the fill's watermark no longer change (the fill waited for their shadow
answers, and a row written after it moved past is `late`, outside the sample), and the analysis frontier
(`edge`) and the common frontier of every stratum (`common`, at most `edge`) move forward as reviewers work
(back only to a photo whose verdict was undone). So the counts up to all three, as last read, are kept in
the database (`review_counts`), and a reading groups only the rows logged past the kept `final_to` (some
review.settle_s of traffic past the watermark, and what is new) and those between each kept frontier and
that frontier now: what reviewers did since, not the backlog of photos still open. Any process, the first
of its kind included, starts from what another one kept. A reading at a past moment (`as_of`, replay)
groups the rows up to it that were compared by then (their shadow answer landed, roomsight.tables.answers_known).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

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
    those up to the frontier `edge` (settled) and up to the common frontier `common_to` (common; None: none
    kept). Each frontier was capped at the fill's watermark when kept, so each count stays exact for its
    own frontier, whoever reads it and however far the frontiers moved since; the final rows include the
    others (common_to <= edge <= final_to when kept, and a later final_to only adds rows)."""

    final_to: float
    final: Counter
    edge: float
    settled: Counter
    common_to: float | None = None
    common: Counter = field(default_factory=Counter)

    def to_json(self) -> list[list]:
        settled = +self.settled
        return [[*_key_json(k), n, settled[k]] for k, n in (+self.final).items()]

    def common_json(self) -> list[list] | None:
        return None if self.common_to is None else [[*_key_json(k), n] for k, n in (+self.common).items()]

    @classmethod
    def from_row(cls, final_to: float, edge: float, rows: list[list], common_to: float | None = None,
                 common_rows: list[list] | None = None) -> Kept:
        """The kept row as stored. A process from before the common counts were kept rewrites the rest and
        leaves them as they were: still exact, their common_to at or before any final_to kept since."""
        final, settled, common = Counter(), Counter(), Counter()
        for *key, n_final, n_settled in rows:
            final[_key(key)], settled[_key(key)] = n_final, n_settled
        for *key, n in common_rows or []:
            common[_key(key)] = n
        return cls(final_to, final, edge, settled, None if common_rows is None else common_to, common)


def _key_json(key: Key) -> list:
    s, cell, d, a, b = key
    return [s, cell.region, cell.predicted_class, cell.ood, d, a, b]


def _key(stored: list) -> Key:
    s, region, predicted, ood, d, a, b = stored
    return (s, Cell(region, predicted, ood), bool(d), bool(a), bool(b))


def _upto(at: float | None) -> object:
    """A row logged up to `at` (None: before any row)."""
    return predictions.c.ts <= (at if at is not None else -1.0)


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
                                   flags=(_upto(edge), _upto(common))))

    def now(self, edge: float | None, final_to: float | None, watermark: float | None,
            common: float | None = None) -> tuple[CountRow, ...]:
        """The counts now, with `edge` the frontier, `common` the common frontier of every stratum (at most
        `edge`; None: no row is common) and `final_to` and `watermark` the fill's settled_to and watermark
        (all None before the first fill; the frontier never passes settled_to). Only rows up to the watermark
        can no longer change: one written later is late and outside the sample, while a row between it and
        settled_to may still come from a slower replica. So the counts are kept up to the watermark, and
        what lies past it is grouped at every reading."""
        if edge is None or final_to is None or watermark is None:
            return self._rows(Kept(-1.0, Counter(), -1.0, Counter()), self._grouped(flags=(_upto(None),) * 3))
        common = None if common is None else min(common, edge)  # past the frontier: every settled row is common
        keep = Kept(min(final_to, watermark), Counter(), min(edge, watermark), Counter(),
                    None if common is None else min(common, watermark))
        kept = self._kept()
        fresh, past = (self._regrouped(keep, final_to, edge, common) if kept is None or keep.final_to < kept.final_to
                       else self._stepped(kept, keep, final_to, edge, common))
        if kept is None or (fresh.final_to, fresh.edge, fresh.common_to) != (kept.final_to, kept.edge, kept.common_to):
            self._keep(fresh)
        return self._rows(fresh, past)

    def _regrouped(self, keep: Kept, final_to: float, edge: float, common: float | None) -> tuple[Kept, list]:
        """The counts up to `keep`'s frontiers and the rows past its final_to, from one grouping of the rollout."""
        final, settled, up_to_common = Counter(), Counter(), Counter()
        past = []
        for k, (is_final, is_settled, is_common, *flags), n in self._grouped(
                flags=(_upto(keep.final_to), _upto(keep.edge), _upto(keep.common_to),
                       _upto(final_to), _upto(edge), _upto(common))):
            final[k] += n if is_final else 0
            settled[k] += n if is_settled else 0
            up_to_common[k] += n if is_common else 0
            if not is_final:
                past.append((k, tuple(flags), n))
        return Kept(keep.final_to, final, keep.edge, settled, keep.common_to, up_to_common), past

    def _stepped(self, kept: Kept, keep: Kept, final_to: float, edge: float, common: float | None) -> tuple[Kept, list]:
        """`kept` moved to `keep`'s frontiers (its final_to no earlier), and the rows past `keep`'s final_to:
        only the rows between each kept frontier and the one now, and those logged past the kept final_to,
        are grouped."""
        p = predictions.c
        final, past = Counter(kept.final), []
        for k, (is_final, *flags), n in self._grouped(p.ts > kept.final_to, flags=(_upto(keep.final_to), _upto(final_to),
                                                                                   _upto(edge), _upto(common))):
            if is_final:
                final[k] += n
            else:
                past.append((k, tuple(flags), n))
        settled = self._step(kept.settled, kept.edge, keep.edge)
        # No common counts kept (a row kept before they were): the step from before any row groups them once.
        up_to_common = (Counter() if keep.common_to is None
                        else self._step(kept.common, kept.common_to if kept.common_to is not None else -1.0, keep.common_to))
        return Kept(keep.final_to, final, keep.edge, settled, keep.common_to, up_to_common), past

    def _step(self, counts: Counter, kept_to: float, to: float) -> Counter:
        """`counts` of the rows up to `kept_to`, moved to those up to `to` by grouping the rows between. A
        frontier steps back only when a verdict is undone, to the photo reopened."""
        p = predictions.c
        out = Counter(counts)
        lo, hi, sign = (kept_to, to, 1) if to >= kept_to else (to, kept_to, -1)
        if hi > lo:
            for k, _, n in self._grouped(p.ts > lo, p.ts <= hi):
                out[k] += sign * n
        return out

    @staticmethod
    def _rows(kept: Kept, past: list[tuple[Key, tuple[bool, ...], int]]) -> tuple[CountRow, ...]:
        """CountRows from the kept part and the rows past it, each with whether it is logged up to settled_to,
        up to the frontier and up to the common frontier (`kept.common_to` None: no common frontier, none are)."""
        final, settled, recent = Counter(kept.final), Counter(kept.settled), Counter()
        common = Counter(kept.common)
        for k, (is_final, is_settled, is_common), n in past:
            (final if is_final else recent)[k] += n
            settled[k] += n if is_settled else 0
            common[k] += n if is_common else 0
        unsettled = (final + recent) - settled
        common = +common if kept.common_to is not None else Counter()
        return (tuple(CountRow(*k, n, True, True) for k, n in common.items())
                + tuple(CountRow(*k, n, True) for k, n in (settled - common).items())
                + tuple(CountRow(*k, n, False) for k, n in unsettled.items()))

    def _kept(self) -> Kept | None:
        c = review_counts.c
        row = self.conn.execute(select(c.final_to, c.edge, c.counts, c.common_to, c.common_counts)
                                .where(c.rollout_id == self.rollout_id, c.low_confidence == self.low)).first()
        return None if row is None else Kept.from_row(row.final_to, row.edge, row.counts, row.common_to, row.common_counts)

    def _keep(self, kept: Kept) -> None:
        """Store `kept` unless another process has kept counts of more final rows. Any kept counts are exact,
        each for its own frontier, and a reader steps the frontier and the common frontier forward or back
        from wherever they were kept; only the final rows cannot step back (a reader whose final_to is
        earlier regroups). So the counts of the most final rows are kept, even with an earlier frontier
        or common frontier than those they replace: they save the next reader the most."""
        c = review_counts.c
        values = {"final_to": kept.final_to, "edge": kept.edge, "counts": kept.to_json(), "common_to": kept.common_to,
                  "common_counts": kept.common_json(), "updated_at": time.time()}
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

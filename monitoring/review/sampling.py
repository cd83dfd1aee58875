"""Filling the review queue from the prediction log, as a Poisson sample with known inclusion probabilities.

Every compared photo (both models answered) falls in one stratum: `disagreement` (the log marks the two
answers as disagreeing), `low_confidence` (they agree, but the answer is `unsure` or scored below
review.low_confidence) or `spot_check` (any other agreement). A photo is queued iff a stable hash of its
key, uniform on [0, 1), is below its stratum's rate (review.*_share), so its inclusion probability is
exactly that rate; the item records it. The same traffic gives the same sample, on every run and node. A
photo sent again under the same `photo_id` is one photo: only its first compared row is sampled and counted.
A sampled photo the store never got is recorded as unseen (`review_unseen`), not left out: the analyses
must know it was drawn, or they read it as a photo that was not.

A fill reads only the rows logged after the rollout's watermark (review_fill): the rows new since the
last fill, plus those of the last review.settle_s, whose shadow answer may still be on its way. So its cost
follows the traffic since the last fill, not the length of the rollout. A row written behind the watermark
(replayed from a journal, held through a database outage) would be counted and never drawn; the writer
marks such rows `late`, and the sample, its counts included, leaves them out.

The stratum rule's threshold is the rollout's, not the process's: its first fill records the
review.low_confidence it draws with (review_fill.low_confidence) before it draws, unless another fill has
recorded one, and every fill draws, and the review sample counts, by the one recorded, whatever they are
configured with (a warning says so, once per process). Drawn by one threshold and counted by another, a
photo would stand in a stratum whose rate did not draw it.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
import uuid
from typing import Any

from sqlalchemy import Engine, Table, and_, case, exists, insert, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import FromClause

from monitoring.review.photos import PhotoStore
from roomsight.config import Settings
from roomsight.tables import answers_known, predictions, review_fill, review_items, review_unseen
from roomsight.verdicts import STRATA, UNSURE

log = logging.getLogger(__name__)

ITEM_NAMESPACE = uuid.UUID("6f1c1a52-9d4e-4a57-9a8e-2f0b6c1d7e31")
CHUNK = 500  # photo keys per IN (...) lookup


def unit(key: str, salt: str = "") -> float:
    """A stable pseudo-random number in [0, 1) per key: sampling is reproducible and idempotent."""
    return int.from_bytes(hashlib.sha256((salt + key).encode()).digest()[:8], "big") / 2**64


def item_id(rollout_id: str, photo_key: str) -> str:
    """Deterministic, so the same traffic queues the same ids and ties in the review order break alike."""
    return str(uuid.uuid5(ITEM_NAMESPACE, f"{rollout_id}/{photo_key}"))


def stratum_of(disagreement: bool | None, label: str, score: float, low: float) -> str:
    """A compared photo's sampling stratum; `stratum_sql` is the same rule in SQL."""
    if disagreement:
        return "disagreement"
    return "low_confidence" if label == UNSURE or score < low else "spot_check"


def pinned_low(configured: float, recorded: float | None) -> float:
    """The threshold of the stratum rule a rollout's photos are drawn and counted by: the one its first fill
    recorded; before any fill, or on a fill row from before it was recorded, the configured one."""
    return configured if recorded is None else recorded


_said: set[tuple[str, float, float]] = set()  # (rollout, configured, pinned) warned about in this process


def rollout_low(rollout_id: str, configured: float, recorded: float | None) -> float:
    """`pinned_low`, with a warning the first time this process finds its setting overruled for the rollout."""
    low = pinned_low(configured, recorded)
    if low != configured and (rollout_id, configured, low) not in _said:
        _said.add((rollout_id, configured, low))
        log.warning("rollout %s keeps the review.low_confidence its first fill drew with, %g: its photos are drawn "
                    "and counted by it, not by the %g configured here", rollout_id[:8], low, configured)
    return low


def stratum_sql(low: float) -> ColumnElement[str]:
    p = predictions.c
    return case((p.disagreement.is_(True), "disagreement"),
                (or_(p.label == UNSURE, p.score < low), "low_confidence"), else_="spot_check")


def compared_sql(rows: FromClause = predictions) -> ColumnElement[bool]:
    """Both models answered the row, in time for the fill to read it (not `late`); `rows`: the predictions
    table or an alias of it."""
    return rows.c.champion_label.is_not(None) & rows.c.candidate_label.is_not(None) & rows.c.late.is_(None)


def first_of_photo_sql(known_at: float | None = None) -> ColumnElement[bool]:
    """A row that no earlier compared row of the rollout shares its photo_id with. The sample's unit is the
    photo: its item and verdict stand for one compared row, so a photo sent again is counted once, from
    the row its item comes from; counted at every send, each repeat would stand in the analyses as a
    sampled photo with no difference between the models, pulling the estimate toward none. With
    `known_at` (a past moment), only rows compared by then come earlier: a send whose shadow answer
    landed later left the next send the photo's first then."""
    return _FIRST_OF_PHOTO if known_at is None else _first_of_photo(known_at)


def _first_of_photo(known_at: float | None) -> ColumnElement[bool]:
    p, alias = predictions.c, predictions.alias("earlier")
    e = alias.c
    # A name of its own: a statement's bind parameters of one name take one value.
    then = ([] if known_at is None
            else [text(answers_known(":earlier_known_at", "earlier.")).bindparams(earlier_known_at=known_at)])
    earlier = exists().where(e.rollout_id == p.rollout_id, e.photo_id == p.photo_id, compared_sql(alias),
                             or_(e.ts < p.ts, and_(e.ts == p.ts, e.request_id < p.request_id)), *then)
    return p.photo_id.is_(None) | ~earlier


# Built once: every guard reading's counts (a few groupings) and every fill use it, and building it is slow
# next to the rest of their Python. Bound to no value, it is the same in every statement: a statement
# compiles from it, never changes it.
_FIRST_OF_PHOTO = _first_of_photo(None)


def fill(engine: Engine, settings: Settings, rollout_id: str, photos: PhotoStore | None = None,
         now: float | None = None) -> int:
    """Queue the newly sampled photos of a rollout whose photo the store holds, and record in review_unseen
    those whose photo it still lacks once the fill moves past them; its settled_to stops before a sampled
    photo not yet kept, as before a shadow answer still on its way. Idempotent: a re-run adds only what
    became due. Returns how many items were queued."""
    photos = photos or PhotoStore.for_settings(settings)
    now = time.time() if now is None else now
    review, p, f = settings.review, predictions.c, review_fill.c
    with engine.connect() as conn:
        filled = conn.execute(select(f.watermark, f.low_confidence).where(f.rollout_id == rollout_id)).first()
        mark, recorded = filled if filled is not None else (None, None)
        query = (select(p.request_id, p.photo_id, p.region, p.label, p.score, p.disagreement, p.champion_label,
                        p.candidate_label, p.shadow, p.shadow_status, p.ts)
                 .where(p.rollout_id == rollout_id, p.late.is_(None), first_of_photo_sql()).order_by(p.ts))
        rows = conn.execute(query if mark is None else query.where(p.ts > mark)).all()
    if mark is None and rows:
        # Pinned at the earliest watermark this fill can reach, so that its own advance (never back) moves
        # the row: before every row it read, and before the review.settle_s the next fill reads again.
        mark = min(now - review.settle_s, rows[0].ts - 1e-6)
        recorded = _pin(engine, rollout_id, mark, review.low_confidence, now)
    low = rollout_low(rollout_id, review.low_confidence, recorded)
    waiting_from = None  # the first row whose shadow answer may still arrive
    due: dict[str, tuple[Any, str, float]] = {}
    for r in rows:
        if r.shadow is not None and r.shadow_status is None and r.ts > now - review.settle_s:
            waiting_from = r.ts if waiting_from is None else waiting_from
            continue
        if r.champion_label is None or r.candidate_label is None:
            continue
        stratum = stratum_of(r.disagreement, r.label, r.score, low)
        key = r.photo_id or r.request_id
        if key not in due and unit(key) < review.rate(stratum):
            due[key] = (r, stratum, review.rate(stratum))
    last = rows[-1].ts if rows else mark
    settled_to = None if last is None else last if waiting_from is None else waiting_from - 1e-6
    # The next fill starts past this: a photo still not kept by then never will be.
    passed = -math.inf if settled_to is None else min(now - review.settle_s, settled_to)
    queued = _queued(engine, rollout_id, list(due))
    double = review.double_review_share if len(review.tokens) >= 2 else 0.0
    new, unseen = [], []
    for key, (r, stratum, pi) in due.items():
        if key in queued:
            continue
        if photos.has(r.request_id):
            new.append(_item(rollout_id, key, r, stratum, pi, now, 2 if unit(key, "double:") < double else 1))
        elif r.ts <= passed:
            unseen.append({"rollout_id": rollout_id, "photo_key": key, "request_id": r.request_id, "reason": stratum,
                           "pi": pi, "logged_at": r.ts, "created_at": now})
        elif settled_to is not None and r.ts <= settled_to:
            # Neither queued nor unseen yet (photos are written after their row): the frontier takes every photo
            # up to settled_to as queued, unseen or not drawn, and would read this one as a tie.
            settled_to = r.ts - 1e-6
    added = _insert_new(engine, review_items, new) if new else 0
    if unseen:
        _insert_new(engine, review_unseen, unseen)
    if settled_to is not None:
        _advance(engine, rollout_id, passed, settled_to, now, mark, review.rate("disagreement"))
    return added


def _pin(engine: Engine, rollout_id: str, start: float, low: float, now: float) -> float | None:
    """The threshold the rollout's photos are drawn by, recorded as `low` by this first fill unless another
    fill has recorded its row first: two first fills at once, configured otherwise, draw by the one
    recorded, not each by its own. The row says nothing is sampled yet (watermark and settled_to `start`)
    until this fill moves it forward."""
    f = review_fill.c
    dialect_insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    with engine.begin() as conn:
        conn.execute(dialect_insert(review_fill).values(rollout_id=rollout_id, watermark=start, settled_to=start,
                                                        updated_at=now, low_confidence=low)
                     .on_conflict_do_nothing(index_elements=[f.rollout_id]))
        return conn.execute(select(f.low_confidence).where(f.rollout_id == rollout_id)).scalar_one()


def _item(rollout_id: str, key: str, r: Any, stratum: str, pi: float, now: float, wanted: int) -> dict[str, Any]:
    return {"id": item_id(rollout_id, key), "rollout_id": rollout_id, "photo_key": key, "request_id": r.request_id,
            "reason": stratum, "priority": STRATA.index(stratum), "region": r.region, "predicted": r.label,
            "created_at": now, "status": "pending", "claim_id": None, "claimed_by": None, "lease_until": None,
            "pi": pi, "logged_at": r.ts, "reviews_wanted": wanted, "reviews_done": 0, "truth": None,
            "resolved_at": None}


def _queued(engine: Engine, rollout_id: str, keys: list[str]) -> set[str]:
    it = review_items.c
    found: set[str] = set()
    with engine.connect() as conn:
        for i in range(0, len(keys), CHUNK):
            found.update(conn.execute(select(it.photo_key).where(it.rollout_id == rollout_id,
                                                                 it.photo_key.in_(keys[i:i + CHUNK]))).scalars())
    return found


def _insert_new(engine: Engine, table: Table, items: list[dict[str, Any]]) -> int:
    """Insert, skipping photos another filler recorded meanwhile (the unique key decides)."""
    try:
        with engine.begin() as conn:
            conn.execute(insert(table), items)
        return len(items)
    except IntegrityError:
        added = 0
        for item in items:
            try:
                with engine.begin() as conn:
                    conn.execute(insert(table), item)
                added += 1
            except IntegrityError:
                pass
        return added


def _advance(engine: Engine, rollout_id: str, watermark: float, settled_to: float, now: float,
             previous: float, rate: float) -> None:
    """Move the rollout's watermark forward (never back: a slower concurrent filler loses), and keep the
    smallest disagreement rate drawn at: the disagreements a fill passed over before its first one drawn
    are read as not sampled only at a rate that would not have drawn them."""
    f = review_fill.c
    watermark = max(watermark, previous)
    smallest = case((f.disagreement_rate.is_(None) | (f.disagreement_rate > rate), rate), else_=f.disagreement_rate)
    with engine.begin() as conn:
        conn.execute(update(review_fill).where(f.rollout_id == rollout_id, f.watermark <= watermark)
                     .values(watermark=watermark, settled_to=settled_to, updated_at=now, disagreement_rate=smallest))

"""The review queue in SQL: filling it from the prediction log, claiming items under a lease, recording
and undoing verdicts, and reading verdicts back for statistics and export.

Every change of hands is a conditional UPDATE on the item's `claim_id` (compare-and-set), never a read
followed by a write, so on SQLite and PostgreSQL alike an item has at most one holder and at most one
verdict, and a replayed submission records nothing.
"""

from __future__ import annotations

import hashlib
import math
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from monitoring.review.photos import PhotoStore
from monitoring.review.stats import ABSTAIN, UNUSABLE, Reviewed
from roomsight.config import Settings
from roomsight.errors import UserError
from roomsight.tables import predictions, review_items, review_verdicts

# Reviewed first: disagreements decide promotions, low-confidence answers show weak spots, spot checks
# estimate precision where the models agree.
PRIORITY = {"disagreement": 0, "low_confidence": 1, "spot_check": 2}
CLAIM_ATTEMPTS = 20


class ReviewError(UserError):
    """A request the queue refuses; `status` is the HTTP status the page gets."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Claim:
    item_id: str
    claim_id: str
    request_id: str
    lease_until: float


@dataclass(frozen=True)
class Progress:
    pending: int
    claimed: int
    done: int
    mine: int

    def to_dict(self) -> dict[str, int]:
        return {"pending": self.pending, "claimed": self.claimed, "done": self.done, "mine": self.mine}


# -- filling ------------------------------------------------------------------------------------------
def _unit(key: str) -> float:
    """A stable pseudo-random number in [0, 1) per request: sampling is reproducible and idempotent."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64


def _top_score(scores: dict[str, float] | None) -> float | None:
    return max(scores.values()) if scores else None


def fill(engine: Engine, settings: Settings, rollout_id: str, photos: PhotoStore | None = None,
         now: float | None = None) -> int:
    """Queue a rollout's logged predictions that need a human: every disagreement, every answer below
    `review.low_confidence`, and `review.spot_check_share` of agreements in each (region, predicted
    class) stratum. One item per photo (photo_id, else request_id); only photos the store holds.
    Idempotent: re-running adds only what is newly due. Returns how many items were added."""
    photos = photos or PhotoStore.for_settings(settings)
    now = time.time() if now is None else now
    p, it = predictions.c, review_items.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(p.request_id, p.photo_id, p.region, p.label, p.score, p.disagreement, p.champion_scores,
                   p.candidate_scores, p.ts).where(p.rollout_id == rollout_id).order_by(p.ts)).all()
        queued = conn.execute(select(it.photo_key, it.reason, it.region, it.predicted)
                              .where(it.rollout_id == rollout_id)).all()
    taken = {q.photo_key for q in queued}
    spot_have: dict[tuple[str, str], int] = defaultdict(int)
    for q in queued:
        if q.reason == "spot_check":
            spot_have[(q.region, q.predicted)] += 1

    new: dict[str, dict[str, Any]] = {}
    agreeing: dict[tuple[str, str], list[Any]] = defaultdict(list)
    low = settings.review.low_confidence
    for r in rows:
        key = r.photo_id or r.request_id
        if r.disagreement is True:
            reason = "disagreement"
        elif r.label == ABSTAIN or min(s for s in (r.score, _top_score(r.champion_scores),
                                                    _top_score(r.candidate_scores)) if s is not None) < low:
            reason = "low_confidence"
        elif r.disagreement is False:
            agreeing[(r.region, r.label)].append(r)
            continue
        else:
            continue  # the shadow answer has not arrived yet: decided on a later scan
        _offer(new, taken, photos, key, r, reason, now, rollout_id)

    share = settings.review.spot_check_share
    for stratum, members in agreeing.items():
        # ceil: every stratum with agreements gets at least one check when the share is above zero.
        due = math.ceil(share * len(members)) - spot_have[stratum]
        for r in sorted(members, key=lambda r: _unit(r.request_id)):
            if due <= 0:
                break
            if _offer(new, taken, photos, r.photo_id or r.request_id, r, "spot_check", now, rollout_id):
                due -= 1
    if not new:
        return 0
    return _insert_new(engine, list(new.values()))


def _offer(new: dict[str, dict[str, Any]], taken: set[str], photos: PhotoStore, key: str, r: Any, reason: str,
           now: float, rollout_id: str) -> bool:
    prior = new.get(key)
    if key in taken or (prior is not None and prior["priority"] <= PRIORITY[reason]) or not photos.has(r.request_id):
        return False
    new[key] = {"id": str(uuid.uuid4()), "rollout_id": rollout_id, "photo_key": key, "request_id": r.request_id,
                "reason": reason, "priority": PRIORITY[reason], "region": r.region, "predicted": r.label,
                "created_at": now, "status": "pending", "claim_id": None, "claimed_by": None, "lease_until": None}
    return True


def _insert_new(engine: Engine, items: list[dict[str, Any]]) -> int:
    """Insert, skipping photos another filler queued meanwhile (the unique key decides)."""
    try:
        with engine.begin() as conn:
            conn.execute(insert(review_items), items)
        return len(items)
    except IntegrityError:
        added = 0
        for item in items:
            try:
                with engine.begin() as conn:
                    conn.execute(insert(review_items), item)
                added += 1
            except IntegrityError:
                pass
        return added


# -- claiming and verdicts ----------------------------------------------------------------------------
def _claimable(now: float) -> Any:
    it = review_items.c
    return or_(it.status == "pending", and_(it.status == "claimed", it.lease_until < now))


def claim_next(engine: Engine, reviewer: str, lease_s: float, rollout_id: str | None = None) -> Claim | None:
    """The reviewer's unexpired claim if they hold one, else the next free item under a fresh lease;
    None when nothing is left."""
    it = review_items.c
    now = time.time()
    with engine.connect() as conn:
        held = conn.execute(select(it.id, it.claim_id, it.request_id, it.lease_until)
                            .where(it.status == "claimed", it.claimed_by == reviewer, it.lease_until >= now)
                            .order_by(it.lease_until).limit(1)).first()
    if held is not None:
        return Claim(held.id, held.claim_id, held.request_id, held.lease_until)
    for _ in range(CLAIM_ATTEMPTS):
        now = time.time()
        scope = [_claimable(now)] + ([it.rollout_id == rollout_id] if rollout_id else [])
        with engine.connect() as conn:
            # A few candidates: under contention the first is often taken by the time we update it.
            cands = conn.execute(select(it.id, it.request_id).where(*scope)
                                 .order_by(it.priority, it.created_at, it.id).limit(8)).all()
        if not cands:
            return None
        for cand in cands:
            claim_id, until = str(uuid.uuid4()), now + lease_s
            with engine.begin() as conn:
                won = conn.execute(update(review_items).where(it.id == cand.id, _claimable(now))
                                   .values(status="claimed", claim_id=claim_id, claimed_by=reviewer,
                                           lease_until=until)).rowcount
            if won == 1:
                return Claim(cand.id, claim_id, cand.request_id, until)
    return None


def submit(engine: Engine, reviewer: str, item_id: str, claim_id: str, label: str, labels: tuple[str, ...]) -> None:
    """Record a verdict for an item this reviewer holds under `claim_id`. The item and its verdict
    change in one transaction; anything else is a 4xx and records nothing. A lapsed lease still counts
    while nobody has re-claimed the item: the claim id changes only when someone else takes it."""
    if label not in labels and label != UNUSABLE:
        raise ReviewError(422, f"unknown label {label!r}; use one of {', '.join(labels)} or {UNUSABLE}")
    it = review_items.c
    now = time.time()
    try:
        with engine.begin() as conn:
            won = conn.execute(update(review_items)
                               .where(it.id == item_id, it.claim_id == claim_id, it.claimed_by == reviewer,
                                      it.status == "claimed")
                               .values(status="done", lease_until=None)).rowcount
            if won == 1:
                rollout_id = conn.execute(select(it.rollout_id).where(it.id == item_id)).scalar_one()
                conn.execute(insert(review_verdicts).values(item_id=item_id, claim_id=claim_id, rollout_id=rollout_id,
                                                            reviewer=reviewer, label=label, ts=now))
                return
    except IntegrityError:
        pass  # a verdict for this item or claim exists already: the transaction rolled back
    with engine.connect() as conn:
        if conn.execute(select(review_verdicts.c.id).where(review_verdicts.c.claim_id == claim_id)).first():
            raise ReviewError(409, "this verdict was already recorded (replayed request)")
        if conn.execute(select(it.id).where(it.id == item_id)).first() is None:
            raise ReviewError(404, f"no review item {item_id!r}")
    raise ReviewError(409, "this item is not claimed by you (the lease expired or another reviewer holds it); "
                           "claim the next item")


def undo(engine: Engine, reviewer: str, lease_s: float) -> Claim:
    """Withdraw the reviewer's latest verdict: the item comes back to them under a fresh lease."""
    v, it = review_verdicts.c, review_items.c
    with engine.connect() as conn:
        last = conn.execute(select(v.id, v.item_id, v.claim_id).where(v.reviewer == reviewer)
                            .order_by(v.ts.desc(), v.id.desc()).limit(1)).first()
    if last is None:
        raise ReviewError(409, "nothing to undo")
    claim_id, until = str(uuid.uuid4()), time.time() + lease_s
    with engine.begin() as conn:
        won = conn.execute(update(review_items).where(it.id == last.item_id, it.claim_id == last.claim_id,
                                                      it.status == "done")
                           .values(status="claimed", claim_id=claim_id, claimed_by=reviewer, lease_until=until)).rowcount
        if won != 1:
            raise ReviewError(409, "that verdict was already undone")
        conn.execute(delete(review_verdicts).where(v.id == last.id))
        request_id = conn.execute(select(it.request_id).where(it.id == last.item_id)).scalar_one()
    return Claim(last.item_id, claim_id, request_id, until)


def holder_request(engine: Engine, reviewer: str, item_id: str) -> str | None:
    """The request id of an item the reviewer currently holds (for its photo), else None."""
    it = review_items.c
    with engine.connect() as conn:
        return conn.execute(select(it.request_id).where(it.id == item_id, it.claimed_by == reviewer,
                                                        it.status == "claimed", it.lease_until >= time.time())).scalar()


def progress(engine: Engine, reviewer: str | None = None, rollout_id: str | None = None) -> Progress:
    it = review_items.c
    now = time.time()
    scope = [it.rollout_id == rollout_id] if rollout_id else []
    with engine.connect() as conn:
        counts = dict(conn.execute(select(it.status, func.count()).where(*scope).group_by(it.status)).all())
        expired = conn.execute(select(func.count()).where(*scope, it.status == "claimed", it.lease_until < now)).scalar_one()
        mine = conn.execute(select(func.count()).select_from(review_verdicts)
                            .where(review_verdicts.c.reviewer == reviewer,
                                   *([review_verdicts.c.rollout_id == rollout_id] if rollout_id else []))).scalar_one() \
            if reviewer else 0
    return Progress(pending=counts.get("pending", 0) + expired, claimed=counts.get("claimed", 0) - expired,
                    done=counts.get("done", 0), mine=mine)


# -- reading verdicts ---------------------------------------------------------------------------------
def rollouts_matching(engine: Engine, given: str) -> set[str]:
    """Rollout ids in the prediction log or the review queue that are `given` or begin with it (reports
    show ids cut to 8 characters, as git shows commits)."""
    with engine.connect() as conn:
        return {rid for t in (review_items, predictions)
                for rid in conn.execute(select(t.c.rollout_id).where(t.c.rollout_id.startswith(given, autoescape=True))
                                        .distinct()).scalars()}


def recent_rollouts(engine: Engine, limit: int = 5) -> list[str]:
    """Rollout ids in the prediction log, the most recently answered first."""
    p = predictions.c
    q = (select(p.rollout_id).where(p.rollout_id.is_not(None)).group_by(p.rollout_id)
         .order_by(func.max(p.ts).desc()).limit(limit))
    with engine.connect() as conn:
        return list(conn.execute(q).scalars())


def reviewed(engine: Engine, rollout_id: str | None) -> list[dict[str, Any]]:
    """Every verdict with its item and the logged answers of both models (fresh from the log, so a
    shadow answer that arrived after queuing counts)."""
    v, it, p = review_verdicts.c, review_items.c, predictions.c
    q = (select(v.item_id, v.reviewer, v.label.label("truth"), v.ts, it.reason, it.region, it.request_id, it.rollout_id,
                p.photo_id, p.listing_id, p.caption, p.taken_at, p.champion_label, p.candidate_label, p.disagreement,
                p.champion_version, p.candidate_version)
         .select_from(review_verdicts.join(review_items, it.id == v.item_id)
                      .join(predictions, p.request_id == it.request_id))
         .order_by(v.ts))
    if rollout_id:
        q = q.where(v.rollout_id == rollout_id)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]


def as_reviewed(rows: list[dict[str, Any]]) -> list[Reviewed]:
    return [Reviewed(truth=r["truth"], champion=r["champion_label"], candidate=r["candidate_label"],
                     region=r["region"], disagreement=bool(r["disagreement"])) for r in rows]


def labels_for(engine: Engine, rollout_id: str | None = None) -> tuple[str, ...]:
    """The models' classes, in their own order, read from logged scores (the log knows the classes of
    the models that actually ran)."""
    p = predictions.c
    q = select(p.champion_scores, p.candidate_scores).where(p.champion_scores.is_not(None)).order_by(p.ts.desc()).limit(50)
    if rollout_id:
        q = q.where(p.rollout_id == rollout_id)
    seen: dict[str, None] = {}
    with engine.connect() as conn:
        for champ, cand in conn.execute(q):
            for scores in (champ, cand):
                for k in scores or {}:
                    seen.setdefault(k, None)
    return tuple(seen)


def prune_photos(engine: Engine, settings: Settings, photos: PhotoStore | None = None) -> int:
    """Delete kept photos older than `review.photo_retention_h` that no review item refers to."""
    photos = photos or PhotoStore.for_settings(settings)
    with engine.connect() as conn:
        queued = {r for (r,) in conn.execute(select(review_items.c.request_id))}
    return photos.prune(queued, settings.review.photo_retention_h * 3600)

"""The review queue in SQL: claiming items under a lease, recording and undoing verdicts, resolving the
truth of double-reviewed photos, and reading verdicts back for statistics and export. Filling it from the
log is `monitoring.review.sampling`.

Every change of hands is a conditional UPDATE on the item's `claim_id` (compare-and-set), never a read
followed by a write, so on SQLite and PostgreSQL alike an item has at most one holder at a time, each
reviewer gives it at most one verdict, it gets no more verdicts than it wants, and a replayed submission
records nothing.

Scope: the rollout in progress only (another rollout's items when asked for by id; every rollout's when
none is in progress). Order: `monitoring.review.order` (disagreements first and oldest first, with a share
of claims kept for agreements).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, delete, exists, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from monitoring.review.order import claim_order
from monitoring.review.sampling import fill  # noqa: F401 - callers fill the queue through it
from monitoring.review.stats import UNUSABLE, Reviewed, resolve
from roomsight.errors import ReviewError, UserError
from roomsight.rollout_state import read_state
from roomsight.tables import predictions, review_items, review_verdicts

CLAIM_ATTEMPTS = 20


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


# -- claiming and verdicts ----------------------------------------------------------------------------
def current_rollout(engine: Engine) -> str | None:
    """The id of the rollout in progress, if one is (from the routing state the control plane writes)."""
    found = read_state(engine)
    return found.state.rollout_in_progress if found is not None else None


def _scope(engine: Engine, rollout_id: str | None, column: Any = review_items.c.rollout_id) -> list[Any]:
    target = rollout_id or current_rollout(engine)
    return [column == target] if target else []


def _claimable(now: float) -> Any:
    it = review_items.c
    return or_(it.status == "pending", and_(it.status == "claimed", it.lease_until < now))


def _not_judged_by(reviewer: str) -> Any:
    v = review_verdicts.c
    return ~exists().where(v.item_id == review_items.c.id, v.reviewer == reviewer)


def claim_next(engine: Engine, reviewer: str, lease_s: float, rollout_id: str | None = None, reserve: float = 0.0) -> Claim | None:
    """The reviewer's unexpired claim in the rollout if they hold one, else the next free item they have not
    judged yet (in monitoring.review.order's order, `reserve` its share of claims kept for agreements), under a fresh
    lease; None when nothing is left. `rollout_id` None: the rollout in progress."""
    it = review_items.c
    now = time.time()
    rollout = _scope(engine, rollout_id)
    with engine.connect() as conn:
        held = conn.execute(select(it.id, it.claim_id, it.request_id, it.lease_until)
                            .where(it.status == "claimed", it.claimed_by == reviewer, it.lease_until >= now, *rollout)
                            .order_by(it.lease_until).limit(1)).first()
    if held is not None:
        return Claim(held.id, held.claim_id, held.request_id, held.lease_until)
    for _ in range(CLAIM_ATTEMPTS):
        now = time.time()
        with engine.connect() as conn:
            # A few candidates: under contention the first is often taken by the time we update it.
            cands = conn.execute(select(it.id, it.request_id).where(_claimable(now), _not_judged_by(reviewer), *rollout)
                                 .order_by(*claim_order(conn, rollout, reserve)).limit(8)).all()
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


def submit(engine: Engine, reviewer: str, item_id: str, claim_id: str, label: str, labels: tuple[str, ...],
           reviewers: int | None = None) -> None:
    """Record a verdict for an item this reviewer holds under `claim_id`. The item and its verdict change
    in one transaction; anything else is a 4xx and records nothing. A lapsed lease still counts while
    nobody has re-claimed the item: the claim id changes only when someone else takes it. An item that
    wants another reviewer goes back to the queue; `reviewers` (how many exist) says whether a conflict
    can go to a third."""
    if label not in labels and label != UNUSABLE:
        raise ReviewError(422, f"unknown label {label!r}; use one of {', '.join(labels)} or {UNUSABLE}")
    it, v = review_items.c, review_verdicts.c
    now = time.time()
    try:
        with engine.begin() as conn:
            won = conn.execute(update(review_items)
                               .where(it.id == item_id, it.claim_id == claim_id, it.claimed_by == reviewer,
                                      it.status == "claimed")
                               .values(status="done", lease_until=None, reviews_done=it.reviews_done + 1)).rowcount
            if won == 1:
                item = conn.execute(select(it.rollout_id, it.reviews_wanted).where(it.id == item_id)).one()
                conn.execute(insert(review_verdicts).values(item_id=item_id, claim_id=claim_id, rollout_id=item.rollout_id,
                                                            reviewer=reviewer, label=label, ts=now))
                given = list(conn.execute(select(v.label).where(v.item_id == item_id).order_by(v.id)).scalars())
                wanted, truth = resolve(given, item.reviews_wanted, reviewers)
                conn.execute(update(review_items).where(it.id == item_id)
                             .values(status="done" if truth is not None else "pending", reviews_wanted=wanted,
                                     truth=truth, resolved_at=now if truth is not None else None))
                return
    except IntegrityError:
        pass  # a verdict for this claim (or by this reviewer) exists already: the transaction rolled back
    with engine.connect() as conn:
        if conn.execute(select(v.id).where(v.claim_id == claim_id)).first():
            raise ReviewError(409, "this verdict was already recorded (replayed request)")
        if conn.execute(select(it.id).where(it.id == item_id)).first() is None:
            raise ReviewError(404, f"no review item {item_id!r}")
    raise ReviewError(409, "this item is not claimed by you (the lease expired or another reviewer holds it); "
                           "claim the next item")


def undo(engine: Engine, reviewer: str, lease_s: float, rollout_id: str | None = None) -> Claim:
    """Withdraw the reviewer's latest verdict, scoped as claims are (a verdict on a rollout that ended is not
    reopened from the next one's page): the item comes back to them under a fresh lease, unless another
    reviewer has claimed it since."""
    v, it = review_verdicts.c, review_items.c
    scope = _scope(engine, rollout_id, v.rollout_id)
    with engine.connect() as conn:
        last = conn.execute(select(v.id, v.item_id, v.claim_id).where(v.reviewer == reviewer, *scope)
                            .order_by(v.ts.desc(), v.id.desc()).limit(1)).first()
    if last is None:
        raise ReviewError(409, "nothing to undo")
    claim_id, until = str(uuid.uuid4()), time.time() + lease_s
    with engine.begin() as conn:
        won = conn.execute(update(review_items).where(it.id == last.item_id, it.claim_id == last.claim_id,
                                                      it.status.in_(("done", "pending")))
                           .values(status="claimed", claim_id=claim_id, claimed_by=reviewer, lease_until=until,
                                   reviews_done=it.reviews_done - 1, truth=None, resolved_at=None)).rowcount
        if won != 1:
            raise ReviewError(409, "that verdict was already undone, or another reviewer has the photo now")
        conn.execute(delete(review_verdicts).where(v.id == last.id))
        # A conflict this verdict made no longer stands: the item wants what the remaining verdicts want.
        given = list(conn.execute(select(v.label).where(v.item_id == last.item_id).order_by(v.id)).scalars())
        if len(given) < 2:
            conn.execute(update(review_items).where(it.id == last.item_id, it.reviews_wanted > 2)
                         .values(reviews_wanted=2))
        request_id = conn.execute(select(it.request_id).where(it.id == last.item_id)).scalar_one()
    return Claim(last.item_id, claim_id, request_id, until)


def holder_request(engine: Engine, reviewer: str, item_id: str) -> str | None:
    """The request id of an item the reviewer currently holds (for its photo), else None."""
    it = review_items.c
    with engine.connect() as conn:
        return conn.execute(select(it.request_id).where(it.id == item_id, it.claimed_by == reviewer,
                                                        it.status == "claimed", it.lease_until >= time.time())).scalar()


def progress(engine: Engine, reviewer: str | None = None, rollout_id: str | None = None) -> Progress:
    """Items waiting (including those wanting another reviewer), in review and resolved, in the queue's
    scope; `mine`: the reviewer's verdicts there."""
    it = review_items.c
    now = time.time()
    scope = _scope(engine, rollout_id)
    with engine.connect() as conn:
        counts = dict(conn.execute(select(it.status, func.count()).where(*scope).group_by(it.status)).all())
        expired = conn.execute(select(func.count()).where(*scope, it.status == "claimed", it.lease_until < now)).scalar_one()
        mine = conn.execute(select(func.count()).select_from(review_verdicts.join(review_items, it.id == review_verdicts.c.item_id))
                            .where(review_verdicts.c.reviewer == reviewer, *scope)).scalar_one() if reviewer else 0
    return Progress(pending=counts.get("pending", 0) + expired, claimed=counts.get("claimed", 0) - expired,
                    done=counts.get("done", 0), mine=mine)


# -- reading verdicts ---------------------------------------------------------------------------------
def rollouts_matching(engine: Engine, given: str) -> set[str]:
    """Rollout ids in the prediction log or the review queue that are `given` or begin with it (reports
    show ids cut to 8 characters, as git shows commits). Each id is one seek in the rollout index (the
    least id past the last one found): a LIKE on the prefix reads every entry of the index, the whole log."""
    found: set[str] = set()
    with engine.connect() as conn:
        for column in (review_items.c.rollout_id, predictions.c.rollout_id):
            after: str | None = None
            while True:
                past = column > after if after is not None else column >= given
                rid = conn.execute(select(func.min(column)).where(past)).scalar()
                if rid is None or not rid.startswith(given):
                    break
                found.add(rid)
                after = rid
    return found


def resolve_rollout(engine: Engine, given: str, known: Iterable[str] = ()) -> str:
    """`given` as a rollout id, or the one id that begins with it, among those the log, the queue, the
    routing state or `known` (e.g. MLflow's records) have seen; a mistyped id would otherwise read as a
    rollout with nothing in it."""
    current = current_rollout(engine)
    seen = rollouts_matching(engine, given) | {r for r in (current, *known) if r and r.startswith(given)}
    if given in seen:
        return given
    if len(seen) == 1:
        return seen.pop()
    if seen:
        raise UserError(f"--rollout {given} is ambiguous: it begins {', '.join(sorted(seen))}")
    # The rollout in progress too: before its first prediction is logged, the message said nothing had been.
    recent = list(dict.fromkeys([*filter(None, [current]), *recent_rollouts(engine), *known]))[:5]
    raise UserError(f"--rollout {given}: no such rollout in the prediction log, the review queue or the rollout "
                    "records; " + (f"recent ones: {', '.join(recent)}" if recent else "nothing has been logged yet")
                    + " (`rollout status` shows the current one)")


def recent_rollouts(engine: Engine, limit: int = 5) -> list[str]:
    """Rollout ids in the prediction log, the most recently answered first."""
    p = predictions.c
    q = (select(p.rollout_id).where(p.rollout_id.is_not(None)).group_by(p.rollout_id)
         .order_by(func.max(p.ts).desc()).limit(limit))
    with engine.connect() as conn:
        return list(conn.execute(q).scalars())


def reviewed(engine: Engine, rollout_id: str | None) -> list[dict[str, Any]]:
    """Every resolved item with its truth and the logged answers of both models (fresh from the log, so a
    shadow answer that arrived after queuing counts), in the order they were resolved."""
    it, p = review_items.c, predictions.c
    q = (select(it.id.label("item_id"), it.truth, it.resolved_at.label("ts"), it.reason, it.region, it.request_id,
                it.rollout_id, it.pi, it.logged_at, p.photo_id, p.listing_id, p.caption, p.taken_at, p.champion_label,
                p.candidate_label, p.disagreement, p.champion_version, p.candidate_version, p.ood)
         .select_from(review_items.join(predictions, p.request_id == it.request_id))
         .where(it.truth.is_not(None)).order_by(it.resolved_at, it.id))
    if rollout_id:
        q = q.where(it.rollout_id == rollout_id)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]


def double_reviews(engine: Engine, rollout_id: str | None) -> list[tuple[str, str]]:
    """The first two verdicts of every photo two reviewers judged, for their agreement (Cohen's kappa)."""
    v = review_verdicts.c
    q = select(v.item_id, v.label).where(v.item_id.in_(
        select(v.item_id).group_by(v.item_id).having(func.count() >= 2))).order_by(v.item_id, v.id)
    if rollout_id:
        q = q.where(v.rollout_id == rollout_id)
    pairs: dict[str, list[str]] = {}
    with engine.connect() as conn:
        for item, label in conn.execute(q):
            pairs.setdefault(item, []).append(label)
    return [(labels[0], labels[1]) for labels in pairs.values()]


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

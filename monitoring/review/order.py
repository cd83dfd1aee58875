"""The order in which the review queue hands out items.

Disagreements first: they decide promotions, and they are served oldest logged first (ties by the item's
deterministic id), so at any moment the resolved ones are every sampled disagreement logged up to a time,
the frontier the sequential comparison reads up to (monitoring.review.evidence). Then low-confidence
answers, then spot checks, oldest first in each.

Served strictly in that order, agreements wait as long as disagreements do, and the weighted precision
estimates (which need verdicts from every stratum) have nothing to go on. So a share `reserve` of the claims
goes to agreements while disagreements wait: every (1/reserve)-th claim, counting the items handed out so
far, takes an agreement if one is free (and a later one does, if none was), from the stratum that has had
fewer (spot checks on a tie). Disagreements keep their order among themselves, so the frontier holds.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import Connection, case, func, or_, select

from roomsight.tables import review_items
from roomsight.verdicts import STRATA

AGREEMENTS = ("spot_check", "low_confidence")  # in the order a tie between them is broken


def due(reserve: float, claims: int) -> int:
    """How many of the first `claims` claims go to agreements when they can: every (1/reserve)-th."""
    return math.floor(reserve * claims + 1e-9)


def claim_order(conn: Connection, scope: list[Any], reserve: float) -> list[Any]:
    """ORDER BY clauses for the next claim among the items in `scope`."""
    it = review_items.c
    rank: Any = it.priority
    if reserve > 0:
        handed_out = or_(it.status != "pending", it.reviews_done > 0)
        counts = dict(conn.execute(select(it.reason, func.count()).where(*scope, handed_out).group_by(it.reason)).all())
        agreements = sum(counts.get(s, 0) for s in AGREEMENTS)
        if agreements < due(reserve, sum(counts.values()) + 1):
            first, second = sorted(AGREEMENTS, key=lambda s: counts.get(s, 0))
            rank = case((it.reason == first, 0), (it.reason == second, 1), else_=len(STRATA))
    return [rank, it.logged_at, it.id]

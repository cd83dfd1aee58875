"""Gate evidence from review verdicts: the `rollout.plan.METRICS` under "review verdicts"."""

from __future__ import annotations

from sqlalchemy import Engine

from monitoring.review.queue import as_reviewed, reviewed
from monitoring.review.stats import gate_metrics, summarize
from roomsight.config import Settings


def evidence(engine: Engine, settings: Settings, rollout_id: str, as_of: float | None = None) -> dict[str, float | None]:
    """reviewed, candidate/champion precision lower bounds, their margin, the weakest candidate class and
    the candidate's win rate on disagreements, from verdicts given by `as_of` (default: all). Read-only:
    filling the queue is the reviewer service's job."""
    rows = [r for r in reviewed(engine, rollout_id) if as_of is None or r["ts"] <= as_of]
    return gate_metrics(summarize(as_reviewed(rows)))

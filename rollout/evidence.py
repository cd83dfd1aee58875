"""Evidence for gates: numbers about one rollout, gathered from every provider.

A provider is a function (engine, settings, rollout_id) -> {metric: value or None}. The prediction
log's provider is here (agreement, candidate traffic, errors, latency); monitoring contributes review
verdicts and drift. Every metric a provider returns must be named in `rollout.plan.METRICS`, so that
a plan's gates are checked against known names when the plan is loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Engine, select

from roomsight.config import Settings
from roomsight.tables import predictions

Provider = Callable[..., dict[str, float | None]]  # (engine, settings, rollout_id, as_of=None)


@dataclass(frozen=True)
class Evidence:
    values: dict[str, float | None]

    def get(self, key: str) -> float | None:
        return self.values.get(key)


def providers() -> list[Provider]:
    """Every source of gate evidence, in the order their numbers are shown."""
    from monitoring.drift import evidence as drift_evidence
    from monitoring.review.evidence import evidence as review_evidence

    return [log_evidence, review_evidence, drift_evidence]


def collect(engine: Engine, settings: Settings, rollout_id: str | None, as_of: float | None = None) -> Evidence:
    values: dict[str, float | None] = {}
    if rollout_id is None:
        return Evidence(values)
    for provider in providers():
        values.update(provider(engine, settings, rollout_id, as_of=as_of))
    return Evidence(values)


def log_evidence(engine: Engine, settings: Settings, rollout_id: str, last: int | None = None,
                 as_of: float | None = None) -> dict[str, float | None]:
    """Numbers over a rollout's logged requests (the `last` N candidate calls when given)."""
    p = predictions.c
    query = (select(p.served_by, p.shadow, p.shadow_status, p.disagreement, p.candidate_ms, p.champion_ms,
                    p.candidate_error, p.candidate_version)
             .where(p.rollout_id == rollout_id).order_by(p.ts.desc()))
    if as_of is not None:
        query = query.where(p.ts <= as_of)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    ran = [r for r in rows if _candidate_ran(r)]
    if last is not None:
        ran = ran[:last]
    compared = [r for r in rows if r.disagreement is not None]
    cand_errors = sum(1 for r in ran if r.candidate_error is not None)
    cand_ms = [r.candidate_ms for r in ran if r.candidate_ms is not None]
    champ_ms = [r.champion_ms for r in rows if r.champion_ms is not None]
    return {
        "requests": float(len(rows)),
        "compared": float(len(compared)),
        "agreement": (1.0 - sum(bool(r.disagreement) for r in compared) / len(compared)) if compared else None,
        "candidate_served": float(sum(1 for r in rows if r.served_by == "candidate")),
        "candidate_requests": float(len(ran)),
        "candidate_errors": float(cand_errors),
        "candidate_error_rate": cand_errors / len(ran) if ran else None,
        "candidate_p99_ms": float(np.percentile(cand_ms, 99)) if cand_ms else None,
        "champion_p99_ms": float(np.percentile(champ_ms, 99)) if champ_ms else None,
    }


def _candidate_ran(r) -> bool:  # noqa: ANN001 - a Row
    if r.served_by == "candidate" or r.candidate_error is not None:
        return True
    return r.shadow == "candidate" and r.shadow_status in ("ok", "error", "timeout")

"""Evidence for gates, read from the prediction log of one rollout: agreement between the models,
how much the candidate served, its errors and latency. Review verdicts and drift join here as the
monitoring side provides them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import Engine, select

from roomsight.tables import predictions


@dataclass(frozen=True)
class Evidence:
    values: dict[str, float | None]

    def get(self, key: str) -> float | None:
        return self.values.get(key)


def collect(engine: Engine, rollout_id: str | None, last: int | None = None) -> Evidence:
    """Numbers over a rollout's logged requests (the `last` N candidate calls when given)."""
    if rollout_id is None:
        return Evidence({})
    p = predictions.c
    query = (select(p.served_by, p.shadow, p.shadow_status, p.disagreement, p.candidate_ms, p.champion_ms,
                    p.candidate_error, p.candidate_version)
             .where(p.rollout_id == rollout_id).order_by(p.ts.desc()))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    ran = [r for r in rows if _candidate_ran(r)]
    if last is not None:
        ran = ran[:last]
    compared = [r for r in rows if r.disagreement is not None]
    cand_errors = sum(1 for r in ran if r.candidate_error is not None)
    cand_ms = [r.candidate_ms for r in ran if r.candidate_ms is not None]
    champ_ms = [r.champion_ms for r in rows if r.champion_ms is not None]
    return Evidence({
        "requests": float(len(rows)),
        "compared": float(len(compared)),
        "agreement": (1.0 - sum(bool(r.disagreement) for r in compared) / len(compared)) if compared else None,
        "candidate_served": float(sum(1 for r in rows if r.served_by == "candidate")),
        "candidate_requests": float(len(ran)),
        "candidate_errors": float(cand_errors),
        "candidate_error_rate": cand_errors / len(ran) if ran else None,
        "candidate_p99_ms": float(np.percentile(cand_ms, 99)) if cand_ms else None,
        "champion_p99_ms": float(np.percentile(champ_ms, 99)) if champ_ms else None,
    })


def _candidate_ran(r) -> bool:  # noqa: ANN001 - a Row
    if r.served_by == "candidate" or r.candidate_error is not None:
        return True
    return r.shadow == "candidate" and r.shadow_status in ("ok", "error", "timeout")

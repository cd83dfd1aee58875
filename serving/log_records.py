"""What the prediction log holds: one record per answered request, and a shadow model's outcome,
applied to its record later (see serving.predlog)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class PredictionRecord:
    request_id: str
    ts: float
    rollout_id: str | None
    stage: str
    listing_id: str
    region: str
    served_by: str
    label: str
    score: float
    latency_ms: float
    photo_id: str | None = None
    caption: str | None = None
    taken_at: str | None = None
    champion_version: str | None = None
    champion_label: str | None = None
    champion_scores: dict[str, float] | None = None
    champion_ms: float | None = None
    candidate_version: str | None = None
    candidate_label: str | None = None
    candidate_scores: dict[str, float] | None = None
    candidate_ms: float | None = None
    candidate_error: str | None = None
    shadow: str | None = None
    shadow_status: str | None = None
    disagreement: bool | None = None
    shadow_at: float | None = None
    ood: dict[str, Any] | None = None
    descriptors: dict[str, float] | None = None
    routing_reason: str | None = None


@dataclass
class ShadowUpdate:
    """The shadow model's outcome for an already-answered request."""

    request_id: str
    shadow_status: str  # ok | error | timeout | dropped (waited too long to start)
    values: dict[str, Any] = field(default_factory=dict)  # champion_* or candidate_* columns, disagreement
    # When the outcome was had, by the clock `ts` is read from: a replay counts it only from then. Made with
    # the update, so it travels with it through the journal; a journal written before it existed gets the
    # row's `ts` (serving.log_sql.recover).
    shadow_at: float | None = field(default_factory=time.time)


UPDATE_COLUMNS = ("champion_version", "champion_label", "champion_scores", "champion_ms", "candidate_version",
                   "candidate_label", "candidate_scores", "candidate_ms", "candidate_error", "disagreement")

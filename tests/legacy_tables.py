"""The SQL schema as released before the rollup, the drift checks and the rollout indexes (roomsight/tables.py
at main 6cf8abe), frozen: tests/test_migrations.py writes a log with it and opens it with today's code."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

predictions = Table(
    "predictions",
    metadata,
    Column("request_id", String(36), primary_key=True),
    Column("ts", Float, nullable=False, index=True),  # unix seconds, when the answer was sent
    Column("rollout_id", String(36)),
    Column("stage", String(16), nullable=False),
    Column("listing_id", String(128), nullable=False),
    Column("photo_id", String(128)),
    Column("region", String(64), nullable=False),
    Column("caption", Text),
    Column("taken_at", String(64)),
    Column("served_by", String(16), nullable=False),  # champion | candidate
    Column("label", String(64), nullable=False),  # the answer (may be "unsure")
    Column("score", Float, nullable=False),
    Column("latency_ms", Float, nullable=False),  # end-to-end inside the ingress
    Column("champion_version", String(32)),
    Column("champion_label", String(64)),
    Column("champion_scores", JSON),
    Column("champion_ms", Float),
    Column("candidate_version", String(32)),
    Column("candidate_label", String(64)),
    Column("candidate_scores", JSON),
    Column("candidate_ms", Float),
    Column("candidate_error", Text),  # set when the candidate failed or timed out (shadow or serving)
    Column("shadow", String(16)),  # which model ran in shadow: champion | candidate | NULL
    Column("shadow_status", String(16)),  # ok | error | timeout | dropped | NULL
    Column("disagreement", Boolean),  # NULL until both models answered
    Column("ood", JSON),  # {"flags": [...], "scores": {...}}
    Column("descriptors", JSON),
    Column("routing_reason", String(64)),
)
Index("ix_predictions_stage_region", predictions.c.stage, predictions.c.region)

rollout_state = Table(
    "rollout_state",
    metadata,
    Column("id", Integer, primary_key=True),  # always 1: one rollout at a time per registered model
    Column("generation", Integer, nullable=False),  # bumped on every write: optimistic concurrency
    Column("state", JSON, nullable=False),  # serving.routing.RoutingState as a dict
    Column("updated_at", Float, nullable=False),
)

# The human review queue (monitoring.review). One item per photo per rollout; who holds it is decided by
# compare-and-set UPDATEs on `claim_id`, so two reviewers never get the same item on SQLite or PostgreSQL.
review_items = Table(
    "review_items",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("rollout_id", String(36), nullable=False),
    Column("photo_key", String(160), nullable=False),  # photo_id, else request_id: one item per photo
    Column("request_id", String(36), nullable=False),  # the logged prediction it came from
    Column("reason", String(16), nullable=False),  # disagreement | low_confidence | spot_check
    Column("priority", Integer, nullable=False),  # lower is reviewed first
    Column("region", String(64), nullable=False),
    Column("predicted", String(64), nullable=False),  # the answer given (stratum of spot checks)
    Column("created_at", Float, nullable=False),
    Column("status", String(8), nullable=False),  # pending | claimed | done
    Column("claim_id", String(36)),  # the current (or, when done, the deciding) claim
    Column("claimed_by", String(64)),
    Column("lease_until", Float),
    UniqueConstraint("rollout_id", "photo_key", name="uq_review_items_photo"),
)
Index("ix_review_items_queue", review_items.c.status, review_items.c.priority, review_items.c.created_at)

review_verdicts = Table(
    "review_verdicts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("item_id", String(36), nullable=False, unique=True),  # exactly one verdict per item
    Column("claim_id", String(36), nullable=False, unique=True),  # a replayed submission cannot add a second
    Column("rollout_id", String(36), nullable=False, index=True),
    Column("reviewer", String(64), nullable=False),
    Column("label", String(64), nullable=False),  # a class, or "unusable"
    Column("ts", Float, nullable=False),
)

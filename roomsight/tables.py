"""The SQL schema shared by the Serve app (writes predictions, reads rollout state), the control plane
(writes rollout state) and monitoring (reads predictions, owns the review queue).

SQLAlchemy Core so one definition works on the embedded SQLite and on PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
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
    text,
)

metadata = MetaData()
LABEL_MAX = 64  # a class name's length in the label columns (training refuses longer ones)
REGION_MAX = 64  # a region's, as a request may send it and a plan may name it

predictions = Table(
    "predictions",
    metadata,
    Column("request_id", String(36), primary_key=True),
    Column("ts", Float, nullable=False, index=True),  # unix seconds, when the answer was sent
    Column("rollout_id", String(36)),
    Column("stage", String(16), nullable=False),
    Column("listing_id", String(128), nullable=False),
    Column("photo_id", String(128)),
    Column("region", String(REGION_MAX), nullable=False),
    Column("caption", Text),
    Column("taken_at", String(64)),
    Column("served_by", String(16), nullable=False),  # champion | candidate
    Column("label", String(LABEL_MAX), nullable=False),  # the answer (may be "unsure")
    Column("score", Float, nullable=False),
    Column("latency_ms", Float, nullable=False),  # end-to-end inside the ingress
    Column("champion_version", String(32)),
    Column("champion_label", String(LABEL_MAX)),
    Column("champion_scores", JSON),
    Column("champion_ms", Float),
    Column("candidate_version", String(32)),
    Column("candidate_label", String(LABEL_MAX)),
    Column("candidate_scores", JSON),
    Column("candidate_ms", Float),
    Column("candidate_error", Text),  # set when the candidate failed or timed out (shadow or serving)
    Column("shadow", String(16)),  # which model ran in shadow: champion | candidate | NULL
    Column("shadow_status", String(16)),  # ok | error | timeout | dropped | NULL
    Column("disagreement", Boolean),  # NULL until both models answered
    # When the shadow model's outcome (the columns above) was had, by the ingress's clock as `ts` is: a row is
    # written when the answer is sent and the shadow answer lands on it later, so a past moment (`as_of`)
    # may count the shadow answer only if it was had by then (`shadow_known`). NULL: no shadow outcome, or
    # logged before this column existed.
    Column("shadow_at", Float),
    Column("ood", JSON),  # {"flags": [...], "scores": {...}}
    Column("descriptors", JSON),
    Column("routing_reason", String(64)),
    # True: written, or answered in shadow, more than review.settle_s / 2 after `ts` (replayed from a journal,
    # held through a database outage), when the review fill may have read past it: outside the review
    # sample, which would otherwise count it without ever having drawn it. NULL otherwise.
    Column("late", Boolean),
)
Index("ix_predictions_stage_region", predictions.c.stage, predictions.c.region)


def candidate_ran(row: str = "") -> str:
    """SQL for "the candidate model ran on this request": it answered, failed, or finished a shadow call.
    `row` qualifies the columns ("NEW." in a trigger). One text for the queries, the partial indexes and
    the rollup triggers, so that SQLite and PostgreSQL see the index's condition in the query's."""
    return (f"({row}served_by = 'candidate' OR {row}candidate_error IS NOT NULL"
            f" OR ({row}shadow = 'candidate' AND {row}shadow_status IN ('ok', 'error', 'timeout')))")


CANDIDATE_TIMED = f"{candidate_ran()} AND candidate_ms IS NOT NULL"


def shadow_known(role: str, as_of: str, row: str = "") -> str:
    """SQL for "whatever `role` (champion | candidate) answered on this row was known at `as_of`" (an SQL
    expression, a bound parameter): always when `role` did not run in shadow (it answered at `ts`), else
    once the shadow answer was had. A row logged before `shadow_at` existed counts its shadow answer as had
    at `ts`, as every reading did then: when it landed was not kept, and the ingress gives a shadow answer
    up after serve.shadow_max_wait_s + serve.shadow_timeout_s, so `ts` is early by at most that."""
    return (f"(coalesce({row}shadow, '') <> '{role}' OR coalesce({row}shadow_at, {row}ts) <= {as_of})")


def answers_known(as_of: str, row: str = "") -> str:
    """SQL for "both models' answers on this row were known at `as_of`" (`shadow_known` for each): a row
    compared then."""
    return " AND ".join(shadow_known(role, as_of, row) for role in ("champion", "candidate"))


# The control plane asks about one rollout at a time: its last N candidate calls (the guard), the order
# statistics of its latencies (p99), the rows of a window (drift samples, `as_of` replays). Each of these
# indexes answers one of them from a range of that rollout's entries, never from the whole log.
Index("ix_predictions_rollout_ts", predictions.c.rollout_id, predictions.c.ts, predictions.c.request_id)
# A photo its caller sends again (the same photo_id) is one photo for the review sample
# (monitoring.review.sampling.first_of_photo_sql): its earlier rows in the rollout are a seek.
Index("ix_predictions_rollout_photo", predictions.c.rollout_id, predictions.c.photo_id, predictions.c.ts)
Index("ix_predictions_candidate_calls", predictions.c.rollout_id, predictions.c.ts,
      sqlite_where=text(candidate_ran()), postgresql_where=text(candidate_ran()))
Index("ix_predictions_candidate_ms", predictions.c.rollout_id, predictions.c.candidate_ms, predictions.c.ts,
      sqlite_where=text(CANDIDATE_TIMED), postgresql_where=text(CANDIDATE_TIMED))
Index("ix_predictions_champion_ms", predictions.c.rollout_id, predictions.c.champion_ms, predictions.c.ts,
      sqlite_where=text("champion_ms IS NOT NULL"), postgresql_where=text("champion_ms IS NOT NULL"))

# Per-minute counts of each rollout's logged requests per region, kept by the database itself: triggers on
# `predictions` (roomsight.rollup) apply every insert, update and delete in the writer's transaction. A
# rollout's counts are then a sum over one row per minute and region, not a scan of its requests.
ROLLUP_COUNTERS = (
    "requests",  # logged requests
    "compared",  # both models answered (disagreement is set)
    "disagreements",
    "candidate_served",  # the candidate answered the user
    "candidate_calls",  # the candidate ran (candidate_ran)
    "candidate_errors",  # ... and failed or timed out
    "candidate_timed",  # ... with a latency (CANDIDATE_TIMED): the rank base of its p99
    "champion_timed",  # the champion ran, with a latency: the rank base of its p99
    "ood_flagged",  # at least one out-of-domain flag
)
# Latency totals of the timed calls above (the report's mean per time bucket), and the largest latency
# logged in the minute, which an update or delete never lowers (a call's latency is written once).
ROLLUP_SUMS = ("candidate_ms_sum", "champion_ms_sum")
ROLLUP_MAXES = ("candidate_ms_max", "champion_ms_max")
traffic_minutes = Table(
    "traffic_minutes",
    metadata,
    Column("rollout_id", String(36), primary_key=True),
    Column("minute", BigInteger, primary_key=True),  # floor(ts / 60)
    Column("region", String(REGION_MAX), primary_key=True),
    *(Column(name, BigInteger, nullable=False, server_default="0") for name in ROLLUP_COUNTERS),
    *(Column(name, Float, nullable=False, server_default="0") for name in ROLLUP_SUMS),
    *(Column(name, Float) for name in ROLLUP_MAXES),
)
# The same counts over each rollout's whole life, kept by the same triggers: what `status` and the guard
# read now is one row, however long the rollout has run.
traffic_totals = Table(
    "traffic_totals",
    metadata,
    Column("rollout_id", String(36), primary_key=True),
    *(Column(name, BigInteger, nullable=False, server_default="0") for name in ROLLUP_COUNTERS),
)

# Results of drift checks over a rollout's traffic (monitoring.drift_checks): an Evidently report costs
# seconds, so a background check writes one here and `rollout status` reads the latest with its age.
drift_checks = Table(
    "drift_checks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rollout_id", String(36), nullable=False),
    Column("created_at", Float, nullable=False),  # when the check finished (unix seconds)
    Column("window_since", Float),  # ... and from this time: the start of the step it read (NULL: the whole rollout)
    Column("window_until", Float, nullable=False),  # when the newest prediction it read was logged (by the log's clock)
    Column("n_window", Integer, nullable=False),  # predictions in the window
    Column("n_sample", Integer, nullable=False),  # of which compared (a uniform sample when the window is large)
    Column("alarm", Boolean, nullable=False),
    Column("drifted_share", Float, nullable=False),
    Column("ood_share", Float, nullable=False),
    Column("summary", JSON, nullable=False),  # monitoring.drift.DriftResult.to_dict()
)
# Renamed or removed, an index goes in roomsight.db.DROPPED_INDEXES, or databases upgraded keep it.
Index("ix_drift_checks_rollout_window", drift_checks.c.rollout_id, drift_checks.c.window_until)

rollout_state = Table(
    "rollout_state",
    metadata,
    Column("id", Integer, primary_key=True),  # always 1: one rollout at a time per registered model
    Column("generation", Integer, nullable=False),  # bumped on every write: optimistic concurrency
    Column("state", JSON, nullable=False),  # roomsight.rollout_state.RoutingState as a dict
    Column("updated_at", Float, nullable=False),
)

# Rollout changes whose MLflow side (the run recording it, the aliases) is not done yet. A change's row is
# written in the same transaction as the state it makes, so a change MLflow missed (down, or the process
# died) is never without its record: rollout.outbox writes it when MLflow can take it, and deletes the row.
rollout_outbox = Table(
    "rollout_outbox",
    metadata,
    Column("event_id", String(36), primary_key=True),  # the run's `event_id` tag: a change is recorded once
    Column("generation", Integer, nullable=False),  # of the state the change wrote
    Column("event", JSON, nullable=False),  # rollout.records.Event.to_dict()
    Column("run_id", String(64)),  # set once recorded
    Column("aliases_moved", Boolean, nullable=False),
    Column("claimed_until", Float),  # a process is writing it to MLflow until then
    # Whose claim that is (rollout.outbox): a claim that ran out and was taken over is no longer the slow
    # process's to settle. NULL on rows claimed before owners were kept, and on released rows.
    Column("claimed_by", String(36)),
    Column("last_error", Text),
)

# The human review queue (monitoring.review). One item per photo per rollout; who holds it is decided by
# compare-and-set UPDATEs on `claim_id`, so two reviewers never get the same item on SQLite or PostgreSQL.
# Columns added after the first release are nullable or have a server default (roomsight.db migrates).
review_items = Table(
    "review_items",
    metadata,
    Column("id", String(36), primary_key=True),  # uuid5 of rollout and photo: the same traffic, the same ids
    Column("rollout_id", String(36), nullable=False),
    Column("photo_key", String(160), nullable=False),  # photo_id, else request_id: one item per photo
    Column("request_id", String(36), nullable=False),  # the logged prediction it came from
    Column("reason", String(16), nullable=False),  # its sampling stratum: disagreement | low_confidence | spot_check
    Column("priority", Integer, nullable=False),  # the stratum's rank (roomsight.verdicts.STRATA)
    Column("region", String(REGION_MAX), nullable=False),
    Column("predicted", String(LABEL_MAX), nullable=False),  # the answer given
    Column("created_at", Float, nullable=False),
    Column("status", String(8), nullable=False),  # pending | claimed | done
    Column("claim_id", String(36)),  # the current (or, when done, the deciding) claim
    Column("claimed_by", String(64)),
    Column("lease_until", Float),
    Column("pi", Float),  # the probability with which the photo was sampled (its stratum's rate)
    Column("logged_at", Float),  # the prediction's ts: items are reviewed oldest first
    Column("reviews_wanted", Integer, nullable=False, server_default="1"),  # 2 when double-reviewed, 3 on a conflict
    Column("reviews_done", Integer, nullable=False, server_default="0"),
    Column("truth", String(64)),  # the resolved verdict once reviews_done == reviews_wanted
    Column("resolved_at", Float),
    UniqueConstraint("rollout_id", "photo_key", name="uq_review_items_photo"),
)
Index("ix_review_items_queue", review_items.c.status, review_items.c.priority, review_items.c.created_at)
Index("ix_review_items_rollout_order", review_items.c.rollout_id, review_items.c.status, review_items.c.logged_at)
# The review sample reads a rollout's resolved items and the oldest open disagreement: as many index entries
# as reviews given, and one, however many items the queue holds.
Index("ix_review_items_resolved", review_items.c.rollout_id, review_items.c.logged_at,
      sqlite_where=text("truth IS NOT NULL"), postgresql_where=text("truth IS NOT NULL"))
Index("ix_review_items_open", review_items.c.rollout_id, review_items.c.reason, review_items.c.logged_at,
      sqlite_where=text("truth IS NULL"), postgresql_where=text("truth IS NULL"))

# One row per reviewer per item: a double-reviewed item has two, a conflict a third.
review_verdicts = Table(
    "review_verdicts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("item_id", String(36), nullable=False, index=True),
    Column("claim_id", String(36), nullable=False, unique=True),  # a replayed submission cannot add a second
    Column("rollout_id", String(36), nullable=False, index=True),
    Column("reviewer", String(64), nullable=False),
    Column("label", String(LABEL_MAX), nullable=False),  # a class, or "unusable"
    Column("ts", Float, nullable=False),
    UniqueConstraint("item_id", "reviewer", name="uq_review_verdicts_reviewer"),  # nobody reviews a photo twice
)

# Photos sampled for review that no reviewer can see: the store did not hold their photo by the time the fill
# stopped waiting for it (dropped under load, a disk error, kept on another node). The paired analysis
# reads each one as the worst case for the decision at hand, where counting it as unsampled would read it
# as a tie between the models.
review_unseen = Table(
    "review_unseen",
    metadata,
    Column("rollout_id", String(36), primary_key=True),
    Column("photo_key", String(160), primary_key=True),
    Column("request_id", String(36), nullable=False),
    Column("reason", String(16), nullable=False),  # its sampling stratum
    Column("pi", Float, nullable=False),
    Column("logged_at", Float, nullable=False),
    Column("created_at", Float, nullable=False),
)

# How far `monitoring.review.sampling.fill` has read each rollout's log: the next fill starts at
# `watermark`; every row up to `settled_to` has been sampled (and queued, or recorded in review_unseen).
review_fill = Table(
    "review_fill",
    metadata,
    Column("rollout_id", String(36), primary_key=True),
    Column("watermark", Float, nullable=False),
    Column("settled_to", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    # The smallest rate any fill drew disagreements at: until a photo drawn at it is queued, no item says so.
    Column("disagreement_rate", Float),
    # The stratum rule's threshold (review.low_confidence) the rollout's first fill recorded before drawing:
    # every fill draws, and the review sample counts, by it. NULL on rows from before it was kept: each
    # process's own setting.
    Column("low_confidence", Float),
)

# The review sample's counts of a rollout's compared predictions per stratum and cell, as last read
# (monitoring.review.cell_counts): rows logged up to `final_to` (at most the fill's watermark) no longer
# change and those up to `edge` are settled, so any process adds only the rows logged or settled since,
# whatever the length of the log.
review_counts = Table(
    "review_counts",
    metadata,
    Column("rollout_id", String(36), primary_key=True),
    Column("low_confidence", Float, primary_key=True),  # the stratum rule's threshold the counts were read with
    Column("final_to", Float, nullable=False),
    Column("edge", Float, nullable=False),
    Column("counts", JSON, nullable=False),  # [[stratum, region, class, ood, discordant, a, b, final, settled], ...]
    Column("updated_at", Float, nullable=False),
    # The rows up to the common frontier `common_to`: [[stratum, region, class, ood, discordant, a, b, n], ...];
    # NULL: none kept. Apart from `counts`, so a process from before them reads and rewrites that unchanged.
    Column("common_to", Float),
    Column("common_counts", JSON),
)

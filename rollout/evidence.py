"""Evidence for gates: numbers about one rollout, gathered from every provider.

A provider is a function (engine, settings, rollout_id, as_of=None) -> {metric: value or None}; `as_of`
(unix seconds) restricts it to what was known then, so a plan can be replayed over a logged rollout. The
log's `step_` metrics count from `since`, when the current step began: a later step's exit then asks for
evidence of its own, where the rollout's counts already held the earlier steps'.
The prediction log's provider is here (agreement, candidate traffic, errors, latency, the step's
out-of-domain share); monitoring contributes review verdicts and drift. Every metric a provider returns must
be named in `rollout.metrics.METRICS`, so that a plan's gates are checked against known names when the plan
is loaded.

The log provider costs what its question costs, not what the log holds: counts come from the rollup
(roomsight.rollup), the guard's last N candidate calls from an index range of N entries, and each p99 is
read exactly as an order statistic, by walking the top 1% of the rollout's latencies in an index
(roomsight.tables: ix_predictions_candidate_ms, ix_predictions_champion_ms).

At a past moment (`as_of`) a row counts as it stood then: its shadow answer, written on it after it was
logged, only if it had landed by `as_of` (roomsight.tables.shadow_known). The rollup holds every answer as
it is now, so those counts are the rollup's less the answers of the last review.settle_s before `as_of`
that landed after it (roomsight.rollup.known_counts): at a past moment they cost what they cost now.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
from sqlalchemy import Connection, Engine, text

from roomsight import rollup
from roomsight.config import Settings
from roomsight.tables import CANDIDATE_TIMED, candidate_ran, shadow_known
from rollout.metrics import METRICS, SOURCES

Provider = Callable[..., dict[str, float | None]]  # (engine, settings, rollout_id, as_of=None)
SHADOW_ONLY = "shadow"  # a logged request's routing_reason while the candidate answered no user (serving.routing)
P99 = 0.99
STEP_METRICS = tuple(m for m in METRICS if m.startswith("step_"))


@dataclass(frozen=True)
class Evidence:
    values: dict[str, float | None]

    def get(self, key: str) -> float | None:
        return self.values.get(key)


def providers(since: float | None = None, step_counts: bool = True) -> dict[str, Provider]:
    """Every source of gate evidence by the name rollout.metrics.SOURCES gives it, in the order their
    numbers are shown; `since`: when the current step began (the drift checks made before it are no
    evidence of it), and the log's `step_` numbers count from it with `step_counts`."""
    from monitoring.drift_checks import evidence as drift_evidence
    from monitoring.review.evidence import evidence as review_evidence

    return {"log": partial(log_evidence, since=since if step_counts else None), "review": review_evidence,
            "drift": partial(drift_evidence, since=since)}


def collect(engine: Engine, settings: Settings, rollout_id: str | None, as_of: float | None = None,
            needed: frozenset[str] | None = None, since: float | None = None) -> Evidence:
    """Every metric, or (with `needed`) those of the providers that compute any of `needed`; the `step_`
    metrics since `since` (None without it, or when `needed` names none of them), and drift from the
    checks made since then."""
    values: dict[str, float | None] = {}
    if rollout_id is None:
        return Evidence(values)
    # The step's numbers cost a second rollup read, at the step's start: the guard's tick asks only for the
    # metrics its conditions name, and most plans name no `step_` one.
    step_counts = needed is None or not needed.isdisjoint(STEP_METRICS)
    for source, provider in providers(since, step_counts).items():
        if needed is None or needed & SOURCES[source]:
            values.update(provider(engine, settings, rollout_id, as_of=as_of))
    return Evidence(values)


def log_evidence(engine: Engine, settings: Settings, rollout_id: str, last: int | None = None,
                 as_of: float | None = None, since: float | None = None) -> dict[str, float | None]:
    """Numbers over a rollout's logged requests up to `as_of`; the candidate's error rate and p99 over its
    `last` N calls when given (the guard's window); the `step_` numbers over those after `since`."""
    with engine.connect() as conn:
        if as_of is None:
            c = rollup.counts(conn, rollout_id)
            before = rollup.counts(conn, rollout_id, since) if since is not None else None
        else:
            # The step's start as it stood at `as_of` too: the guard's difference then was of two readings
            # then, both without the shadow answers still to land.
            lag = settings.review.settle_s
            c = rollup.known_counts(conn, rollout_id, as_of, as_of, lag)
            before = rollup.known_counts(conn, rollout_id, since, as_of, lag) if since is not None else None
        if last is None:
            calls, errors = c.candidate_calls, c.candidate_errors
            cand_p99 = _p99(conn, rollout_id, "candidate_ms", CANDIDATE_TIMED, c.candidate_timed, as_of, "candidate")
        else:
            w = _last_calls(conn, rollout_id, last, as_of)
            calls, errors, cand_p99 = w.calls, w.errors, w.p99_ms
        champ_p99 = _p99(conn, rollout_id, "champion_ms", "champion_ms IS NOT NULL", c.champion_timed, as_of,
                         "champion")
    return {
        "requests": float(c.requests),
        "compared": float(c.compared),
        "agreement": 1.0 - c.disagreements / c.compared if c.compared else None,
        "candidate_served": float(c.candidate_served),
        "candidate_requests": float(calls),
        "candidate_errors": float(errors),
        "candidate_error_rate": errors / calls if calls else None,
        "candidate_p99_ms": cand_p99,
        "champion_p99_ms": champ_p99,
        "champion_requests": float(c.champion_timed),
        **_step(c, before),
    }


def _step(now: rollup.Counts, before: rollup.Counts | None) -> dict[str, float | None]:
    """The step's numbers: the rollout's counts now less those when the step began (a difference of two
    rollup reads, whatever the step's length)."""
    if before is None:
        return {name: None for name in STEP_METRICS}
    d = now.since(before)
    return {
        "step_requests": float(d.requests),
        "step_compared": float(d.compared),
        "step_agreement": 1.0 - d.disagreements / d.compared if d.compared else None,
        "step_candidate_served": float(d.candidate_served),
        "step_candidate_requests": float(d.candidate_calls),
        "step_candidate_error_rate": d.candidate_errors / d.candidate_calls if d.candidate_calls else None,
        # The drift provider's `ood_share` holds the earlier steps' traffic: a person who promoted past a pause on it
        # was paused again at the next tick, on the share they had decided on. Here, the step's two reads are those
        # of the other `step_` numbers, as known at `as_of` as theirs.
        "step_ood_share": d.ood_flagged / d.requests if d.requests else None,
    }


@dataclass(frozen=True)
class CallWindow:
    """The candidate's last N calls, less those made before it answered any user: what the budget guard
    judges."""

    calls: int
    errors: int
    p99_ms: float | None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.calls if self.calls else None


def candidate_window(engine: Engine, rollout_id: str, last: int, as_of: float | None = None) -> CallWindow:
    """Of the candidate's last `last` calls known at `as_of` (a shadow call once its outcome had landed),
    those made once it answered users, and nothing else: the guard's question, answered from at most `last`
    index entries whatever the log holds."""
    with engine.connect() as conn:
        return _last_calls(conn, rollout_id, last, as_of)


def _last_calls(conn: Connection, rollout_id: str, last: int, as_of: float | None) -> CallWindow:
    """An index range of at most `last` entries (ix_predictions_candidate_calls)."""
    # Named for SQLite, whose planner, without statistics, may take the wider rollout index instead and read
    # every request between the calls when the candidate runs on few of them.
    source = "predictions INDEXED BY ix_predictions_candidate_calls" if conn.dialect.name == "sqlite" else "predictions"
    rows = conn.execute(text(f"SELECT candidate_ms, candidate_error IS NOT NULL, routing_reason FROM {source} "
                             f"WHERE rollout_id = :rid {_then('candidate', as_of)}AND {candidate_ran()} "
                             "ORDER BY ts DESC LIMIT :last"),
                        {"rid": rollout_id, "as_of": as_of, "last": last}).all()
    # The budget is watched while the candidate answers users. Before that it ran at shadow priority, under
    # the shadow timeout: those latencies and timeouts say nothing of what users get, and would decide the
    # first judgements after the promotion (or dilute its first failures). Dropped from the N entries read,
    # not searched past, so the window fills with answering calls and the read stays N entries.
    rows = [r for r in rows if r[2] != SHADOW_ONLY]
    ms = [r[0] for r in rows if r[0] is not None]
    return CallWindow(len(rows), sum(1 for r in rows if r[1]), float(np.percentile(ms, P99 * 100)) if ms else None)


def _then(role: str, as_of: float | None) -> str:
    """SQL restricting a read of `role`'s answers to those known at `as_of` (nothing without it)."""
    return "" if as_of is None else f"AND ts <= :as_of AND {shadow_known(role, ':as_of')} "


def _p99(conn: Connection, rollout_id: str, column: str, where: str, n: int, as_of: float | None,
         role: str) -> float | None:
    """The p99 of `column` (`role`'s latency) over the `n` rows matching `where` (numpy's default, linear
    interpolation between the two order statistics around rank 0.99 (n - 1)), read from the top of the
    column's index: the walk covers the top 1% of the rows, whatever the window, and the result is exact."""
    if n <= 0:
        return None
    virtual = (n - 1) * P99
    below = math.floor(virtual)
    above = min(below + 1, n - 1)
    # Named for SQLite: with `as_of`, its planner may prefer the rollout's time range and sort all of it.
    source = f"predictions INDEXED BY ix_predictions_{column}" if conn.dialect.name == "sqlite" else "predictions"
    values = conn.execute(text(f"SELECT {column} FROM {source} WHERE rollout_id = :rid "
                               f"{_then(role, as_of)}AND {where} "
                               f"ORDER BY {column} DESC LIMIT :k OFFSET :skip"),
                          {"rid": rollout_id, "as_of": as_of, "k": above - below + 1, "skip": n - 1 - above}).scalars().all()
    if not values:
        return None  # rows deleted since they were counted
    hi, lo = float(values[0]), float(values[-1])
    return _lerp(lo, hi, virtual - below)


def _lerp(a: float, b: float, t: float) -> float:
    """numpy's interpolation between neighbouring order statistics, step for step, so the figure is
    numpy.percentile's to the last bit."""
    diff = b - a
    return b - diff * (1 - t) if t >= 0.5 else a + diff * t

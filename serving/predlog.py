"""The prediction log: every answered request, and the shadow model's output where it ran.

Writes happen in batches on a background thread, off the request path. A request's row is inserted
when it is answered; the shadow result arrives later and is applied as an update of that row.
While the database is unreachable, records wait in a bounded buffer; overflow is counted, not hidden.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Engine, bindparam, insert, update

from roomsight.tables import predictions

log = logging.getLogger(__name__)


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
    ood: dict[str, Any] | None = None
    descriptors: dict[str, float] | None = None
    routing_reason: str | None = None


@dataclass
class ShadowUpdate:
    """The shadow model's outcome for an already-answered request."""

    request_id: str
    shadow_status: str  # ok | error | timeout
    values: dict[str, Any] = field(default_factory=dict)  # champion_* or candidate_* columns, disagreement


_UPDATE_COLUMNS = ("champion_version", "champion_label", "champion_scores", "champion_ms", "candidate_version",
                   "candidate_label", "candidate_scores", "candidate_ms", "candidate_error", "disagreement")


class LogWriter:
    def __init__(self, engine: Engine, *, flush_interval_s: float = 0.5, batch_size: int = 256,
                 buffer_max: int = 100_000) -> None:
        self._engine = engine
        self._interval = flush_interval_s
        self._batch = batch_size
        self._max = buffer_max
        self._rows: deque[PredictionRecord] = deque()
        self._updates: deque[ShadowUpdate] = deque()
        self._unwritten: dict[str, PredictionRecord] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.written = 0
        self.updated = 0
        self.overflow = 0  # records dropped because the buffer was full (database down too long)
        self.write_errors = 0
        self._thread = threading.Thread(target=self._run, name="prediction-log-writer", daemon=True)
        self._thread.start()

    # -- request path: O(1), never touches the database ---------------------------------------
    def submit(self, record: PredictionRecord) -> bool:
        with self._lock:
            if len(self._rows) + len(self._updates) >= self._max:
                self.overflow += 1
                return False
            self._rows.append(record)
            self._unwritten[record.request_id] = record
        return True

    def submit_shadow(self, upd: ShadowUpdate) -> bool:
        unknown = set(upd.values) - set(_UPDATE_COLUMNS)
        if unknown:
            raise ValueError(f"a shadow update may not set {sorted(unknown)}")
        with self._lock:
            if len(self._rows) + len(self._updates) >= self._max:
                self.overflow += 1
                return False
            # The row may still be waiting here: fold the update in rather than issuing an UPDATE.
            rec = self._unwritten.get(upd.request_id)
            if rec is not None:
                rec.shadow_status = upd.shadow_status
                for k, v in upd.values.items():
                    setattr(rec, k, v)
                return True
            self._updates.append(upd)
        return True

    @property
    def pending(self) -> int:
        return len(self._rows) + len(self._updates)

    # -- background -------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            self._drain()
        self._drain()

    def _drain(self) -> None:
        while True:
            with self._lock:
                rows = [asdict(self._rows[i]) for i in range(min(self._batch, len(self._rows)))]
                # Snapshotted: from now on a shadow result for these rows must go through an UPDATE.
                for r in rows:
                    self._unwritten.pop(r["request_id"], None)
                # Updates may only be applied once their rows are in the table, i.e. after rows queued before them.
                ups = [self._updates[i] for i in range(min(self._batch, len(self._updates)))] if not self._rows or len(rows) == len(self._rows) else []
            if not rows and not ups:
                return
            try:
                with self._engine.begin() as conn:
                    if rows:
                        conn.execute(insert(predictions), rows)
                    for stmt, params in _update_batches(ups):
                        conn.execute(stmt, params)
            except Exception as exc:  # database down: keep the records, retry on the next tick
                self.write_errors += 1
                log.warning("prediction log write failed (%s); %d records buffered", type(exc).__name__, self.pending)
                return
            with self._lock:
                for _ in rows:
                    self._rows.popleft()
                for _ in ups:
                    self._updates.popleft()
            self.written += len(rows)
            self.updated += len(ups)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far is written (or `timeout`)."""
        import time

        deadline = time.monotonic() + timeout
        while self.pending and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.02)
        return self.pending == 0

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)


def _update_batches(ups: list[ShadowUpdate]) -> list[tuple[Any, list[dict[str, Any]]]]:
    """One executemany per set of columns: a champion-shadow update must not null the candidate's columns."""
    groups: dict[tuple[str, ...], list[ShadowUpdate]] = {}
    for u in ups:
        groups.setdefault(tuple(sorted(u.values)), []).append(u)
    batches = []
    for cols, members in groups.items():
        # bindparam names may not equal column names in an UPDATE's SET clause, hence the prefix.
        stmt = (update(predictions).where(predictions.c.request_id == bindparam("p_rid"))
                .values(shadow_status=bindparam("p_shadow_status"), **{c: bindparam(f"p_{c}") for c in cols}))
        params = [{"p_rid": u.request_id, "p_shadow_status": u.shadow_status, **{f"p_{c}": u.values[c] for c in cols}}
                  for u in members]
        batches.append((stmt, params))
    return batches

"""The prediction log: every answered request, and the shadow model's output where it ran.

Writes happen in batches on a background thread, off the request path. A request's row is inserted
when it is answered; the shadow result arrives later and is applied as an update of that row.
While the database is unreachable, records wait in a bounded buffer; overflow is counted, not hidden.
A record the database refuses for its values (a string longer than its column on PostgreSQL, a NaN in a
JSON column) is set aside, counted as `rejected` and kept in `rejected.jsonl` in the journal directory,
and the records around it are written: retried with its batch, it would stall the log for good.
With a journal directory, every record is journaled before `submit` returns (see `serving.journal`), so
a crash loses no acknowledged prediction: the next writer on that directory replays what was not written
(at start-up, and while it runs, for a writer that died after it started).
A row written, or answered in shadow, more than `late_after_s` after its time is marked `late` (see
roomsight.tables.predictions). The records are `serving.log_records`; the statements and the replay,
`serving.log_sql`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert
from sqlalchemy.exc import DataError, IntegrityError

from roomsight.tables import predictions
from serving.journal import Journal
from serving.log_records import UPDATE_COLUMNS, PredictionRecord, ShadowUpdate
from serving.log_sql import Refused, absent, mark_late, recover, update_batches, write_each

_ROTATE_BYTES = 4 * 1024 * 1024

log = logging.getLogger(__name__)


class LogWriter:
    def __init__(self, engine: Engine, *, flush_interval_s: float = 0.5, batch_size: int = 256,
                 buffer_max: int = 100_000, journal_dir: Path | None = None, fsync: bool = False,
                 late_after_s: float | None = None, orphan_scan_s: float = 60.0) -> None:
        self._engine = engine
        self._late_after = late_after_s
        self._journal_dir, self._orphan_scan_s = journal_dir, orphan_scan_s
        refused: list[Refused] = []
        self.recovered = recover(engine, journal_dir, late_after_s, refused) if journal_dir is not None else 0
        self._journal = Journal(journal_dir, fsync=fsync) if journal_dir is not None else None
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
        self.overflow = 0  # records dropped because the buffer was full (database down too long)
        self.write_errors = 0
        self.rejected = len(refused)  # records the database refused for their values, set aside (module doc)
        self._thread = threading.Thread(target=self._run, name="prediction-log-writer", daemon=True)
        self._thread.start()

    # -- request path: O(1), never touches the database ---------------------------------------
    def submit(self, record: PredictionRecord) -> bool:
        with self._lock:
            if len(self._rows) + len(self._updates) >= self._max:
                self.overflow += 1
                return False
            if self._journal is not None:
                self._journal.append("row", asdict(record))
            self._rows.append(record)
            self._unwritten[record.request_id] = record
        return True

    def submit_shadow(self, upd: ShadowUpdate) -> bool:
        unknown = set(upd.values) - set(UPDATE_COLUMNS)
        if unknown:
            raise ValueError(f"a shadow update may not set {sorted(unknown)}")
        with self._lock:
            # The row may still be waiting here: fold the update in rather than issuing an UPDATE. That takes
            # no room, so it is accepted even with the buffer full (as it is during a database outage).
            rec = self._unwritten.get(upd.request_id)
            if rec is None and len(self._rows) + len(self._updates) >= self._max:
                self.overflow += 1
                return False
            if self._journal is not None:
                self._journal.append("update", asdict(upd))
            if rec is not None:
                rec.shadow_status = upd.shadow_status
                rec.shadow_at = upd.shadow_at
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
        next_scan = time.monotonic() + self._orphan_scan_s
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            self._drain()
            if self._journal_dir is not None and time.monotonic() >= next_scan:
                self._replay_orphans(self._journal_dir)
                next_scan = time.monotonic() + self._orphan_scan_s
        self._drain()

    def _replay_orphans(self, journal_dir: Path) -> None:
        """Replay the journals of writers that died after this one started: a replica replaced while it
        still ran held its journal when this one looked at start-up, and the next start may be far off."""
        refused: list[Refused] = []
        try:
            self.recovered += recover(self._engine, journal_dir, self._late_after, refused)
        except Exception as exc:  # database down: the orphans wait for the next scan
            log.warning("prediction log: replaying orphan journals failed (%s)", type(exc).__name__)
        self.rejected += len(refused)

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
                try:
                    inserted = self._write(rows, ups)
                except DataError:
                    inserted = self._write_each(rows, ups)
            except Exception as exc:  # database down: keep the records, retry on the next tick
                self.write_errors += 1
                log.warning("prediction log write failed (%s); %d records buffered", type(exc).__name__, self.pending)
                return
            with self._lock:
                for _ in rows:
                    self._rows.popleft()
                for _ in ups:
                    self._updates.popleft()
                self._maybe_rotate()
            self.written += inserted

    def _write(self, rows: list[dict[str, Any]], ups: list[ShadowUpdate]) -> int:
        """One transaction; returns how many rows it inserted."""
        late_before = mark_late(rows, self._late_after)
        try:
            with self._engine.begin() as conn:
                if rows:
                    conn.execute(insert(predictions), rows)
                for stmt, params in update_batches(ups, late_before):
                    conn.execute(stmt, params)
            return len(rows)
        except IntegrityError:
            # A retry of a batch whose COMMIT reached the database while the connection died before the
            # acknowledgement (a server stopping mid-commit): its rows are there. Inserting them again would
            # fail on the key at every retry and stall the log for good, so insert only the absent ones.
            # Re-applying the batch's updates is harmless: they set the same values.
            with self._engine.begin() as conn:
                missing = absent(conn, rows)
                if missing:
                    conn.execute(insert(predictions), missing)
                for stmt, params in update_batches(ups, late_before):
                    conn.execute(stmt, params)
            log.warning("prediction log: %d of %d rows of a retried batch were already written", len(rows) - len(missing), len(rows))
            return len(missing)

    def _write_each(self, rows: list[dict[str, Any]], ups: list[ShadowUpdate]) -> int:
        """The batch one record per transaction, setting aside those the database refuses for their values."""
        inserted, refused = write_each(self._engine, rows, ups, self._late_after, self._journal_dir)
        self.rejected += len(refused)
        return inserted

    def _maybe_rotate(self) -> None:
        """With the lock held: once everything journaled is in the database, start a new segment and
        delete the old one, so the journal stays small."""
        j = self._journal
        if j is None or self._rows or self._updates or j.path is None or j.path.stat().st_size < _ROTATE_BYTES:
            return
        old = j.rotate()
        if old is not None:
            old.unlink(missing_ok=True)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far is written (or `timeout`)."""
        deadline = time.monotonic() + timeout
        while self.pending and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.02)
        return self.pending == 0

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)
        if self._journal is not None:
            self._journal.close()
            if not self.pending and self._journal.path is not None:
                self._journal.path.unlink(missing_ok=True)  # everything is in the database

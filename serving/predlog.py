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
roomsight.tables.predictions).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

from pathlib import Path

from sqlalchemy import Connection, Engine, and_, bindparam, case, insert, select, update
from sqlalchemy.exc import DataError, IntegrityError

from roomsight.tables import predictions
from serving.journal import Journal, orphans, read_entries

_ROTATE_BYTES = 4 * 1024 * 1024
REJECTED_FILE = "rejected.jsonl"
Refused = tuple[str, dict[str, Any], str]  # a record the database refused: kind (row | update), record, its reason

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
    shadow_status: str  # ok | error | timeout | dropped (waited too long to start)
    values: dict[str, Any] = field(default_factory=dict)  # champion_* or candidate_* columns, disagreement


_UPDATE_COLUMNS = ("champion_version", "champion_label", "champion_scores", "champion_ms", "candidate_version",
                   "candidate_label", "candidate_scores", "candidate_ms", "candidate_error", "disagreement")


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
        unknown = set(upd.values) - set(_UPDATE_COLUMNS)
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
        late_before = _mark_late(rows, self._late_after)
        try:
            with self._engine.begin() as conn:
                if rows:
                    conn.execute(insert(predictions), rows)
                for stmt, params in _update_batches(ups, late_before):
                    conn.execute(stmt, params)
            return len(rows)
        except IntegrityError:
            # A retry of a batch whose COMMIT reached the database while the connection died before the
            # acknowledgement (a server stopping mid-commit): its rows are there. Inserting them again would
            # fail on the key at every retry and stall the log for good, so insert only the absent ones.
            # Re-applying the batch's updates is harmless: they set the same values.
            with self._engine.begin() as conn:
                missing = _absent(conn, rows)
                if missing:
                    conn.execute(insert(predictions), missing)
                for stmt, params in _update_batches(ups, late_before):
                    conn.execute(stmt, params)
            log.warning("prediction log: %d of %d rows of a retried batch were already written", len(rows) - len(missing), len(rows))
            return len(missing)

    def _write_each(self, rows: list[dict[str, Any]], ups: list[ShadowUpdate]) -> int:
        """The batch one record per transaction, setting aside those the database refuses for their values."""
        inserted, refused = write_each(self._engine, rows, ups, self._late_after)
        for kind, payload, reason in refused:
            self.rejected += 1
            set_aside(self._journal_dir, kind, payload, reason)
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
        if self._journal is not None:
            self._journal.close()
            if not self.pending and self._journal.path is not None:
                self._journal.path.unlink(missing_ok=True)  # everything is in the database


def _mark_late(rows: list[dict[str, Any]], late_after_s: float | None) -> float | None:
    """Mark the rows written more than `late_after_s` after their time; returns the time before which a
    row answered in shadow now is late (None: nothing is marked)."""
    if late_after_s is None:
        return None
    late_before = time.time() - late_after_s
    for r in rows:
        r["late"] = True if r["ts"] < late_before else None
    return late_before


def _update_batches(ups: list[ShadowUpdate], late_before: float | None = None) -> list[tuple[Any, list[dict[str, Any]]]]:
    """One executemany per set of columns: a champion-shadow update must not null the candidate's columns.
    With `late_before`, a row whose time is before it is marked late (its own `ts`, read by the UPDATE),
    unless it already had its shadow outcome: a row gets one, so that is the same update applied again (a
    replayed journal, a retried batch), which changes nothing the review fill read in time."""
    groups: dict[tuple[str, ...], list[ShadowUpdate]] = {}
    for u in ups:
        groups.setdefault(tuple(sorted(u.values)), []).append(u)
    p = predictions.c
    late = {} if late_before is None else {
        "late": case((and_(p.ts < late_before, p.shadow_status.is_(None)), True), else_=p.late)}
    batches = []
    for cols, members in groups.items():
        # bindparam names may not equal column names in an UPDATE's SET clause, hence the prefix.
        stmt = (update(predictions).where(p.request_id == bindparam("p_rid"))
                .values(shadow_status=bindparam("p_shadow_status"), **{c: bindparam(f"p_{c}") for c in cols}, **late))
        params = [{"p_rid": u.request_id, "p_shadow_status": u.shadow_status, **{f"p_{c}": u.values[c] for c in cols}}
                  for u in members]
        batches.append((stmt, params))
    return batches


def write_each(engine: Engine, rows: list[dict[str, Any]], ups: list[ShadowUpdate],
               late_after_s: float | None) -> tuple[int, list[Refused]]:
    """Write rows, then updates, each in its own transaction; returns how many rows were inserted and the
    records refused for their values (kind, record, the database's reason). Any other error propagates: the
    caller retries, and rows already written are then found present."""
    inserted, refused = 0, []
    late_before = _mark_late(rows, late_after_s)
    for row in rows:
        try:
            with engine.begin() as conn:
                if _absent(conn, [row]):
                    conn.execute(insert(predictions), [row])
                    inserted += 1
        except DataError as exc:
            refused.append(("row", row, _reason(exc)))
    for u in ups:
        try:
            with engine.begin() as conn:
                for stmt, params in _update_batches([u], late_before):
                    conn.execute(stmt, params)
        except DataError as exc:
            refused.append(("update", asdict(u), _reason(exc)))
    return inserted, refused


def _reason(exc: DataError) -> str:
    return str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__


def set_aside(journal_dir: Path | None, kind: str, record: dict[str, Any], reason: str) -> None:
    """Keep a refused record where a person can find it (with no journal, in the log only)."""
    log.error("prediction log: the database refused %s %s (%s)%s", kind, record.get("request_id"), reason,
              f"; kept in {journal_dir / REJECTED_FILE}" if journal_dir is not None else "")
    if journal_dir is not None:
        with open(journal_dir / REJECTED_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps({"kind": kind, "reason": reason, "record": record}, default=str) + "\n")


def _absent(conn: Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows whose request_id the table lacks (the first of any duplicates within `rows`)."""
    ids = list(dict.fromkeys(r["request_id"] for r in rows))
    present: set[str] = set()
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        present |= {r[0] for r in conn.execute(select(predictions.c.request_id).where(predictions.c.request_id.in_(chunk)))}
    out, seen = [], set(present)
    for r in rows:
        if r["request_id"] not in seen:
            seen.add(r["request_id"])
            out.append(r)
    return out


def recover(engine: Engine, journal_dir: Path, late_after_s: float | None = None,
            refused: list[Refused] | None = None) -> int:
    """Replay journals left by dead writers: insert rows the database lacks, apply shadow updates, then
    delete the journals. Returns how many rows were inserted; records the database refuses are set aside
    (and added to `refused`)."""
    inserted = 0
    for path in orphans(journal_dir):
        rows: dict[str, dict[str, Any]] = {}
        ups: list[ShadowUpdate] = []
        for kind, payload in read_entries(path):
            if kind == "row":
                rows[payload["request_id"]] = payload
            else:
                ups.append(ShadowUpdate(**payload))
        try:
            with engine.begin() as conn:
                missing = _absent(conn, list(rows.values()))
                late_before = _mark_late(missing, late_after_s)
                if missing:
                    conn.execute(insert(predictions), missing)
                for stmt, params in _update_batches(ups, late_before):
                    conn.execute(stmt, params)
            inserted += len(missing)
        except DataError:
            # A journal holding a record the database refuses would fail at every start, and the ingress with it.
            added, these = write_each(engine, list(rows.values()), ups, late_after_s)
            inserted += added
            for kind, record, reason in these:
                set_aside(journal_dir, kind, record, reason)
            if refused is not None:
                refused += these
        path.unlink()
    return inserted

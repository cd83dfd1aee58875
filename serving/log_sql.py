"""How the prediction log's records become rows (see serving.predlog): a batch's statements, a row
marked late when written long after its time, the presence check a retried batch needs, record-by-record
writing that sets aside what the database refuses, and the replay of dead writers' journals."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, case, insert, select, update
from sqlalchemy.exc import DataError

from roomsight.tables import predictions
from serving.journal import orphans, read_entries
from serving.log_records import ShadowUpdate

REJECTED_FILE = "rejected.jsonl"
Refused = tuple[str, dict[str, Any], str]  # a record the database refused: kind (row | update), record, its reason

log = logging.getLogger(__name__)


def mark_late(rows: list[dict[str, Any]], late_after_s: float | None) -> float | None:
    """Mark the rows written more than `late_after_s` after their time; returns the time before which a
    row answered in shadow now is late (None: nothing is marked)."""
    if late_after_s is None:
        return None
    late_before = time.time() - late_after_s
    for r in rows:
        r["late"] = True if r["ts"] < late_before else None
    return late_before


def update_batches(ups: list[ShadowUpdate], late_before: float | None = None) -> list[tuple[Any, list[dict[str, Any]]]]:
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
                .values(shadow_status=bindparam("p_shadow_status"), shadow_at=bindparam("p_shadow_at"),
                        **{c: bindparam(f"p_{c}") for c in cols}, **late))
        params = [{"p_rid": u.request_id, "p_shadow_status": u.shadow_status, "p_shadow_at": u.shadow_at,
                   **{f"p_{c}": u.values[c] for c in cols}} for u in members]
        batches.append((stmt, params))
    return batches


def write_each(engine: Engine, rows: list[dict[str, Any]], ups: list[ShadowUpdate],
               late_after_s: float | None, journal_dir: Path | None) -> tuple[int, list[Refused]]:
    """Write rows, then updates, each in its own transaction; returns how many rows were inserted and the
    records refused for their values (kind, record, the database's reason), which are set aside in
    `journal_dir`. Any other error propagates: the caller retries, and rows already written are then found
    present."""
    inserted, refused = 0, []
    late_before = mark_late(rows, late_after_s)
    for row in rows:
        try:
            with engine.begin() as conn:
                if absent(conn, [row]):
                    conn.execute(insert(predictions), [row])
                    inserted += 1
        except DataError as exc:
            refused.append(("row", row, _reason(exc)))
    for u in ups:
        try:
            with engine.begin() as conn:
                for stmt, params in update_batches([u], late_before):
                    conn.execute(stmt, params)
        except DataError as exc:
            refused.append(("update", asdict(u), _reason(exc)))
    for kind, record, reason in refused:
        set_aside(journal_dir, kind, record, reason)
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


def absent(conn: Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
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
                # A journal written before updates carried shadow_at: NULL, counted from the row's ts (as
                # every reading then did), not from now, when it is read back.
                ups.append(ShadowUpdate(**{"shadow_at": None, **payload}))
        try:
            with engine.begin() as conn:
                missing = absent(conn, list(rows.values()))
                late_before = mark_late(missing, late_after_s)
                if missing:
                    conn.execute(insert(predictions), missing)
                for stmt, params in update_batches(ups, late_before):
                    conn.execute(stmt, params)
            inserted += len(missing)
        except DataError:
            # A journal holding a record the database refuses would fail at every start, and the ingress with it.
            added, these = write_each(engine, list(rows.values()), ups, late_after_s, journal_dir)
            inserted += added
            if refused is not None:
                refused += these
        path.unlink()
    return inserted

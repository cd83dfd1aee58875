"""A write-ahead journal for the prediction log, so an acknowledged prediction survives a crash.

The log writer batches database writes off the request path; a process killed between answering and
flushing would lose what it held. So every record is first appended to a local journal file (one JSON
line, flushed to the operating system before the answer is sent: a killed process loses nothing the OS
has; a power cut can, unless `fsync` is on). Segments are deleted once everything in them is in the
database. At start-up, journals left by dead processes are replayed: rows inserted if absent, shadow
updates applied, then the files removed. Each live journal holds an exclusive lock, so a recovering
process never replays a journal that is still being written, or that another is replaying.
"""

from __future__ import annotations

import fcntl
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


class Journal:
    def __init__(self, directory: Path, fsync: bool = False) -> None:
        self.directory = directory
        self.fsync = fsync
        directory.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = None
        self.path: Path | None = None
        self.rotate()

    def rotate(self) -> Path | None:
        """Start a new segment; returns the previous one (for the caller to delete once it is safe)."""
        old, old_file = self.path, self._file
        self.path = self.directory / f"journal-{os.getpid()}-{uuid.uuid4().hex[:12]}.jsonl"
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - held open for the segment's life
        fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        if old_file is not None:
            old_file.close()
        return old

    def append(self, kind: str, payload: dict[str, Any]) -> None:
        assert self._file is not None
        self._file.write(json.dumps({"k": kind, "p": payload}, separators=(",", ":")) + "\n")
        self._file.flush()
        if self.fsync:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def orphans(directory: Path) -> Iterator[Path]:
    """Journal segments no live process holds: left by a crash (or a clean stop that could not flush).
    Each stays locked until the caller asks for the next, so the caller replays and deletes it while a
    process starting on the same directory meanwhile takes it for a live one instead of replaying it too
    (a second replay fails on the rows' keys, or on the deleted file, and its process does not start)."""
    if not directory.exists():
        return
    for path in sorted(directory.glob("journal-*.jsonl")):
        try:
            f = open(path, encoding="utf-8")  # noqa: SIM115 - held open, and locked, while the caller replays it
        except FileNotFoundError:
            continue  # replayed and deleted by another process meanwhile
        with f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live writer, or another replay, holds it
            if not path.exists():
                continue  # the replay that held it deleted it
            yield path


def read_entries(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Entries in order; a torn last line (the process died mid-write, before answering) is skipped."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            yield entry["k"], entry["p"]

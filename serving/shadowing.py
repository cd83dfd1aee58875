"""When shadow work runs: a pure admission policy, no I/O (the ingress owns the calls).

Shadow calls use the answering models' idle time. A sampled request leaves a shadow job here; a job
starts only while no answering call is in flight and fewer than `concurrency` shadow calls run. A job
that waits longer than `max_wait_s`, or arrives when `capacity` jobs already wait, is dropped and
counted: stale shadow work is worth less than the champion's latency.

Why not fire the shadow call at once: on 2 cores at half load with 100% sampling, a candidate that could
not keep up collected up to 64 calls in its replica's queue. The ingress kept routing and awaiting them,
and the champion's median latency went from 72 to 259 ms. With at most one shadow call in flight,
started in idle time, the median stays within a few ms of the stable one (BENCHMARKS.md, serving notes).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

Job = TypeVar("Job")


@dataclass(frozen=True)
class Admission(Generic[Job]):
    start: list[Job]  # start these now
    expired: list[Job]  # waited too long: drop and count them


class ShadowGate(Generic[Job]):
    def __init__(self, capacity: int, concurrency: int, max_wait_s: float) -> None:
        self.capacity, self.concurrency, self.max_wait_s = capacity, concurrency, max_wait_s
        self._waiting: deque[tuple[float, Job]] = deque()
        self.running = 0

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def offer(self, job: Job, now: float) -> bool:
        """Queue a job; False when the queue is full (the caller drops and counts it)."""
        if len(self._waiting) >= self.capacity:
            return False
        self._waiting.append((now, job))
        return True

    def admit(self, now: float, answering: int) -> Admission[Job]:
        """Jobs to start now that `answering` model calls are in flight, and jobs that waited too long.
        Every started job must be reported back with `finished`."""
        expired = []
        while self._waiting and now - self._waiting[0][0] > self.max_wait_s:
            expired.append(self._waiting.popleft()[1])
        start = []
        while answering == 0 and self._waiting and self.running < self.concurrency:
            start.append(self._waiting.popleft()[1])
            self.running += 1
        return Admission(start, expired)

    def finished(self) -> None:
        self.running -= 1

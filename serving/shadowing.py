"""When shadow work runs: a pure admission policy, no I/O (the ingress owns the calls).

Shadow calls use the answering models' idle time. A sampled request leaves a shadow job here; jobs
start, in batches, only while no answering call is in flight and fewer than `concurrency` shadow calls
run. A job
that waits longer than `max_wait_s`, or arrives when `capacity` jobs already wait, is dropped and
counted: stale shadow work is worth less than the champion's latency.

Why not fire the shadow call at once: at half load with 100% sampling, a candidate that could not keep
up collected calls in its replica's queue, the ingress kept routing and awaiting them, and the champion's
answers waited behind them. With at most one shadow call in flight, started in idle time, the champion's
median stays close to the stable one (figures: BENCHMARKS.md, serving, how the shadow overhead came down).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

Job = TypeVar("Job")


@dataclass(frozen=True)
class Admission(Generic[Job]):
    start: list[list[Job]]  # start these batches now, one call each
    expired: list[Job]  # waited too long: drop and count them


class ShadowGate(Generic[Job]):
    """`concurrency` counts batches in flight. A batch starts with `batch_size` jobs, or with fewer once
    the oldest has waited `batch_wait_s`. One call for several jobs is one hop through the ingress instead
    of several; but a slow candidate then computes jobs it would otherwise drop (BENCHMARKS.md, serving
    notes), so the default batch is 1."""

    def __init__(self, capacity: int, concurrency: int, max_wait_s: float, batch_size: int = 1,
                 batch_wait_s: float = 0.0) -> None:
        self.capacity, self.concurrency, self.max_wait_s = capacity, concurrency, max_wait_s
        self.batch_size, self.batch_wait_s = batch_size, batch_wait_s
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
        while answering == 0 and self.running < self.concurrency and self._due(now):
            take = min(self.batch_size, len(self._waiting))
            start.append([self._waiting.popleft()[1] for _ in range(take)])
            self.running += 1
        return Admission(start, expired)

    def _due(self, now: float) -> bool:
        return bool(self._waiting) and (len(self._waiting) >= self.batch_size
                                        or now - self._waiting[0][0] >= self.batch_wait_s)

    def due_in(self, now: float) -> float | None:
        """Seconds until the waiting jobs may start as a partial batch (0: now); None when none wait.
        The caller looks again then, even if no request arrives meanwhile."""
        if not self._waiting:
            return None
        return 0.0 if self._due(now) else self.batch_wait_s - (now - self._waiting[0][0])

    def finished(self) -> None:
        self.running -= 1

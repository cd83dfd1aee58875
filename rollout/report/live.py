"""The live page's report, kept fresh by one background thread while someone is watching.

A page request never waits for a report to be built (except the very first): it gets the latest one.
The thread rebuilds when the routing state's generation changes (a promotion, a rollback, the guard),
checked every second, and otherwise every `rebuild_s`. The control plane records a change in MLflow just
after it writes the state row, so a change is built once more `FOLLOW_UP_S` later, with its event. A
failed build is tried again after a pause that doubles up to `rebuild_s`. Drift checks are the slow part
and move slowly, so each rollout's are reused for `drift_every_s`. With nobody asking for `idle_s`, the thread stops;
the next request starts it again.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from monitoring.review.photos import PhotoStore
from rollout.report.build import gather, report_input
from rollout.report.regional_drift import RegionDrift, per_region
from rollout.report.render import render

if TYPE_CHECKING:
    from rollout.control import ControlPlane

log = logging.getLogger(__name__)

CHECK_S = 1.0
FOLLOW_UP_S = 3.0


@dataclass(frozen=True)
class Built:
    fragment: str  # the report's <article>, for the page
    standalone: str  # the same report as a self-contained file, for download
    etag: str
    rollout_id: str | None


class LiveReport:
    def __init__(self, control: ControlPlane, *, rebuild_s: float = 30.0, poll_s: float = 5.0, drift_every_s: float = 300.0,
                 idle_s: float = 120.0, store: PhotoStore | None = None) -> None:
        self.control = control
        self.rebuild_s, self.poll_s, self.drift_every_s, self.idle_s = rebuild_s, poll_s, drift_every_s, idle_s
        self.store = store
        self.error: str | None = None  # why the last build failed: a 503 while no report exists, else the shown one is stale
        self._latest: Built | None = None
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wanted_at = 0.0
        self._drift: dict[str, tuple[float, list[RegionDrift]]] = {}

    def latest(self, wait_s: float = 60.0) -> Built | None:
        """The newest report; waits up to `wait_s` for the first one."""
        with self._lock:
            self._wanted_at = time.monotonic()
            if self._thread is None and not self._stop.is_set():
                # The report kept since an idle stop is as old as the pause: wait for the fresh one, as for the first.
                self._ready.clear()
                self._thread = threading.Thread(target=self._run, name="rollout-report", daemon=True)
                self._thread.start()
        self._ready.wait(wait_s)
        return self._latest

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        generation: int | None = None
        built_at = float("-inf")
        follow_up: float | None = None  # when to build again after a change
        failures, retry_at = 0, float("-inf")  # a failed build is retried after a doubling pause, up to rebuild_s
        while True:
            with self._lock:
                if self._stop.is_set() or time.monotonic() - self._wanted_at > self.idle_s:
                    self._thread = None
                    return
            try:
                current = self.control.current().generation
                now = time.monotonic()
                changed = current != generation
                due = changed or now - built_at >= self.rebuild_s or (follow_up is not None and now >= follow_up)
                if due and now >= retry_at:
                    self._latest = self._build()
                    follow_up = time.monotonic() + FOLLOW_UP_S if changed and generation is not None else None
                    generation, built_at, self.error = current, time.monotonic(), None
                    failures, retry_at = 0, float("-inf")
            except Exception as exc:  # MLflow or the database out of reach: keep the last report, try again
                log.exception("rollout report build failed")
                self.error = f"the report could not be built ({type(exc).__name__}: {exc})"
                # Not at every check: the generation it failed to build stays unbuilt, so each second would try
                # again, and a watched page would hammer a server that is already down.
                failures += 1
                built_at, retry_at = time.monotonic(), time.monotonic() + min(self.rebuild_s, CHECK_S * 2 ** failures)
            finally:
                self._ready.set()
            self._stop.wait(CHECK_S)

    def _build(self) -> Built:
        inp = report_input(self.control)
        views = gather(self.control, inp, self.store, drift=self._drift_for)
        fragment = render(inp, views, standalone=False)
        etag = '"' + hashlib.sha256(fragment.encode()).hexdigest()[:20] + '"'
        return Built(fragment, render(inp, views), etag, inp.rollout_id)

    def _drift_for(self, rollout_id: str, requests: dict[str, int]) -> list[RegionDrift]:
        cached = self._drift.get(rollout_id)
        if cached is not None and time.monotonic() - cached[0] < self.drift_every_s:
            return cached[1]
        found = per_region(self.control.settings, self.control.engine, rollout_id, requests)
        self._drift = {rollout_id: (time.monotonic(), found)}
        return found

"""Drift checks of the rollout in progress, made in the background and read by the control plane.

An Evidently comparison costs seconds, too much for every `rollout status`, `promote` or guard tick. So
`rollout serve` runs a `DriftChecker` that every `monitoring.drift_check_every_s` compares the latest
`monitoring.drift_check_window` predictions of the rollout's current step (a shift that begins mid-step is
not diluted by the traffic before it; a uniform sample when large, see monitoring.drift) with the champion's
reference and records the result in `drift_checks`; `rollout drift check` makes one on demand. The gate
evidence (`evidence`) reads the latest check of the current step with its age: a check older than
`monitoring.drift_max_age_s` is no evidence, so a stopped checker shows as missing drift evidence, never as
a stale all-clear; nor is a check that read any traffic from before the step began (a promotion, maybe a
person's past that very alarm).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, insert, select

from monitoring import drift
from roomsight import rollup
from roomsight.config import Settings
from roomsight.errors import DriftError
from roomsight.rollout_state import read_state
from roomsight.tables import drift_checks

log = logging.getLogger(__name__)


def run_check(settings: Settings, engine: Engine, rollout_id: str) -> drift.DriftResult:
    """Compare the latest `monitoring.drift_check_window` predictions of the rollout's current step (of the
    whole rollout once it is over) with the champion's reference and record the result. DriftError when
    there is too little traffic or no reference."""
    now = time.time()
    since = step_start(engine, rollout_id)
    window = drift.Window(rollout_id=rollout_id, since=since, until=now, last=settings.monitoring.drift_check_window)
    result, _ = drift.check(settings, engine, window)
    # Which traffic it read, by the log's clocks rather than this checker's: `latest` orders checks by it, and
    # a checker whose clock ran ahead would otherwise hide the newer checks of the others until time caught up.
    read_to = now if result.newest_logged is None else result.newest_logged
    with engine.begin() as conn:
        conn.execute(insert(drift_checks).values(
            rollout_id=rollout_id, created_at=time.time(), window_since=since, window_until=read_to,
            n_window=result.n_window or result.n_current,
            n_sample=result.n_current, alarm=result.alarm, drifted_share=result.drifted_share,
            ood_share=result.ood_share, summary=result.to_dict()))
    return result


def step_start(engine: Engine, rollout_id: str) -> float | None:
    """When the rollout's current step began, while it is in progress."""
    found = read_state(engine)
    state = found.state if found is not None else None
    if state is None or state.rollout_id != rollout_id or not state.in_progress:
        return None
    return state.since


def latest(engine: Engine, rollout_id: str, as_of: float | None = None,
           since: float | None = None) -> Any | None:  # noqa: ANN401 - a Row
    """Of the rollout's checks made by `as_of` (default: now), and with `since` of those that read only
    traffic logged from then on, the one that read the newest traffic."""
    c = drift_checks.c
    # Not the last to finish: a check started earlier (`rollout drift check` beside the background checker) that
    # finished later read older traffic, and as the latest it hid the newer check's alarm until the next one.
    q = (select(drift_checks).where(c.rollout_id == rollout_id)
         .order_by(c.window_until.desc(), c.created_at.desc()).limit(1))
    if as_of is not None:
        q = q.where(c.created_at <= as_of)
    if since is not None:
        q = q.where(c.window_since >= since)
    with engine.connect() as conn:
        return conn.execute(q).first()


def evidence(engine: Engine, settings: Settings, rollout_id: str, as_of: float | None = None,
             since: float | None = None) -> dict[str, float | None]:
    """`ood_share` over the rollout's requests (exact, from the rollup; the step's own is the log provider's
    `step_ood_share`), and `drift_alarm`, `drifted_share` from its latest drift check, with that check's age
    (`drift_age_s`). The drift numbers are None without a check younger than `monitoring.drift_max_age_s`
    that read only traffic logged from `since` on (when the current step began): the step's own."""
    with engine.connect() as conn:
        # Not rollup.known_counts: a request's flags are logged with it, never by a shadow answer landing later,
        # so the rollup's counts up to `as_of` are those known then.
        counts = rollup.counts(conn, rollout_id, as_of)
    out: dict[str, float | None] = {
        "ood_share": counts.ood_flagged / counts.requests if counts.requests else None,
        "drift_alarm": None, "drifted_share": None, "drift_age_s": None,
    }
    # A step begins with a promotion, a person's or the guard's. A person who promoted a paused rollout decided
    # on the alarm they were shown: the check they saw must not pause it again at the next tick. The step
    # waits for a check of its own, as it does for the log's `step_` numbers. Of its own by the traffic it read,
    # all of it: the rollout's latest predictions just after a promotion are nearly all the step before's, the
    # alarm the person saw, made again; and a check that read the state before the promotion landed read them.
    check = latest(engine, rollout_id, as_of, since)
    shown = check if check is not None or since is None else latest(engine, rollout_id, as_of)
    if shown is None:
        return out
    age = max(0.0, (time.time() if as_of is None else as_of) - shown.created_at)
    out["drift_age_s"] = age
    if check is not None and age <= settings.monitoring.drift_max_age_s:
        out["drift_alarm"] = 1.0 if check.alarm else 0.0
        out["drifted_share"] = check.drifted_share
    return out


class DriftChecker:
    """Checks the rollout in progress every `monitoring.drift_check_every_s`, on a thread of its own.
    `current_rollout` says which rollout that is (None: none in progress)."""

    def __init__(self, settings: Settings, engine: Engine, current_rollout: Callable[[], str | None]) -> None:
        self.settings = settings
        self.engine = engine
        self.current_rollout = current_rollout
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> drift.DriftResult | None:
        """Check once; None when there is no rollout or too little of its traffic to compare."""
        rollout_id = self.current_rollout()
        if rollout_id is None:
            return None
        try:
            return run_check(self.settings, self.engine, rollout_id)
        except DriftError as exc:
            log.info("no drift check of rollout %s: %s", rollout_id[:8], exc)
            return None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="drift-checker", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.tick()
            except Exception:  # the checker must outlive a database or registry hiccup
                log.exception("drift check failed")
            # The period runs from the start of a check, as `rollout drift watch` keeps it: waited in full after
            # one finished, checks fell a period and a check's run apart, and with drift_max_age_s at the
            # period (which the settings allow) the evidence lapsed for that run in every period.
            self._stop.wait(max(0.0, self.settings.monitoring.drift_check_every_s - (time.monotonic() - started)))

    def stop(self) -> None:
        self._stop.set()


def describe(ev: dict[str, float | None], settings: Settings) -> str:
    """The drift evidence in one line for `rollout status`: what the latest check said and how old it is."""
    age = ev.get("drift_age_s")
    if age is None:
        return (f"drift: no check yet (rollout serve checks every {_duration(settings.monitoring.drift_check_every_s)}; "
                "`rollout drift check` makes one now)")
    if ev.get("drift_alarm") is None and age <= settings.monitoring.drift_max_age_s:
        return (f"drift: the latest check, {_duration(age)} old, read traffic from before the current step began: "
                "no drift evidence for this step until the next check")
    if ev.get("drift_alarm") is None:
        return (f"drift: the latest check is {_duration(age)} old, older than monitoring.drift_max_age_s "
                f"({_duration(settings.monitoring.drift_max_age_s)}): no drift evidence until a newer one")
    verdict = "ALARM" if ev["drift_alarm"] else "no alarm"
    return f"drift: {verdict} ({ev.get('drifted_share') or 0:.0%} of columns drifted), checked {_duration(age)} ago"


def _duration(seconds: float) -> str:
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"

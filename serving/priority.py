"""CPU priority of a model replica's process, so shadow work cannot slow the champion on shared cores.

Off the critical path is not enough when the champion and the candidate share cores (one machine, or a
node running both): a candidate computing every shadowed request takes CPU the champion needs, and the
champion's latency grows with it. While the candidate only shadows, its replica runs under the Linux
`SCHED_IDLE` policy: it gets only the cycles nothing else wants, falls behind under load, and the
ingress's bounded shadow queue drops (and counts) what it cannot take. When the candidate answers
traffic (limited, gradual) it goes back to the normal policy, where the kernel allows that: leaving
`SCHED_IDLE` needs CAP_SYS_NICE or a permissive RLIMIT_NICE; without it the replica stays idle-priority
(still safe: a late candidate answer falls back to the champion) and says so in its log.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

Priority = Literal["idle", "normal"]


def _threads() -> list[int]:
    """Every thread of this process: scheduling policy is per thread on Linux, and the model's compute
    threads (torch's pool) may already exist."""
    try:
        return [int(t.name) for t in Path("/proc/self/task").iterdir()]
    except OSError:
        return [0]


def set_priority(priority: Priority) -> bool:
    """Apply `priority` to every thread of this process (threads created later inherit it from their
    creator). Returns False where the platform or the kernel refuses; the caller carries on either way."""
    if not hasattr(os, "sched_setscheduler"):
        return False
    policy = os.SCHED_IDLE if priority == "idle" else os.SCHED_OTHER
    ok = True
    for tid in _threads():
        try:
            if os.sched_getscheduler(tid) != policy:
                os.sched_setscheduler(tid, policy, os.sched_param(0))
        except ProcessLookupError:
            continue  # the thread ended meanwhile
        except OSError as exc:
            ok = False
            log.warning("could not set CPU priority %s on thread %d: %s", priority, tid, exc)
    return ok


def current_priority() -> Priority:
    return "idle" if hasattr(os, "sched_getscheduler") and os.sched_getscheduler(0) == os.SCHED_IDLE else "normal"

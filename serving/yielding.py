"""Shadow computation steps aside while answering work is in flight on its node.

SCHED_IDLE (serving.priority) decides who gets a core, not what the cores share. With the candidate
computing on the other core, the champion's answers were slower at the median and at p99 at half load,
and every answering process spent more CPU per request, while a candidate that answered as late but
computed nothing cost next to nothing (BENCHMARKS.md, serving, what 100% shadow costs). So while the candidate
only shadows, its forward pass stops before every convolution to ask whether an ingress on its node
has a request in flight, and waits until none has: it computes in the gaps between requests, and what
it cannot finish in time the ingress's shadow queue drops and counts. A pass pauses at most
`serve.shadow_yield_max_s` in all, then computes on at idle priority, so a node that is never quiet
does not starve it for good.

The signal is one small file per ingress process in a node-local directory (/dev/shm), holding that
process's count of requests in flight, mapped into memory: the ingress writes 8 bytes when a request
starts and ends, and a checkpoint reads them from memory, with no system call on the request path. An
ingress on another node writes elsewhere, so a candidate with a node to itself never pauses.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import struct
import tempfile
import time
from pathlib import Path

_COUNT = struct.Struct("<q")
_PREFIX = "ingress-"


def signal_dir(home: Path) -> Path:
    """Where the ingresses of the deployment living in `home` publish their counts on this node."""
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    key = hashlib.sha1(str(Path(home).expanduser().resolve()).encode()).hexdigest()[:12]
    return base / f"roomsight-{key}"


class InFlight:
    """The ingress's side: its count of requests in flight, one `with` block per request. The ingress
    enters and leaves on its event loop thread only, so the count needs no lock."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{_PREFIX}{os.getpid()}"
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.ftruncate(fd, _COUNT.size)
            self._map = mmap.mmap(fd, _COUNT.size)
        finally:
            os.close(fd)
        self.count = 0

    def __enter__(self) -> InFlight:
        self.count += 1
        _COUNT.pack_into(self._map, 0, self.count)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.count -= 1
        _COUNT.pack_into(self._map, 0, self.count)

    def close(self) -> None:
        self._map.close()
        self.path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class NodeActivity:
    """The shadow side: whether any ingress on this node has a request in flight. The directory is
    listed again every `rescan_s`, to see ingresses come and go; the file of an ingress that died is
    removed, whatever count it was left holding."""

    def __init__(self, directory: Path, rescan_s: float = 1.0) -> None:
        self.directory, self.rescan_s = directory, rescan_s
        self._maps: dict[Path, mmap.mmap] = {}
        self._next_scan = 0.0

    def busy(self) -> bool:
        now = time.monotonic()
        if now >= self._next_scan:
            self._scan()
            self._next_scan = now + self.rescan_s
        return any(_COUNT.unpack_from(m)[0] > 0 for m in self._maps.values())

    def _scan(self) -> None:
        found = set()
        for path in self.directory.glob(f"{_PREFIX}*") if self.directory.is_dir() else ():
            pid = path.name[len(_PREFIX):]
            if not pid.isdigit() or not _alive(int(pid)):
                path.unlink(missing_ok=True)
                continue
            found.add(path)
            if path not in self._maps:
                try:
                    with path.open("rb") as f:
                        self._maps[path] = mmap.mmap(f.fileno(), _COUNT.size, prot=mmap.PROT_READ)
                except (OSError, ValueError):
                    continue  # gone, or not yet sized: the next scan looks again
        for path in set(self._maps) - found:
            self._maps.pop(path).close()


class Yielder:
    """`checkpoint` is what a shadow forward pass calls before every convolution
    (`ModelPack.with_checkpoint`). Call `begin` before each pass: it renews the pass's pause budget."""

    def __init__(self, activity: NodeActivity, max_pause_s: float, poll_s: float = 0.001) -> None:
        self.activity, self.max_pause_s, self.poll_s = activity, max_pause_s, poll_s
        self.paused_s = 0.0  # in all, for operators and the benchmark
        self._budget = max_pause_s

    def begin(self) -> None:
        self._budget = self.max_pause_s

    @property
    def paused_in_pass(self) -> float:
        """Seconds the pass since `begin` has paused (Serve runs one batch at a time per replica)."""
        return self.max_pause_s - self._budget

    def checkpoint(self) -> None:
        if self._budget <= 0 or not self.activity.busy():
            return
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < self._budget and self.activity.busy():
            time.sleep(self.poll_s)
        waited = time.perf_counter() - t0
        self._budget -= waited
        self.paused_s += waited

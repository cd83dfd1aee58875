"""HTTP load for the serving benchmarks: closed-loop (N clients back to back) and open-loop (a fixed
arrival rate, so queueing shows up as latency instead of being hidden by slower clients)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import numpy as np


@dataclass
class Run:
    latencies_s: list[float] = field(default_factory=list)
    failures: int = 0
    elapsed_s: float = 0.0
    request_ids: list[str] = field(default_factory=list)  # of the answered requests, when asked for (ids=True)

    @property
    def n(self) -> int:
        return len(self.latencies_s)

    def p(self, q: float) -> float:
        return float(np.percentile(self.latencies_s, q) * 1000) if self.latencies_s else float("nan")

    @property
    def throughput(self) -> float:
        return self.n / self.elapsed_s if self.elapsed_s else 0.0

    def add(self, other: Run) -> None:
        """Pool another run of the same condition into this one (interleaved measurements)."""
        self.latencies_s += other.latencies_s
        self.failures += other.failures
        self.elapsed_s += other.elapsed_s
        self.request_ids += other.request_ids

    def summary(self) -> dict[str, float]:
        return {"n": self.n, "failures": self.failures, "p50_ms": round(self.p(50), 2), "p99_ms": round(self.p(99), 2),
                "throughput_rps": round(self.throughput, 1)}


def _post(client: httpx.Client, body: bytes, i: int, region: str,
          ids: bool = False) -> tuple[bool, float, str | None]:
    t0 = time.perf_counter()
    request_id = None
    try:
        r = client.post("/predict", files={"image": ("p.jpg", body, "image/jpeg")},
                        data={"listing_id": f"L{i % 5000}", "region": region})
        dt = time.perf_counter() - t0
        ok = r.status_code == 200
        if ok and ids:
            request_id = r.json().get("request_id")
    except httpx.HTTPError:
        ok, dt = False, time.perf_counter() - t0
    return ok, dt, request_id


def _record(run: Run, ok: bool, dt: float, request_id: str | None) -> None:
    if ok:
        run.latencies_s.append(dt)
        if request_id is not None:
            run.request_ids.append(request_id)
    else:
        run.failures += 1


def closed_loop(url: str, bodies: list[bytes], n: int, concurrency: int, regions: tuple[str, ...] = ("eu-west",),
                ids: bool = False) -> Run:
    run = Run()
    lock = threading.Lock()
    counter = iter(range(n))

    def worker() -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            for i in counter:
                result = _post(client, bodies[i % len(bodies)], i, regions[i % len(regions)], ids)
                with lock:
                    _record(run, *result)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run.elapsed_s = time.perf_counter() - t0
    return run


def open_loop(url: str, bodies: list[bytes], rate_rps: float, duration_s: float,
              regions: tuple[str, ...] = ("eu-west",), ids: bool = False) -> Run:
    """Requests start on a fixed schedule whatever the previous ones did."""
    run = Run()
    n = max(1, int(rate_rps * duration_s))
    clients = [httpx.Client(base_url=url, timeout=60) for _ in range(16)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(64) as pool:
        futures = []
        for i in range(n):
            delay = t0 + i / rate_rps - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(_post, clients[i % len(clients)], bodies[i % len(bodies)], i,
                                       regions[i % len(regions)], ids))
        for f in futures:
            _record(run, *f.result())
    run.elapsed_s = time.perf_counter() - t0
    for c in clients:
        c.close()
    return run

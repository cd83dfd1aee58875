"""Replaying photos against the Serve app over HTTP, as listing traffic would arrive: used by the demo
and the benchmarks. Photos come from the synthetic generator or from a real data folder/manifest."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from roomsight.regions import REGIONS


@dataclass(frozen=True)
class Shot:
    """One photo upload with its listing metadata and (for simulation only) its true label."""

    jpeg: bytes
    listing_id: str
    region: str
    label: str


def synthetic_shots(n: int, seed: int, size: int = 64) -> list[Shot]:
    from training.synthetic import CLASSES, photos

    per_class = max(1, -(-n // len(CLASSES)))
    shots = []
    for p in photos(per_class, size=size, seed=seed):
        buf = io.BytesIO()
        p.image.save(buf, "JPEG", quality=90)
        shots.append(Shot(buf.getvalue(), p.listing_id, p.region, p.label))
    # interleave classes so any prefix of the replay is a mix
    shots.sort(key=lambda s: hashlib.sha256(s.jpeg[-64:]).digest())
    return shots[:n]


def folder_shots(source: Path) -> list[Shot]:
    """Real photos; a listing and region come from the manifest if it has them, else from a hash of the path."""
    from training.data import load_manifest

    shots = []
    for item in load_manifest(source):
        key = hashlib.sha256(str(item.path.name).encode()).digest()
        listing = item.listing_id or f"R{int.from_bytes(key[:4], 'big') % 100_000:05d}"
        region = item.region or REGIONS[key[4] % len(REGIONS)]
        shots.append(Shot(item.path.read_bytes(), listing, region, item.label))
    shots.sort(key=lambda s: hashlib.sha256(s.listing_id.encode() + s.jpeg[-64:]).digest())
    return shots


def send(client: httpx.Client, shot: Shot) -> dict[str, Any]:
    r = client.post("/predict", files={"image": ("photo.jpg", shot.jpeg, "image/jpeg")},
                    data={"listing_id": shot.listing_id, "region": shot.region})
    body = r.json()
    body["_status"] = r.status_code
    return body


def replay(base_url: str, shots: list[Shot], concurrency: int = 4, timeout: float = 60.0) -> Iterator[tuple[Shot, dict[str, Any]]]:
    """Send every shot, `concurrency` at a time; yields (shot, answer) in completion order."""
    with httpx.Client(base_url=base_url, timeout=timeout) as client, ThreadPoolExecutor(concurrency) as pool:
        futures = [(shot, pool.submit(send, client, shot)) for shot in shots]
        for shot, fut in futures:
            yield shot, fut.result()


def wait_idle(base_url: str, timeout: float = 30.0) -> bool:
    """Wait until the ingress has no shadow job running or waiting, no log record and no photo unwritten,
    so that what was sent is in the evidence a gate reads next and its photos can be queued for review."""
    import time

    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base_url, timeout=10) as client:
        while time.monotonic() < deadline:
            health = client.get("/healthz").json()
            shadow = health["shadow"]
            if (shadow["inflight"] == 0 and shadow["waiting"] == 0 and health["log"]["pending"] == 0
                    and health["photos"]["pending"] == 0):
                return True
            time.sleep(0.1)
    return False


def wait_applied(base_url: str, generation: int, timeout: float = 15.0) -> float:
    """Seconds until the Serve app routes on rollout-state `generation` (or a later one)."""
    import time

    t0 = time.monotonic()
    with httpx.Client(base_url=base_url, timeout=10) as client:
        while time.monotonic() - t0 < timeout:
            if (client.get("/healthz").json().get("state_generation") or 0) >= generation:
                return time.monotonic() - t0
            time.sleep(0.1)
    raise TimeoutError(f"the Serve app did not apply rollout state {generation} within {timeout:.0f} s")

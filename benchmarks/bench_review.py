"""Review queue: how long filling takes over a rollout's log, and how many verdicts per second
four reviewers can record through the page's HTTP API (claim + verdict each) on the embedded SQLite."""

from __future__ import annotations

import io
import json
import tempfile
import threading
import time
import uuid
from pathlib import Path

from roomsight.regions import REGIONS

CLASSES = ("bedroom", "bathroom", "kitchen", "living_room")
ROLLOUT = "bench-rollout"


def _log(engine, store, n: int) -> None:  # noqa: ANN001
    from PIL import Image

    from serving.predlog import LogWriter, PredictionRecord

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 90, 60)).save(buf, "JPEG")
    photo = buf.getvalue()
    w = LogWriter(engine, flush_interval_s=0.1, batch_size=1000)
    now = time.time()
    for i in range(n):
        champ = CLASSES[i % 4]
        cand = champ if i % 10 else CLASSES[(i + 1) % 4]  # 10% disagreements
        scores = {c: (0.85 if c == champ else 0.05) for c in CLASSES}
        rid = str(uuid.uuid4())
        w.submit(PredictionRecord(
            request_id=rid, ts=now + i * 1e-4, rollout_id=ROLLOUT, stage="shadow", listing_id=f"L{i}",
            region=REGIONS[i % len(REGIONS)], served_by="champion", label=champ, score=0.85,
            latency_ms=10.0, champion_label=champ, champion_scores=scores, candidate_label=cand,
            candidate_scores=scores, shadow="candidate", shadow_status="ok", disagreement=cand != champ))
        store.put(rid, photo)
    assert w.flush(timeout=600)
    w.close()


REVIEWERS = {"ann": "a-token", "bob": "b-token", "cho": "c-token", "dev": "d-token"}  # 4 concurrent reviewers


def run(quick: bool, out_dir: Path | None = None) -> dict[str, float]:
    """`out_dir` is accepted for `benchmarks.run`; this benchmark draws no plots."""
    import httpx
    import uvicorn

    from monitoring.review import queue
    from monitoring.review.photos import PhotoStore
    from monitoring.review.web import create_app
    from roomsight.config import load_settings
    from roomsight.db import engine_for

    n_log = 5_000 if quick else 20_000
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(environ={"ROOMSIGHT_HOME": tmp,
                                          "ROOMSIGHT_REVIEW__TOKENS": json.dumps(REVIEWERS)})
        engine = engine_for(settings.db_url)
        store = PhotoStore.for_settings(settings)
        _log(engine, store, n_log)
        t0 = time.perf_counter()
        queued = queue.fill(engine, settings, ROLLOUT)
        fill_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        assert queue.fill(engine, settings, ROLLOUT) == 0
        refill_s = time.perf_counter() - t0

        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(create_app(settings, engine), host="127.0.0.1", port=port,
                                               log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        counts = {who: 0 for who in REVIEWERS}
        seen: list[str] = []  # list.append is atomic under the GIL

        def review(who: str, token: str) -> None:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"}) as c:
                while (item := c.post("/api/claim").json()["item"]) is not None:
                    c.post("/api/verdict", json={"item_id": item["item_id"], "claim_id": item["claim_id"],
                                                 "label": "kitchen"}).raise_for_status()
                    counts[who] += 1
                    seen.append(item["item_id"])

        t0 = time.perf_counter()
        workers = [threading.Thread(target=review, args=a) for a in REVIEWERS.items()]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        review_s = time.perf_counter() - t0
        server.should_exit = True
        thread.join(10)
        engine.dispose()
    done = sum(counts.values())
    return {"log_rows": float(n_log), "queued": float(queued), "fill_s": round(fill_s, 3),
            "refill_noop_s": round(refill_s, 3), "verdicts": float(done),
            f"verdicts_per_s_{len(REVIEWERS)}_reviewers": round(done / review_s, 1),
            "ms_per_claim_and_verdict": round(1000 * review_s / done * len(REVIEWERS), 2),
            "items_reviewed_twice": float(done - len(set(seen))), "items_lost": float(queued - len(set(seen)))}


def main() -> None:
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=1))


if __name__ == "__main__":
    main()

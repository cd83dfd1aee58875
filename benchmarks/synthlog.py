"""Prediction-log rows as the Serve app writes them, fast and in bulk, for a rollout's every stage: the
scale benchmark fills logs of a million rows with them, and the evidence tests compare old and new
computations on them.

A rollout's rows go through shadow (the candidate runs on a sample, off the answer path), limited (it
answers a slice of one region, the champion shadows that slice) and gradual (30% of listings in every
region). Shadow calls finish ok, fail, time out, are dropped or are still pending; the candidate
sometimes fails while answering and the champion answers instead; photos are sometimes flagged
out-of-domain and held on the champion. Both models' scores, the image descriptors and the OOD JSON are
filled in as the ingress logs them; descriptors are drawn from `descriptor_pool` (e.g. a model's
reference rows) when given.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from roomsight.regions import REGIONS

CLASSES = ("bedroom", "bathroom", "kitchen", "living_room", "dining_room", "swimming_pool", "view", "exterior")
DESCRIPTOR_NAMES = ("brightness", "highlights", "contrast", "saturation", "width", "height", "short_side", "megapixels",
                    "sharpness", "bytes_per_pixel", "max_softmax", "energy", "embedding_distance")
SHADOW_OUTCOMES = ("ok", "dropped", "error", "timeout", None)  # None: the shadow result has not arrived
SHADOW_P = (0.88, 0.05, 0.03, 0.02, 0.02)
CHAMPION, CANDIDATE = "1", "2"  # the versions the rows name
SHADOW_SAMPLE = 0.5
POOL = 64  # score vectors drawn per class


def _score_pool(rng: np.random.Generator) -> list[list[dict[str, float]]]:
    """Softmax-like scores with each class on top, drawn once: a million rows reuse them."""
    pool = []
    for top in range(len(CLASSES)):
        raw = rng.dirichlet(np.full(len(CLASSES), 0.3), POOL)
        raw[:, top] += rng.uniform(0.2, 3.0, POOL)
        raw /= raw.sum(axis=1, keepdims=True)
        pool.append([{c: round(float(v), 4) for c, v in zip(CLASSES, r)} for r in raw])
    return pool


def rows(n: int, rollout_id: str | None, t0: float, *, seed: int = 0, rate_hz: float = 10.0,
         descriptor_pool: list[dict[str, float]] | None = None) -> Iterator[dict[str, Any]]:
    """`n` rows of one rollout (or of no rollout, served by the champion alone), one every 1 / rate_hz
    seconds from t0, stages in order: the first 30% shadow, the next 30% limited, the rest gradual."""
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1.0 / rate_hz, n)
    ts = t0 + np.cumsum(gaps)
    u = rng.random((n, 10))
    pool = _score_pool(rng)
    descriptors = descriptor_pool or [{name: round(float(v), 4) for name, v in zip(DESCRIPTOR_NAMES, rng.random(len(DESCRIPTOR_NAMES)))}
                                      for _ in range(1000)]
    champion_ms = np.round(rng.lognormal(2.5, 0.4, n), 3)
    candidate_ms = np.round(rng.lognormal(2.7, 0.5, n), 3)
    latency_ms = np.round(20 + rng.gamma(2.0, 8.0, n), 2)
    ids = rng.bytes(16 * n)
    for i in range(n):
        ui = u[i]
        frac = i / max(1, n)
        stage = "stable" if rollout_id is None else ("shadow" if frac < 0.3 else "limited" if frac < 0.6 else "gradual")
        region = REGIONS[int(ui[0] * len(REGIONS))]
        flags = ["night_time"] if ui[1] < 0.04 else (["low_resolution"] if ui[1] < 0.05 else [])
        in_slice = stage == "gradual" and ui[2] < 0.3 or stage == "limited" and region == "ap-south" and ui[2] < 0.5
        held = bool(in_slice and flags)
        sampled = ui[3] < SHADOW_SAMPLE
        served_by, shadow, reason = "champion", None, stage
        if stage == "stable":
            reason = "stable"
        elif stage == "shadow":
            shadow = "candidate" if sampled else None
        elif held:
            shadow, reason = "candidate", "ood-held"
        elif in_slice:
            served_by, shadow, reason = "candidate", "champion" if sampled else None, "slice"
        else:
            shadow, reason = ("candidate" if sampled else None), "outside-slice"
        candidate_error = None
        if served_by == "candidate" and ui[4] < 0.02:  # the candidate failed: the champion answers instead
            served_by, shadow, reason, candidate_error = "champion", None, "candidate-fallback", "RuntimeError: boom"
        status = SHADOW_OUTCOMES[int(np.searchsorted(np.cumsum(SHADOW_P), ui[5], side="right"))] if shadow else None
        champ_top, cand_top = int(ui[6] * len(CLASSES)), int(ui[6] * len(CLASSES))
        if ui[7] < 0.12:
            cand_top = (cand_top + 1) % len(CLASSES)
        champion_ran = served_by == "champion" or (shadow == "champion" and status == "ok")
        candidate_ran = served_by == "candidate" or (shadow == "candidate" and status == "ok")
        champ_scores = pool[champ_top][int(ui[8] * POOL)] if champion_ran else None
        cand_scores = pool[cand_top][int(ui[9] * POOL)] if candidate_ran else None
        answer = champ_scores if served_by == "champion" else cand_scores
        label = max(answer, key=answer.get)  # type: ignore[arg-type]
        score = answer[label]  # type: ignore[index]
        if score < 0.45:
            label = "unsure"
        if shadow == "candidate" and status in ("error", "timeout"):
            candidate_error = "shadow call timed out" if status == "timeout" else "RuntimeError: boom"
        champ_label = max(champ_scores, key=champ_scores.get) if champ_scores else None  # type: ignore[arg-type]
        cand_label = max(cand_scores, key=cand_scores.get) if cand_scores else None  # type: ignore[arg-type]
        yield {
            "request_id": str(uuid.UUID(bytes=ids[16 * i:16 * i + 16], version=4)),
            "ts": float(ts[i]), "rollout_id": rollout_id, "stage": stage, "listing_id": f"L{int(ui[2] * 1e6)}",
            "photo_id": f"P{i}", "region": region, "served_by": served_by, "label": label, "score": score,
            "latency_ms": float(latency_ms[i]),
            "champion_version": CHAMPION if champion_ran else None,
            "champion_label": champ_label,
            "champion_scores": champ_scores,
            "champion_ms": float(champion_ms[i]) if champion_ran else None,
            "candidate_version": CANDIDATE if (candidate_ran or candidate_error) else None,
            "candidate_label": cand_label,
            "candidate_scores": cand_scores,
            "candidate_ms": float(candidate_ms[i]) if candidate_ran else None,
            "candidate_error": candidate_error, "shadow": shadow, "shadow_status": status,
            "disagreement": (champ_label != cand_label) if champ_label and cand_label else None,
            "ood": {"flags": flags, "scores": {"night_time": round(float(ui[1]), 3)}, **({"held": flags} if held else {})},
            "descriptors": descriptors[int(ui[8] * 1e6) % len(descriptors)], "routing_reason": reason,
        }


def insert(engine: Any, batch: Iterable[dict[str, Any]], chunk: int = 5_000) -> int:  # noqa: ANN401 - Engine
    """Insert rows in transactions of `chunk`, through the driver's bulk path (PostgreSQL's COPY, SQLite's
    executemany) with the JSON columns serialized as SQLAlchemy would; the triggers and indexes do their
    work as for any insert. Returns how many rows were inserted."""
    from roomsight.tables import predictions

    names = [c.name for c in predictions.columns]
    json_cols = {c.name for c in predictions.columns if c.type.__class__.__name__ == "JSON"}
    done, buf = 0, []

    def flush() -> None:
        values = [tuple(json.dumps(r.get(n)) if n in json_cols else r.get(n) for n in names) for r in buf]
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            if engine.dialect.name == "postgresql":
                with cur.copy(f"COPY predictions ({', '.join(names)}) FROM STDIN") as copy:
                    for v in values:
                        copy.write_row(v)
            else:
                cur.executemany(f"INSERT INTO predictions ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})", values)
            raw.commit()
        finally:
            raw.close()

    for row in batch:
        buf.append(row)
        if len(buf) >= chunk:
            flush()
            done, buf = done + len(buf), []
    if buf:
        flush()
        done += len(buf)
    return done

"""Reference statistics, computed at training time from the reference photos and the model's outputs
on them, and exported with the model (`meta.reference["images"]`). The reference photos are those
training.fitting hands over: for a cross-fitted model the training and validation photos together (each
photo's logits from the member that did not train on it), for one model its validation photos.

They are per-image values, not summaries, because they serve twice: `monitoring.ood` calibrates the
flags on their quantiles, and `monitoring.drift` hands them to Evidently as the reference dataset.
Also here: the model-side descriptors (max softmax, energy, embedding distance), one formula for
training and serving.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from monitoring.descriptors import describe
from roomsight.images import shown_size

MAX_ROWS = 1000  # more reference photos are subsampled: the reference travels inside the model's metadata


def reference_photos(members: int | None) -> str:
    """What the reference photos of a model fitted as `members` networks (meta.thresholding's `members`) are,
    in words after their number: training.fitting hands over train + validation when cross-fitted, the
    validation part for one network. None (exported before it was recorded): unknown, said neutrally."""
    if members is None:
        return "reference photos"
    return "photos it was trained and validated on" if members > 1 else "validation photos"


def model_descriptors(logits: np.ndarray, embedding: np.ndarray, embedding_ref: dict[str, Any] | None) -> dict[str, float]:
    """What the model says about how familiar one input is: max softmax, energy (-logsumexp of the
    logits; higher = less familiar) and the embedding's distance to the reference photos' centre in units
    of their median distance."""
    z = logits.astype(np.float64)
    top = z.max()
    lse = float(np.log(np.exp(z - top).sum()) + top)
    out = {"max_softmax": round(float(np.exp(top - lse)), 6), "energy": round(-lse, 6)}
    if embedding_ref and "mean" in embedding_ref:
        mean = np.asarray(embedding_ref["mean"], dtype=np.float32)
        scale = float(embedding_ref.get("scale", 1.0)) or 1.0
        out["embedding_distance"] = round(float(np.linalg.norm(embedding.astype(np.float32) - mean) / scale), 6)
    return out


def image_reference(paths: list[Path], images: list[Image.Image], logits: np.ndarray, embeddings: np.ndarray,
                    classes: list[str], embedding_ref: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    """Per-image descriptors, model descriptors and top classes of the reference photos, column-wise."""
    idx = np.arange(len(images))
    if len(idx) > MAX_ROWS:
        idx = np.sort(np.random.default_rng(seed).choice(idx, MAX_ROWS, replace=False))
    columns: dict[str, list[float]] = {}
    labels = []
    for i in idx:
        width, height, n_bytes = _file_facts(paths[i], images[i])
        row = describe(images[i], width, height, n_bytes)
        row.update(model_descriptors(logits[i], embeddings[i], embedding_ref))
        for k, v in row.items():
            columns.setdefault(k, []).append(v)
        labels.append(classes[int(np.argmax(logits[i]))])
    return {"n": len(idx), "descriptors": columns, "labels": labels}


def _file_facts(path: Path, image: Image.Image) -> tuple[int, int, int]:
    """Size as stored (training may have loaded a downscaled copy) and encoded bytes."""
    try:
        with Image.open(path) as im:
            width, height = shown_size(im)  # upright, as serving describes an upload
        return width, height, Path(path).stat().st_size
    except OSError:
        return image.width, image.height, 0

"""The paired analysis over real predictions (../shared/data/rooms, or $ROOMSIGHT_REAL_DATA): a champion
and two candidates trained cheaply on the training pipeline's frozen EfficientNet-Lite0 features, one with
another seed, one with two classes' labels swapped; their answers on held-out photos are replayed as
traffic through the simulated review queue, reviewers giving the true labels. No Ray, no registry.

Training here is a logistic-regression head on the backbone's pooled features (the pipeline's
`--tune head`, minus its augmented views), each seed on its own 85% draw of the training split, so that
two seeds differ as retrained models do. An answer below `UNSURE_BELOW` is `unsure`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from analysis.spec import AnalysisSpec
from benchmarks.sim_rollouts import Run, Traffic, replay
from roomsight.verdicts import Cell

REAL = Path(os.environ.get("ROOMSIGHT_REAL_DATA", Path(__file__).resolve().parents[2] / "shared" / "data" / "rooms"))
UNSURE_BELOW = 0.5
SWAPPED = ("bedroom", "living_room")
REGIONS = ("eu-west", "us-east", "ap-south")


def features(root: Path, cache: Path) -> tuple[np.ndarray, list[str]]:
    """Pooled backbone features of every photo, computed once (kept under `cache`, outside the repo)."""
    if cache.exists():
        z = np.load(cache, allow_pickle=False)
        return z["x"], [str(v) for v in z["labels"]]
    import torch

    from roomsight.preprocess import Preprocessing, batch_tensor
    from training import backbones, data

    loaded = data.load_images(data.load_manifest(root), max_side=256)
    bb = backbones.create("efficientnet_lite0", pretrained=True)
    prep = Preprocessing(size=bb.input_size, mean=bb.mean, std=bb.std)
    bb.module.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(loaded.images), 32):
            out.append(bb.module(batch_tensor(loaded.images[i:i + 32], prep)).numpy())
    x, labels = np.concatenate(out), [it.label for it in loaded.items]
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, x=x, labels=np.array(labels))
    return x, labels


def answers(x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, seed: int,
            swap: tuple[int, int] | None = None) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    part = rng.choice(train, size=int(0.85 * len(train)), replace=False)
    target = y[part].copy()
    if swap is not None:
        a, b = swap
        target = np.where(y[part] == a, b, np.where(y[part] == b, a, target))
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=3000, random_state=seed))
    model.fit(x[part], target)
    probs = model.predict_proba(x[test])
    best = model.classes_[probs.argmax(axis=1)]
    return np.where(probs.max(axis=1) >= UNSURE_BELOW, best, -1)


def run(n_replays: int, horizon: int, spec: AnalysisSpec, cache: Path, seed: int = 0) -> dict[str, object]:
    x, labels = features(REAL, cache)
    classes = tuple(sorted(set(labels)))
    y = np.array([classes.index(label) for label in labels])
    swapped = (classes.index(SWAPPED[0]), classes.index(SWAPPED[1]))
    order = np.random.default_rng(seed).permutation(len(y))
    train, test = order[: int(0.6 * len(y))], order[int(0.6 * len(y)):]
    champion = answers(x, y, train, test, seed=1)
    out: dict[str, object] = {"photos": len(y), "traffic_photos": len(test)}
    for name, cand_seed, swap in (("seed", 2, None), ("swapped", 2, swapped)):
        candidate = answers(x, y, train, test, seed=cand_seed, swap=swap)
        acc = [float(np.mean(a == y[test])) for a in (champion, candidate)]
        runs: list[Run] = []
        for r in range(n_replays):
            rng = np.random.default_rng([seed, r, 7])
            pick = rng.integers(len(test), size=int(8 * horizon) + 1000)  # photos arrive in a random order
            traffic = _traffic(pick, test, y, champion, candidate, classes)
            runs.append(replay(traffic, spec, rng, horizon))
        decided = [r.analysis_at for r in runs if r.analysis_at is not None]
        out[name] = {"accuracy_champion": round(acc[0], 4), "accuracy_candidate": round(acc[1], 4),
                     "disagreement": round(float(np.mean(champion != candidate)), 4),
                     "refused": sum(r.analysis == "fail" for r in runs) / n_replays,
                     "promoted": sum(r.analysis == "pass" for r in runs) / n_replays,
                     "inconclusive": sum(r.analysis == "inconclusive" for r in runs) / n_replays,
                     "median_verdicts_to_decision": float(np.median(decided)) if decided else None,
                     "old_gates_promoted": sum(r.old for r in runs) / n_replays}
    return out


def _traffic(pick: np.ndarray, test: np.ndarray, y: np.ndarray, champion: np.ndarray, candidate: np.ndarray,
             classes: tuple[str, ...]) -> Traffic:
    """A stream of the held-out photos (each drawn again as a new request), regions by a hash of the photo,
    segments by the champion's answer, the shipped review rates."""
    idx = test[pick]
    region = np.array([hashlib.sha256(str(i).encode()).digest()[0] % len(REGIONS) for i in idx])
    champ, cand = champion[pick], candidate[pick]
    cls = np.where(champ < 0, len(classes), champ)
    cells = tuple(Cell(r, c, "in_domain") for r in REGIONS for c in (*classes, "unsure"))
    cell = region * (len(classes) + 1) + cls
    right = [(a == y[test]) for a in (champion, candidate)]
    answered = [(a >= 0) for a in (champion, candidate)]
    precision = tuple(float(right[m].sum() / max(answered[m].sum(), 1)) for m in (0, 1))
    low = champ == -1  # an agreeing answer below the threshold is `unsure`, as the shipped thresholds make it
    return Traffic(cells, cell, y[idx], champ, cand, np.zeros(len(idx), bool), low,
                   {"disagreement": 1.0, "low_confidence": 1.0, "spot_check": 0.05}, 5.0, precision, classes)

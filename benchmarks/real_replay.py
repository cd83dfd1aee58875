"""The paired analysis over real predictions (../shared/data/rooms, or $ROOMSIGHT_REAL_DATA): a champion
and two candidates trained cheaply on the training pipeline's frozen EfficientNet-Lite0 features, one with
another seed, one with two classes' labels swapped. Every photo is answered by models that did not train
on it (5-fold cross-fitting) and sent once, in a random order, through the simulated review queue,
reviewers giving the true labels. No Ray, no registry.

Training here is a logistic-regression head on the backbone's pooled features (the pipeline's
`--tune head`, minus its augmented views), on 64 principal components, the champion and the `seed`
candidate each on its own 85% draw of its training folds with its own seed, so that they differ as retrained
models do; the `swapped` candidate is the `seed` one's draw and seed with two classes' labels exchanged, so
the swap is all that tells it from that candidate. An answer whose
top probability is below `UNSURE_BELOW` is `unsure`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from analysis.spec import AnalysisSpec
from benchmarks.sim_rollouts import Run, Traffic, replay
from roomsight.regions import REGIONS
from roomsight.verdicts import Cell

REAL = Path(os.environ.get("ROOMSIGHT_REAL_DATA", Path(__file__).resolve().parents[2] / "shared" / "data" / "rooms"))
UNSURE_BELOW = 0.5
SWAPPED = ("bedroom", "living_room")
FOLDS = 5


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

    rng = np.random.default_rng(seed)
    part = rng.choice(train, size=int(0.85 * len(train)), replace=False)
    target = y[part].copy()
    if swap is not None:
        a, b = swap
        target = np.where(y[part] == a, b, np.where(y[part] == b, a, target))
    model = LogisticRegression(C=0.05, max_iter=2000, random_state=seed).fit(x[part], target)
    probs = model.predict_proba(x[test])
    return np.where(probs.max(axis=1) >= UNSURE_BELOW, model.classes_[probs.argmax(axis=1)], -1)


def cross_fitted(x: np.ndarray, y: np.ndarray, rep: int, swapped: tuple[int, int]) -> dict[str, np.ndarray]:
    """Every photo's answer from each model, trained on the other folds."""
    folds = np.random.default_rng([rep, 1]).permutation(len(y)) % FOLDS
    out = {m: np.zeros(len(y), np.int64) for m in ("champion", "seed", "swapped")}
    for k in range(FOLDS):
        train, test = np.nonzero(folds != k)[0], np.nonzero(folds == k)[0]
        out["champion"][test] = answers(x, y, train, test, seed=10 * rep + 1)
        out["seed"][test] = answers(x, y, train, test, seed=10 * rep + 2)
        out["swapped"][test] = answers(x, y, train, test, seed=10 * rep + 2, swap=swapped)
    return out


def run(n_reps: int, spec: AnalysisSpec, cache: Path) -> dict[str, object]:
    from sklearn.decomposition import PCA

    raw, labels = features(REAL, cache)
    x = PCA(64, random_state=0).fit_transform((raw - raw.mean(0)) / (raw.std(0) + 1e-6))
    classes = tuple(sorted(set(labels)))
    y = np.array([classes.index(label) for label in labels])
    swapped = (classes.index(SWAPPED[0]), classes.index(SWAPPED[1]))
    out: dict[str, object] = {"photos": len(y), "repetitions": n_reps}
    runs: dict[str, list[Run]] = {"seed": [], "swapped": []}
    accuracy: dict[str, list[float]] = {"champion": [], "seed": [], "swapped": []}
    disagreement: dict[str, list[float]] = {"seed": [], "swapped": []}
    for rep in range(n_reps):
        fitted = cross_fitted(x, y, rep, swapped)
        for m in accuracy:
            accuracy[m].append(float(np.mean(fitted[m] == y)))
        order = np.random.default_rng([rep, 2]).permutation(len(y))  # each photo once, in a random order
        for name in runs:
            disagreement[name].append(float(np.mean(fitted["champion"] != fitted[name])))
            traffic = _traffic(order, y, fitted["champion"], fitted[name], classes)
            runs[name].append(replay(traffic, spec, np.random.default_rng([rep, 3]), horizon=len(y)))
    out["accuracy"] = {m: round(float(np.mean(v)), 4) for m, v in accuracy.items()}
    for name, rs in runs.items():
        decided = [r.analysis_at for r in rs if r.analysis_at is not None]
        needed = [r.needed for r in rs if r.analysis == "inconclusive" and r.needed is not None]
        out[name] = {"disagreement": round(float(np.mean(disagreement[name])), 4),
                     "refused": sum(r.analysis == "fail" for r in rs) / n_reps,
                     "promoted": sum(r.analysis == "pass" for r in rs) / n_reps,
                     "inconclusive": sum(r.analysis == "inconclusive" for r in rs) / n_reps,
                     "median_verdicts_to_decision": float(np.median(decided)) if decided else None,
                     "verdicts_available": float(np.median([r.verdicts for r in rs])),
                     "median_more_verdicts_needed_when_inconclusive": float(np.median(needed)) if needed else None,
                     "old_gates_promoted": sum(r.old for r in rs) / n_reps}
    return out


def _traffic(order: np.ndarray, y: np.ndarray, champion: np.ndarray, candidate: np.ndarray,
             classes: tuple[str, ...]) -> Traffic:
    """The photos in `order`, regions by a hash of the photo, cells by the champion's answer, the shipped
    review rates."""
    region = np.array([hashlib.sha256(str(i).encode()).digest()[0] % len(REGIONS) for i in order])
    champ, cand = champion[order], candidate[order]
    cls = np.where(champ < 0, len(classes), champ)
    cells = tuple(Cell(r, c, "in_domain") for r in REGIONS for c in (*classes, "unsure"))
    precision = tuple(float(np.sum(a == y) / max(np.sum(a >= 0), 1)) for a in (champion, candidate))
    low = champ == -1  # an agreeing answer below the threshold is `unsure`, as the shipped thresholds make it
    return Traffic(cells, region * (len(classes) + 1) + cls, y[order], champ, cand, np.zeros(len(order), bool), low,
                   {"disagreement": 1.0, "low_confidence": 1.0, "spot_check": 0.05}, 5.0, precision, classes)

"""Figures for the training section of BENCHMARKS.md beyond one training run's own metrics: the answers on
exposure-shifted copies of the test photos, other threshold methods re-cut on the same predictions, the
serving cost of an ensemble next to one model, and the caption rules on the labelled caption set.
"""

from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

GOLD = Path(__file__).resolve().parents[1] / "training" / "rules" / "gold"
EXPOSURE = 0.2  # brightness and contrast each changed by a factor within 1 +- this, as two cameras differ
COPIES = 3


MIN_ANSWERS = 20  # the "every class that answers at least 20 photos" (`lowest_class_precision_20`)


def answered(probs: np.ndarray, y: np.ndarray, classes: list[str], thresholds: dict[str, float]) -> dict:
    """Precision and coverage at the thresholds, and per class (the lowest among those answering at least
    MIN_ANSWERS)."""
    from training.thresholds import apply_thresholds

    d = apply_thresholds(probs, classes, thresholds)
    said = d >= 0
    per_class = {}
    for k, c in enumerate(classes):
        n = int((d == k).sum())
        per_class[c] = {"answered": n, "precision": round(float((y[d == k] == k).mean()), 3) if n else None}
    worst = [v["precision"] for v in per_class.values() if v["answered"] >= MIN_ANSWERS]
    return {"n": int(len(y)), "accuracy": round(float((probs.argmax(1) == y).mean()), 4),
            "coverage": round(float(said.mean()), 4),
            "precision": round(float((d[said] == y[said]).mean()), 4) if said.any() else None,
            "errors": int((d[said] != y[said]).sum()),
            "lowest_class_precision_20": min(worst) if worst else None, "per_class": per_class}


def exposure_copies(pack: Any, items: list[Any], y: np.ndarray, seed: int = 0) -> dict:
    """The exported model, as it serves, on COPIES copies of each test photo with brightness and contrast
    each scaled by a random factor within 1 +- EXPOSURE (seeded)."""
    from monitoring.shifts.ops import exposure
    from roomsight.modelpack import softmax
    from roomsight.preprocess import batch_tensor

    rng = np.random.default_rng(seed)
    photos = [Image.open(it.path).convert("RGB") for it in items]
    copies = [exposure(im, *rng.uniform(1 - EXPOSURE, 1 + EXPOSURE, 2)) for _ in range(COPIES) for im in photos]
    logits = np.concatenate([pack.forward(batch_tensor(copies[i:i + 32], pack.meta.preprocessing))[0]
                             for i in range(0, len(copies), 32)])
    return answered(softmax(logits), np.tile(y, COPIES), pack.classes, pack.meta.thresholds)


def recut(fitted: Any, y_test: np.ndarray, classes: list[str], target: float) -> dict:
    """The same run's predictions, thresholds re-cut by each method: what the choice of method costs."""
    from training.thresholds import thresholds_at_precision

    out = {}
    for method, conf in (("point", 0.9), ("lcb", 0.8), ("lcb", 0.9), ("lcb", 0.95)):
        chosen = thresholds_at_precision(fitted.cut_probs, fitted.cut_y, classes, target, method=method, confidence=conf)
        res = answered(fitted.test_probs, y_test, classes, {c: t.threshold for c, t in chosen.items()})
        res.pop("per_class")
        out["point" if method == "point" else f"lcb {conf:.0%}"] = {**res, "abstaining": [c for c, t in chosen.items() if not t.reached]}
    return out


def serving_cost(n_classes: int, members: int, threads: int, repeats: int = 60) -> dict:
    """Exported forward time per image, side by side in one process: one model, an ensemble of `members`
    heads on one backbone (the default export), and one of `members` tails (last stage + head) on one
    trunk. Random weights: the cost is the same."""
    import torch

    from roomsight.modelpack import PackMeta, load_pack, save_pack
    from roomsight.preprocess import Preprocessing
    from training import backbones, cached
    from training.ensemble import Ensemble
    from training.model import RoomNet
    from training.pipeline import REAL_BACKBONE

    def build(tail_blocks: int | None) -> torch.nn.Module:
        bb = backbones.create(REAL_BACKBONE, pretrained=False)
        model = RoomNet(bb, n_classes)
        if tail_blocks is None:
            return model
        trunk, net = cached.prepare(model, bb, tail_blocks)
        import copy

        return Ensemble(trunk, [copy.deepcopy(net) for _ in range(members)])

    spec = backbones.BACKBONES[REAL_BACKBONE]
    prep = Preprocessing(size=spec.input_size, mean=spec.mean, std=spec.std)
    x1, x8 = torch.randn(1, 3, spec.input_size, spec.input_size), torch.randn(8, 3, spec.input_size, spec.input_size)
    packs = {}
    with tempfile.TemporaryDirectory(prefix="bench-ensemble-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, tail in (("one model", None), (f"{members} heads", 0), (f"{members} tails", 1)):
            meta = PackMeta(classes=[f"c{i}" for i in range(n_classes)], preprocessing=prep)
            packs[name] = load_pack(save_pack(Path(tmp) / name.replace(" ", "-"), build(tail).eval(), meta, x8[:2]))
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        times: dict[str, list[float]] = {name: [] for name in packs}
        for _ in range(3):
            for pack in packs.values():
                pack.forward(x1)
                pack.forward(x8)
        for _ in range(repeats):  # interleaved, so a busy moment of the machine falls on all of them alike
            for name, pack in packs.items():
                t0 = time.perf_counter()
                pack.forward(x1)
                times[name].append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(previous)
    base = float(np.median(times["one model"]))
    return {"threads": threads, "repeats": repeats,
            **{name: {"ms_per_image": round(float(np.median(t)) * 1000, 2), "vs_one_model": round(float(np.median(t)) / base, 3)}
               for name, t in times.items()}}


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def captions() -> dict:
    """The shipped caption rules on both parts of the labelled caption set."""
    from training.labels import label_csv, load_rules

    out = {}
    rules = load_rules()
    with tempfile.TemporaryDirectory(prefix="bench-captions-") as tmp:
        for part in ("tuning", "heldout"):
            rep = label_csv(GOLD / f"{part}.csv", Path(tmp) / f"{part}.csv", rules, GOLD / f"{part}.csv").report
            assert rep is not None
            out[part] = {"captions": rep.n, "room_captions": rep.n_classes, "precision": _rounded(rep.precision, 4),
                         "coverage": _rounded(rep.coverage, 4),
                         "per_class": {c: {"precision": _rounded(s.precision, 3), "coverage": _rounded(s.coverage, 3),
                                           "labelled": s.labelled, "known": s.support} for c, s in rep.per_class.items()},
                         "per_rule": {c: f"{r.fired}/{r.correct}" for c, r in rep.per_rule.items()},
                         "abstained": rep.abstained}
    return out

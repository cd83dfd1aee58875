"""Seed sweeps of the default training recipe on the real photos, for choosing its settings.

The frozen trunk's activations are computed once per (size, resize mode, tail blocks, views, split) and
kept under $TMPDIR; then the tail and head are fitted once per seed. Prints validation and test accuracy,
and recall and precision at the 0.95-precision thresholds (chosen on validation), per seed and for the
mean of the seeds' probabilities. Nothing derived from the photos is written outside $TMPDIR.

    .venv/bin/python -m benchmarks.sweep_training --size 256 --seeds 0,1,2,3,4

BENCHMARKS.md (training notes) quotes its figures.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import confusion_matrix

from benchmarks.bench_training import REAL
from roomsight.modelpack import softmax
from roomsight.preprocess import Preprocessing, batch_tensor
from training import backbones, cached, data
from training.evaluate import build_report
from training.model import RoomNet
from training.thresholds import apply_thresholds, thresholds_at_precision
from training.trainer import FitConfig, fit, predict_tensors

PARTS = ("train", "valid", "test")


def cached_activations(args: argparse.Namespace, split: data.Split, image_of: dict, trunk: torch.nn.Module,
                       prep: Preprocessing) -> dict:
    path = Path(tempfile.gettempdir()) / (f"roomsight-sweep-{args.size}-{args.mode}-t{args.tail}-v{args.views}"
                                          f"-s{args.split}.pt")
    if path.exists():
        return torch.load(path)
    acts = {p: cached.cache_trunk(trunk, batch_tensor([image_of[id(it)] for it in getattr(split, p)], prep)) for p in PARTS}
    acts["views"] = cached.cache_views(trunk, [image_of[id(it)] for it in split.train], prep,
                                       cached.Views(count=args.views, seed=0)) if args.views else None
    torch.save(acts, path)
    return acts


def report(tag: str, probs_valid: np.ndarray, probs_test: np.ndarray, y_valid: np.ndarray, y_test: np.ndarray,
           classes: list[str]) -> None:
    chosen = thresholds_at_precision(probs_valid, y_valid, classes, 0.95)
    thresholds = {c: t.threshold for c, t in chosen.items()}
    per_class = build_report(probs_test, y_test, apply_thresholds(probs_test, classes, thresholds), classes,
                             thresholds)["per_class"]
    recall = {c: round(m["recall"], 2) for c, m in per_class.items()}
    precision = {c: round(m["precision"], 2) for c, m in per_class.items()}
    print(f"{tag}: valid {(probs_valid.argmax(1) == y_valid).mean():.3f} test {(probs_test.argmax(1) == y_test).mean():.3f}")
    print(f"  recall at thresholds {recall}\n  precision at thresholds {precision}")
    print(confusion_matrix(y_test, probs_test.argmax(1)), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256, help="input size in pixels")
    ap.add_argument("--mode", default="squish", help="resize mode: crop, pad or squish")
    ap.add_argument("--tail", type=int, default=1, help="backbone stages trained (0: head only)")
    ap.add_argument("--views", type=int, default=3, help="augmented views cached per training image")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated")
    ap.add_argument("--split", type=int, default=0, help="seed of the train/valid/test split")
    args = ap.parse_args()
    torch.set_num_threads(2)
    t0 = time.time()
    items = data.load_manifest(REAL / "labels.csv" if (REAL / "labels.csv").exists() else REAL)
    loaded = data.load_images(items, max_side=max(2 * args.size, 256))
    classes = data.check_trainable(loaded.items)
    split = data.split(loaded.items, seed=args.split)
    image_of = {id(it): im for it, im in zip(loaded.items, loaded.images)}
    index = {c: i for i, c in enumerate(classes)}
    ys = {p: torch.tensor([index[it.label] for it in getattr(split, p)]) for p in PARTS}

    bb = backbones.create("efficientnet_lite0")
    prep = Preprocessing(size=args.size, resize_mode=args.mode, mean=bb.mean, std=bb.std)  # type: ignore[arg-type]
    model = RoomNet(bb, len(classes))
    trunk, net = cached.prepare(model, "efficientnet_lite0", args.tail)
    pretrained = {k: v.clone() for k, v in model.state_dict().items()}
    acts = cached_activations(args, split, image_of, trunk, prep)
    print(f"activations ready after {time.time() - t0:.0f} s", flush=True)

    probs_valid, probs_test = [], []
    for seed in (int(s) for s in args.seeds.split(",")):
        model.load_state_dict(pretrained)
        torch.manual_seed(seed)
        for m in model.head.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
        t1 = time.time()
        cfg = FitConfig(epochs=args.epochs, lr=args.lr, seed=seed, augment=False, patience=4)
        result = fit(net, acts["train"], ys["train"], acts["valid"], ys["valid"], cfg, x_train_views=acts["views"])
        probs_valid.append(softmax(predict_tensors(net, acts["valid"])[0]))
        probs_test.append(softmax(predict_tensors(net, acts["test"])[0]))
        print(f"seed {seed}: fit {time.time() - t1:.0f} s, best epoch {result.best_epoch} of {result.epochs_run}", flush=True)
        report(f"seed {seed}", probs_valid[-1], probs_test[-1], ys["valid"].numpy(), ys["test"].numpy(), classes)
    if len(probs_valid) > 1:
        report("mean of the seeds' probabilities", np.mean(probs_valid, 0), np.mean(probs_test, 0),
               ys["valid"].numpy(), ys["test"].numpy(), classes)
    print(f"total {time.time() - t0:.0f} s, {vars(args)}")


if __name__ == "__main__":
    main()

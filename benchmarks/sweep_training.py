"""Seed sweeps of the default training recipe on the real photos, for choosing its settings.

The frozen trunk's activations are computed once per (size, resize mode, tail blocks, views, split, and the
pooling when no tail is trained) and kept under $TMPDIR; then the tail and head are fitted once per seed.
Prints validation and test accuracy, and recall and precision at the 0.95-precision thresholds (chosen on
validation), per seed and for the mean of the seeds' probabilities. Nothing derived from the photos is
written outside $TMPDIR.

    .venv/bin/python -m benchmarks.sweep_training --size 256 --seeds 0,1,2,3,4

`--pool 2x2` pools the last feature map to a 2x2 grid instead of one value per channel (the head sees where
things are in the picture, as tiny_cnn's does). `--show-errors` lists the test photos the mean of the seeds
gets wrong, for looking at them.

`--cross-fit K` then also fits K models on K stratified folds of train + valid together (each stopped early
on its held-out fold), and reports their mean on test, with thresholds cut on the out-of-fold predictions:
more photos to train on and to cut thresholds on than the fixed validation part gives.

BENCHMARKS.md (training notes) quotes its figures.
"""

from __future__ import annotations

import argparse
import dataclasses
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
from training.pipeline import REAL_BACKBONE
from training.thresholds import apply_thresholds, thresholds_at_precision
from training.trainer import FitConfig, fit, predict_tensors

PARTS = ("train", "valid", "test")


def cached_activations(args: argparse.Namespace, split: data.Split, image_of: dict, trunk: torch.nn.Module,
                       prep: Preprocessing) -> dict:
    pool = f"-p{args.pool}" if args.tail == 0 else ""  # with no tail the trunk ends in the pooling
    path = Path(tempfile.gettempdir()) / (f"roomsight-sweep-{args.size}-{args.mode}-t{args.tail}-v{args.views}"
                                          f"-s{args.split}{pool}{'-cv' if args.cross_fit else ''}.pt")
    if path.exists():
        return torch.load(path)
    acts = {p: cached.cache_trunk(trunk, batch_tensor([image_of[id(it)] for it in getattr(split, p)], prep)) for p in PARTS}
    for part, key, seed in (("train", "views", 0), ("valid", "valid_views", 1)):
        if args.views and (part == "train" or args.cross_fit):
            acts[key] = cached.cache_views(trunk, [image_of[id(it)] for it in getattr(split, part)], prep,
                                           cached.Views(count=args.views, seed=seed))
    acts.setdefault("views", None)
    torch.save(acts, path)
    return acts


def fit_one(model: RoomNet, net: torch.nn.Module, pretrained: dict, seed: int, args: argparse.Namespace,
            x: torch.Tensor, y: torch.Tensor, views: torch.Tensor | None, x_stop: torch.Tensor,
            y_stop: torch.Tensor) -> int:
    """Tail and head from the pretrained weights and a fresh head, fitted with early stopping on
    (x_stop, y_stop); returns the best epoch."""
    model.load_state_dict(pretrained)
    torch.manual_seed(seed)
    for m in model.head.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    cfg = FitConfig(epochs=args.epochs, lr=args.lr, seed=seed, augment=False, patience=4)
    return fit(net, x, y, x_stop, y_stop, cfg, x_train_views=views).best_epoch


def cross_fit(args: argparse.Namespace, model: RoomNet, net: torch.nn.Module, pretrained: dict, acts: dict,
              ys: dict, classes: list[str]) -> None:
    x = torch.cat([acts["train"], acts["valid"]])
    y = torch.cat([ys["train"], ys["valid"]])
    views = torch.cat([acts["views"], acts["valid_views"]]) if args.views else None
    rng = np.random.default_rng(args.split)
    fold = np.zeros(len(y), dtype=int)
    for c in range(len(classes)):  # stratified: every fold holds each class in proportion
        idx = np.flatnonzero(y.numpy() == c)
        rng.shuffle(idx)
        fold[idx] = np.arange(len(idx)) % args.cross_fit
    out_of_fold = np.zeros((len(y), len(classes)), dtype=np.float32)
    probs_test = []
    for k in range(args.cross_fit):
        fit_on, held = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        best = fit_one(model, net, pretrained, k, args, x[fit_on], y[fit_on], views[fit_on] if views is not None else None,
                       x[held], y[held])
        out_of_fold[held] = softmax(predict_tensors(net, x[held])[0])
        probs_test.append(softmax(predict_tensors(net, acts["test"])[0]))
        print(f"fold {k}: best epoch {best}, test {(probs_test[-1].argmax(1) == ys['test'].numpy()).mean():.3f}", flush=True)
    report(f"{args.cross_fit}-fold cross-fitted mean, thresholds on out-of-fold train + valid", out_of_fold,
           np.mean(probs_test, 0), y.numpy(), ys["test"].numpy(), classes)


def report(tag: str, probs_valid: np.ndarray, probs_test: np.ndarray, y_valid: np.ndarray, y_test: np.ndarray,
           classes: list[str]) -> None:
    chosen = thresholds_at_precision(probs_valid, y_valid, classes, 0.95)
    thresholds = {c: t.threshold for c, t in chosen.items()}
    per_class = build_report(probs_test, y_test, apply_thresholds(probs_test, classes, thresholds), classes,
                             thresholds)["per_class"]
    recall = {c: round(m["recall"], 2) for c, m in per_class.items()}
    precision = {c: None if m["precision"] is None else round(m["precision"], 2) for c, m in per_class.items()}
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
    ap.add_argument("--pool", choices=("avg", "2x2"), default="avg", help="pooling of the last feature map")
    ap.add_argument("--show-errors", action="store_true", help="list the test photos the seeds' mean gets wrong")
    ap.add_argument("--cross-fit", type=int, default=0, metavar="K", help="also K-fold cross-fitting on train + valid")
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

    bb = backbones.create(REAL_BACKBONE)
    if args.pool == "2x2":  # with a tail, the trunk is unchanged and its cached activations are shared with "avg"
        bb.module.global_pool = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten())
        bb = dataclasses.replace(bb, features=4 * bb.features)
    prep = Preprocessing(size=args.size, resize_mode=args.mode, mean=bb.mean, std=bb.std)  # type: ignore[arg-type]
    model = RoomNet(bb, len(classes))
    trunk, net = cached.prepare(model, bb, args.tail)
    pretrained = {k: v.clone() for k, v in model.state_dict().items()}
    acts = cached_activations(args, split, image_of, trunk, prep)
    print(f"activations ready after {time.time() - t0:.0f} s", flush=True)

    probs_valid, probs_test = [], []
    for seed in (int(s) for s in args.seeds.split(",")):
        t1 = time.time()
        best = fit_one(model, net, pretrained, seed, args, acts["train"], ys["train"], acts["views"], acts["valid"], ys["valid"])
        probs_valid.append(softmax(predict_tensors(net, acts["valid"])[0]))
        probs_test.append(softmax(predict_tensors(net, acts["test"])[0]))
        print(f"seed {seed}: fit {time.time() - t1:.0f} s, best epoch {best}", flush=True)
        report(f"seed {seed}", probs_valid[-1], probs_test[-1], ys["valid"].numpy(), ys["test"].numpy(), classes)
    mean_test = np.mean(probs_test, 0)
    if len(probs_valid) > 1:
        report("mean of the seeds' probabilities", np.mean(probs_valid, 0), mean_test,
               ys["valid"].numpy(), ys["test"].numpy(), classes)
    if args.show_errors:
        for it, truth, probs in zip(split.test, ys["test"].numpy(), mean_test):
            said = int(probs.argmax())
            if said != truth:
                print(f"  wrong: {it.path} {classes[truth]} -> {classes[said]} ({probs[said]:.2f})")
    if args.cross_fit:
        cross_fit(args, model, net, pretrained, acts, ys, classes)
    print(f"total {time.time() - t0:.0f} s, {vars(args)}")


if __name__ == "__main__":
    main()

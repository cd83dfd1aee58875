"""`rollout train` end to end: data -> split -> fit (training.fitting: cross-fitted members on a cached
trunk by default) -> thresholds at the target precision on predictions no member made on its own
training photos -> test metrics -> export to MLflow. Library code: progress goes to a callback, the CLI
draws it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monitoring.reference import image_reference
from roomsight.config import Settings
from roomsight.errors import DataError
from roomsight.modelpack import PackMeta
from roomsight.preprocess import RESIZE_MODES, Preprocessing, batch_tensor
from training import backbones, cached, data
from training.abstaining import check_answerable, check_answers
from training.export import Registered, export_and_register
from training.fitting import Fitted, Parts, cut_on_words, fit_cross, fit_one
from training.model import RoomNet
from training.thresholds import METHODS, apply_thresholds, describe_method, thresholds_at_precision
from training.trainer import FitConfig, seed_everything

SYNTHETIC_PER_CLASS = 60
SYNTHETIC_SIZE = 64
SYNTHETIC_BACKBONE = "tiny_cnn"  # quick to train on a CPU, for the embedded synthetic photos
REAL_BACKBONE = "efficientnet_lite0"  # ImageNet weights installed offline, for real photos


@dataclass(frozen=True)
class TrainConfig:
    data: Path | None = None  # None: the embedded synthetic photos
    seed: int = 0
    backbone: str | None = None  # None: SYNTHETIC_BACKBONE on synthetic data, REAL_BACKBONE on real photos
    pretrained: bool = True
    weights: Path | None = None
    head_only: bool = False  # the same as tune="head"
    tune: str | None = None  # head | last | full; None: head for pretrained backbones, else full
    tail_blocks: int = 1  # stages of the backbone that tune="last" trains
    # Cross-fitted members for tune head/last (training.crossfit): thresholds cut on out-of-fold predictions
    # of train + validation, the members exported on one shared trunk. 1: one model, cut on validation.
    folds: int = 5
    # Augmented views of each training image cached for tune="last"/"head" (see training.cached); each costs
    # one trunk pass over the training set. 1 is the mirror image alone.
    views: int = 3
    view_jitter: float = 0.2  # the views' brightness and contrast, each within 1 +- this
    epochs: int | None = None
    batch_size: int = 32
    lr: float | None = None
    resize_mode: str = "squish"
    target_precision: float = 0.95
    # lcb | point (training.thresholds); None: lcb on real photos, point on the synthetic ones, whose few
    # photos a class could never bound at the target (they show the plumbing, not a promise).
    threshold_method: str | None = None
    threshold_confidence: float = 0.9
    synthetic_per_class: int = SYNTHETIC_PER_CLASS
    synthetic_size: int = SYNTHETIC_SIZE  # pixels the synthetic photos are drawn at (the model sees its backbone's size)
    workers: int = 1  # more than 1: data-parallel with Ray Train (training.distributed), one model
    label_noise: float = 0.0  # share of training labels shuffled: makes deliberately worse models (demo, tests)
    # Two classes whose training and validation labels are exchanged: a model confidently wrong on exactly
    # those two, right elsewhere (the demo's candidate that is worse on one segment). Test labels stay true.
    swap_labels: tuple[str, str] | None = None
    # Register a model even when every class abstains (it would answer only "unsure"); refused otherwise.
    allow_always_unsure: bool = False


@dataclass
class TrainResult:
    registered: Registered
    metrics: dict[str, float | None]  # None: undefined (a precision where nothing was answered)
    classes: list[str]
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    thresholding: dict[str, Any] = field(default_factory=dict)
    # For analyses (benchmarks.bench_training): the predictions the thresholds were cut on and the test
    # part's, and the test photos.
    fitted: Fitted | None = None
    test: list[data.Item] = field(default_factory=list)
    y_test: np.ndarray | None = None


Progress = Callable[[str, dict[str, Any]], None]


def synthetic_dataset(settings: Settings, per_class: int, size: int) -> Path:
    """Generated once per (size, count) under the data directory, then reused."""
    from training.synthetic import write_dataset

    # Always seed 0, whatever the training seed: runs with different seeds train on the same photos, so
    # they differ only in the training itself.
    root = settings.home / "data" / f"synthetic-{size}px-{per_class}x-seed0"
    manifest = root / "manifest.csv"
    if not manifest.exists():
        write_dataset(root, per_class, size=size, seed=0)
    return manifest


def train(settings: Settings, cfg: TrainConfig, progress: Progress | None = None) -> TrainResult:
    say = progress or (lambda _event, _info: None)
    check_options(cfg)
    seed_everything(cfg.seed)
    source = cfg.data or synthetic_dataset(settings, cfg.synthetic_per_class, cfg.synthetic_size)
    items = data.load_manifest(source)
    data.check_trainable(items)
    say("data", {"source": str(source), "items": len(items)})

    backbone_name = cfg.backbone or (SYNTHETIC_BACKBONE if cfg.data is None else REAL_BACKBONE)
    bb = backbones.create(backbone_name, pretrained=cfg.pretrained, weights=cfg.weights)
    prep = Preprocessing(size=bb.input_size, resize_mode=cfg.resize_mode, mean=bb.mean, std=bb.std)  # type: ignore[arg-type]
    loaded = data.load_images(items)
    if loaded.skipped:
        say("skipped", {"count": len(loaded.skipped), "files": loaded.skipped})
    classes = data.check_trainable(loaded.items)
    parts = _parts(loaded, classes, cfg)
    if not parts.test:  # every class has two photos: one trains, one validates
        raise DataError(f"too few photos to keep a test part apart: {len(loaded.items)} photos, 2 a class; "
                        "give a class at least 3")
    say("split", {"train": len(parts.train), "valid": len(parts.valid), "test": len(parts.test), "classes": classes})

    model = RoomNet(bb, len(classes))
    tune = tune_mode(cfg, bb)
    can_cross = tune != "full" and cfg.workers == 1  # tails or heads on one process: folds are possible
    cross = can_cross and cfg.folds > 1
    # tune="last": with augmented views, 3e-4 gives better-calibrated probabilities than 1e-3, which is what
    # the thresholds are cut from. A network trained from scratch needs a higher rate than a fine-tuned one.
    # Cross-fitted heads train every epoch (no early stopping): their count was chosen on out-of-fold
    # figures only (BENCHMARKS.md, training).
    defaults = {"full": (8, 5e-4) if bb.pretrained else (12, 3e-3), "last": (12, 3e-4),
                "head": (10 if cross else 25, 3e-3)}[tune]
    fit_cfg = FitConfig(epochs=cfg.epochs or defaults[0], batch_size=cfg.batch_size, lr=cfg.lr or defaults[1],
                        head_only=tune == "head", seed=cfg.seed, mean=prep.mean, std=prep.std,
                        augment=tune == "full", patience=3 if tune == "full" else 4)
    views = cached.Views(count=cfg.views, jitter=cfg.view_jitter, seed=cfg.seed) if cfg.views > 0 else None
    tail_blocks = cfg.tail_blocks if tune == "last" else 0
    method = cfg.threshold_method or ("point" if cfg.data is None else "lcb")
    cut_set = parts.train + parts.valid if cross else parts.valid
    check_answerable(Counter(it.label for it in cut_set), cfg, method,
                     cut_on_words(len(cut_set), cfg.folds if cross else 1, fitted=False), cross_fits=can_cross)
    if cross:
        fitted = fit_cross(model, bb, parts, prep, fit_cfg, folds=cfg.folds, tail_blocks=tail_blocks, views=views, say=say)
    else:
        fitted = fit_one(model, bb, parts, prep, fit_cfg, tune=tune, tail_blocks=tail_blocks, views=views,
                         workers=cfg.workers, settings=settings, say=say)

    chosen = thresholds_at_precision(fitted.cut_probs, fitted.cut_y, classes, cfg.target_precision, method=method,
                                     confidence=cfg.threshold_confidence)
    check_answers(chosen, cfg, method, fitted.cut_on, cross_fits=can_cross)
    thresholds = {c: t.threshold for c, t in chosen.items()}
    y_test = np.asarray(parts.y["test"])
    metrics = {"valid_accuracy": fitted.valid_accuracy, "epochs_run": float(fitted.epochs_run),
               **at_thresholds(fitted.test_probs, y_test, classes, thresholds)}
    cut_answered = apply_thresholds(fitted.cut_probs, classes, thresholds) >= 0
    thresholding = {"method": method, "target": cfg.target_precision, "confidence": cfg.threshold_confidence,
                    "described": describe_method(method, cfg.target_precision, cfg.threshold_confidence, fitted.cut_on),
                    "cut_on": fitted.cut_on, "coverage_cut_on": round(float(cut_answered.mean()), 4),
                    "abstaining": [c for c, t in chosen.items() if not t.reached],
                    "per_class": {c: t.to_dict() for c, t in chosen.items()}, "members": fitted.members}
    metrics["coverage_at_thresholds_cut_on"] = thresholding["coverage_cut_on"]
    say("evaluated", {**metrics, "thresholding": thresholding})

    emb_ref = embedding_reference(fitted.reference_embeddings)
    digest = dict(zip(loaded.items, loaded.digests))
    meta = PackMeta(
        classes=classes, preprocessing=prep, thresholds=thresholds, backbone=backbone_name,
        reference={"embedding": emb_ref,
                   "images": image_reference([it.path for it in fitted.reference], parts.images(fitted.reference),
                                             fitted.reference_logits, fitted.reference_embeddings, classes, emb_ref)},
        metrics=metrics, data_sha256=data.manifest_hash(items), thresholding=thresholding,
        trained_on=sorted({digest[it] for it in parts.train + parts.valid}),
    )
    params = {"backbone": backbone_name, "pretrained": bb.pretrained, "tune": tune, "seed": cfg.seed,
              "epochs": fit_cfg.epochs, "lr": fit_cfg.lr, "batch_size": cfg.batch_size, "image_size": bb.input_size,
              "resize_mode": cfg.resize_mode, "target_precision": cfg.target_precision, "data": str(source),
              "workers": cfg.workers, "members": fitted.members, "views": cfg.views, "view_jitter": cfg.view_jitter,
              "threshold_method": method, "threshold_confidence": cfg.threshold_confidence,
              "thresholds_cut_on": fitted.cut_on, "n_train": len(parts.train), "n_valid": len(parts.valid),
              "n_test": len(parts.test), "label_noise": cfg.label_noise,
              "swap_labels": ",".join(cfg.swap_labels or ())}
    example = batch_tensor(parts.images(parts.valid[:2]), prep)
    registered = export_and_register(settings, fitted.module, meta, example, params, metrics)
    say("registered", {"uri": registered.ref.uri, "champion": registered.became_champion})
    return TrainResult(registered=registered, metrics=metrics, classes=classes, skipped=loaded.skipped,
                       thresholding=thresholding, fitted=fitted, test=parts.test, y_test=y_test)


def _parts(loaded: data.Loaded, classes: list[str], cfg: TrainConfig) -> Parts:
    split = data.split(loaded.items, seed=cfg.seed, digests=loaded.digests)
    index = {c: i for i, c in enumerate(classes)}
    taught = dict(index)
    if cfg.swap_labels is not None:
        a, b = cfg.swap_labels
        if a not in index or b not in index or a == b:
            raise DataError(f"swap_labels {cfg.swap_labels}: two different classes of {', '.join(classes)}")
        taught[a], taught[b] = index[b], index[a]

    def labels(part: list[data.Item], noisy: bool = False, truth: bool = False) -> torch.Tensor:
        y = torch.tensor([(index if truth else taught)[it.label] for it in part])
        if noisy and cfg.label_noise > 0:
            g = torch.Generator().manual_seed(cfg.seed + 1)
            flip = torch.rand(len(y), generator=g) < cfg.label_noise
            y = torch.where(flip, torch.randint(len(classes), (len(y),), generator=g), y)
        return y

    return Parts(split.train, split.valid, split.test,
                 {"train": labels(split.train, noisy=True), "valid": labels(split.valid),
                  "test": labels(split.test, truth=True)},
                 {id(it): im for it, im in zip(loaded.items, loaded.images)},
                 {id(it): d for it, d in zip(loaded.items, loaded.digests)})


def at_thresholds(probs: np.ndarray, y: np.ndarray, classes: list[str],
                  thresholds: dict[str, float]) -> dict[str, float | None]:
    """Top-1 accuracy, and precision, coverage and per-class precision and recall at the thresholds. A
    precision over no answers is None: 0 would read as a model that answers wrongly; so is a recall over
    no photos of the class."""
    decided = apply_thresholds(probs, classes, thresholds)
    answered = decided >= 0
    out: dict[str, float | None] = {
        "test_accuracy": float((probs.argmax(1) == y).mean()),
        "test_coverage_at_thresholds": float(answered.mean()),
        "test_precision_at_thresholds": float((decided[answered] == y[answered]).mean()) if answered.any() else None}
    for k, c in enumerate(classes):
        said, truth = decided == k, y == k
        out[f"test_answered_at_thresholds.{c}"] = float(said.sum())
        out[f"test_recall_at_thresholds.{c}"] = float((said & truth).sum() / truth.sum()) if truth.any() else None
        out[f"test_precision_at_thresholds.{c}"] = float((said & truth).sum() / said.sum()) if said.any() else None
    return out


def check_options(cfg: TrainConfig) -> None:
    """The options' values, checked before any photo is read: a mistake would otherwise surface only
    after the photos are loaded and split."""
    if cfg.resize_mode not in RESIZE_MODES:
        raise DataError(f"--resize must be one of {', '.join(RESIZE_MODES)}; got {cfg.resize_mode!r}")
    if cfg.tune not in (None, "head", "last", "full"):
        raise DataError(f"--tune must be head, last or full; got {cfg.tune!r}")
    if cfg.head_only and cfg.tune not in (None, "head"):
        raise DataError(f"--head-only and --tune {cfg.tune} contradict each other: give one")
    if cfg.threshold_method not in (None, *METHODS):
        raise DataError(f"--threshold-method must be one of {', '.join(METHODS)}; got {cfg.threshold_method!r}")
    if not 0 < cfg.threshold_confidence < 1:
        raise DataError(f"--threshold-confidence must be between 0 and 1; got {cfg.threshold_confidence}")
    if cfg.folds < 1:
        raise DataError(f"--folds must be at least 1; got {cfg.folds}")
    if cfg.backbone is not None:
        backbones.check_name(cfg.backbone)


def tune_mode(cfg: TrainConfig, bb: backbones.Backbone) -> str:
    """What trains: `head` (backbone frozen), `last` (its last stages too) or `full`. A backbone trained
    from scratch can only train in full by default; `last` needs a trunk/tail split."""
    tune = "head" if cfg.head_only else cfg.tune
    if tune is None:
        tune = "head" if bb.pretrained else "full"
    if tune == "last" and not bb.splittable:
        raise DataError(f"{bb.name} has no trunk/tail split to freeze: use --tune full or --tune head")
    return tune


def embedding_reference(emb: np.ndarray) -> dict[str, Any]:
    """Centre and spread of the reference embeddings: distances from the centre, scaled by the median,
    tell monitoring how unfamiliar a new image is."""
    mean = emb.mean(axis=0)
    dist = np.linalg.norm(emb - mean, axis=1)
    scale = float(np.median(dist)) or 1.0
    return {"mean": mean.round(6).tolist(), "scale": scale,
            "p95": float(np.percentile(dist / scale, 95)), "p99": float(np.percentile(dist / scale, 99))}

"""Cross-fitting on cached trunk activations: the photos the thresholds are cut on are never the photos a
model learned from, and every training photo serves for both.

The pool (train + validation) is split into K stratified folds. Member k trains on the other K-1 folds for
a fixed number of epochs (stopping early on fold k would choose its epoch by the very predictions it must
make unseen); fold k's predictions then come from a model that never saw it. Those
out-of-fold predictions, one per photo of the pool, are what training.thresholds cuts on: K times the
photos a fixed validation part would give. The K members, sharing the frozen trunk, are the exported
model (training.ensemble).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from roomsight.errors import DataError
from roomsight.modelpack import softmax
from training.trainer import FitConfig, fit, predict_tensors


def folds(y: np.ndarray, k: int, seed: int, digests: list[str] | None = None) -> np.ndarray:
    """A fold index per item, each class spread evenly over the folds (seeded). Items sharing a digest
    (training.data.photo_digest) take the fold of the first of them: a member that learned one copy of a
    photo would predict the other as if unseen, and the thresholds would be cut on that flattery."""
    rng = np.random.default_rng(seed)
    first: dict[str, int] = {}
    lead = np.asarray([first.setdefault(d, i) for i, d in enumerate(digests or map(str, range(len(y))))], dtype=int)
    own = np.flatnonzero(lead == np.arange(len(y)))
    out = np.zeros(len(y), dtype=int)
    for c in np.unique(y[own]):
        idx = own[y[own] == c]
        rng.shuffle(idx)
        out[idx] = (np.arange(len(idx)) + int(rng.integers(k))) % k
    return out[lead]


def check_filled(fold: np.ndarray, k: int) -> None:
    """Every fold must hold a photo: a member with none held out has nothing to predict. Each class covers
    every fold once it has k photos, so this refuses only a pool with fewer than k photos in every class."""
    empty = set(range(k)) - set(fold.tolist())
    if empty:
        raise DataError(f"{k} folds of {len(fold)} photos leave {len(empty)} fold(s) without a photo to predict; "
                        "give fewer --folds (1: one model, thresholds cut on the validation part) or more photos")


@dataclass
class CrossFit:
    members: list[nn.Module]  # trainable parts (tail + head), one per fold
    out_of_fold: np.ndarray  # (N, C) probabilities, row i from the member that did not see item i
    out_of_fold_logits: np.ndarray
    fold: np.ndarray  # (N,) fold of each item
    epochs: list[int]
    valid_accuracy: list[float]  # each member's accuracy on its own held-out fold, after its last epoch


def cross_fit(net: nn.Module, reset: Callable[[int], None], x: torch.Tensor, y: torch.Tensor,
              views: torch.Tensor | None, k: int, cfg: FitConfig,
              on_fold: Callable[[int, dict[str, float]], None] | None = None,
              on_epoch: Callable[[int, dict[str, float]], None] | None = None,
              on_batch: Callable[[], None] | None = None, digests: list[str] | None = None) -> CrossFit:
    """`net` maps cached activations to (logits, embedding) and is trained in place; `reset(seed)` puts its
    weights back to where training starts (pretrained tail, fresh head) before each member. `digests`: of
    the items, in order, so that copies of one photo share a fold."""
    fold = folds(y.numpy(), k, cfg.seed, digests)
    check_filled(fold, k)
    logits = np.zeros((len(y), 0), dtype=np.float32)
    members, epochs, acc = [], [], []
    for f in range(k):
        reset(cfg.seed + f)
        fit_on, held = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        result = fit(net, x[fit_on], y[fit_on], x[held], y[held],
                     dataclasses.replace(cfg, seed=cfg.seed + f, early_stopping=False),
                     on_epoch=on_epoch, on_batch=on_batch, x_train_views=views[fit_on] if views is not None else None)
        held_logits = predict_tensors(net, x[held])[0]
        if logits.shape[1] == 0:
            logits = np.zeros((len(y), held_logits.shape[1]), dtype=np.float32)
        logits[held] = held_logits
        members.append(copy.deepcopy(net).eval())
        epochs.append(result.epochs_run)
        acc.append(result.best_valid_accuracy)
        if on_fold:
            on_fold(f, {"fold": f, "epochs": result.epochs_run, "valid_accuracy": result.best_valid_accuracy})
    return CrossFit(members, softmax(logits), logits, fold, epochs, acc)

"""How `rollout train` fits, once the photos are split: it hands back what the rest of the pipeline needs
(the module to export, the predictions the thresholds are cut on, the test predictions, the photos that
calibrate monitoring), whichever way the model was fitted.

  cross-fitted (the default for a pretrained backbone: tune head or last): training.crossfit on the cached
      trunk over train + validation together; the thresholds are cut on out-of-fold predictions of every
      one of those photos; the export is the members on one shared trunk (training.ensemble).
  one model (tune full, --folds 1, or --workers N): trained on the training part, stopped early and cut on
      the validation part.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from roomsight.modelpack import softmax
from roomsight.preprocess import Preprocessing, batch_tensor
from training import cached
from training.backbones import Backbone
from training.crossfit import cross_fit
from training.data import Item, first_copies
from training.ensemble import Ensemble
from training.model import RoomNet
from training.trainer import FitConfig, fit, predict_tensors

Say = Callable[[str, dict[str, Any]], None]


@dataclass
class Fitted:
    module: nn.Module  # what is exported: a normalised image batch -> (logits, embedding)
    cut_probs: np.ndarray  # the predictions the thresholds are cut on, none from a model that saw the photo, one a photo
    cut_y: np.ndarray
    cut_on: str  # those photos, in words, for the model's metadata and reports
    test_probs: np.ndarray
    reference: list[Item]  # photos whose descriptors and model outputs calibrate monitoring
    reference_logits: np.ndarray
    reference_embeddings: np.ndarray
    # One model: at the epoch early stopping kept. Cross-fitted: the members' mean, each on its own
    # held-out fold after its last epoch (members do not stop early, see training.crossfit).
    valid_accuracy: float
    epochs_run: int
    members: int


@dataclass
class Parts:
    """The split photos, decoded, with their class indices."""

    train: list[Item]
    valid: list[Item]
    test: list[Item]
    y: dict[str, torch.Tensor]  # part name -> labels (training labels with any deliberate noise)
    image_of: dict[int, Image.Image]  # id(item) -> decoded photo
    digest_of: dict[int, str]  # id(item) -> its photo's content hash (training.data.photo_digest)

    def images(self, items: list[Item]) -> list[Image.Image]:
        return [self.image_of[id(it)] for it in items]


def _reset_to(model: RoomNet, start: dict[str, torch.Tensor]) -> Callable[[int], None]:
    """Back to the pretrained tail and a freshly initialised head, seeded."""
    def reset(seed: int) -> None:
        model.load_state_dict(start)
        torch.manual_seed(seed)
        for m in model.head.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
    return reset


def cut_on_words(photos: int, folds: int, *, fitted: bool = True) -> str:
    """The photos the thresholds are cut on, in words: out-of-fold predictions of train + validation when
    cross-fitted (folds > 1), else the validation photos, on which early stopping also picked the epoch (not
    yet before fitting: `fitted` False)."""
    if folds > 1:
        return f"out-of-fold predictions of the {photos} training and validation photos ({folds} folds)"
    return f"the {photos} validation photos" + (", which also picked the training epoch" if fitted else "")


def fit_cross(model: RoomNet, bb: Backbone, parts: Parts, prep: Preprocessing, fit_cfg: FitConfig, *, folds: int,
              tail_blocks: int, views: cached.Views | None, say: Say) -> Fitted:
    pool = parts.train + parts.valid
    y = torch.cat([parts.y["train"], parts.y["valid"]])
    digests = [parts.digest_of[id(it)] for it in pool]
    trunk, net = cached.prepare(model, bb, tail_blocks)
    n_views = views.count if views else 0
    say("cache-start", {"images": (1 + n_views) * len(pool) + len(parts.test)})
    tick = lambda n: say("cache", {"n": n})  # noqa: E731
    x_views = cached.cache_views(trunk, parts.images(pool), prep, views, on_batch=tick) if views else None
    x = cached.cache_trunk(trunk, batch_tensor(parts.images(pool), prep), on_batch=tick)
    x_test = cached.cache_trunk(trunk, batch_tensor(parts.images(parts.test), prep), on_batch=tick)
    batches = (len(pool) * (folds - 1) // folds + fit_cfg.batch_size - 1) // fit_cfg.batch_size
    say("fit-start", {"epochs": fit_cfg.epochs * folds, "batches_per_epoch": batches,
                      "tune": f"{'head' if tail_blocks == 0 else 'last'}, {folds} cross-fitted members"})
    cf = cross_fit(net, _reset_to(model, copy.deepcopy(model.state_dict())), x, y, x_views, folds, fit_cfg,
                   on_fold=lambda f, row: say("fold", row), on_epoch=lambda e, row: say("epoch", row),
                   on_batch=lambda: say("batch", {}), digests=digests)
    ensemble = Ensemble(trunk, cf.members).eval()
    members = Ensemble(nn.Identity(), cf.members).eval()
    test_logits, _ = predict_tensors(members, x_test)
    _, pool_emb = predict_tensors(members, x)
    once = first_copies(digests)
    return Fitted(module=ensemble, cut_probs=cf.out_of_fold[once], cut_y=y.numpy()[once],
                  cut_on=cut_on_words(len(pool), folds),
                  test_probs=softmax(test_logits), reference=pool,
                  reference_logits=cf.out_of_fold_logits, reference_embeddings=pool_emb,
                  valid_accuracy=float(np.mean(cf.valid_accuracy)), epochs_run=int(np.max(cf.epochs)),
                  members=folds)


def fit_one(model: RoomNet, bb: Backbone, parts: Parts, prep: Preprocessing, fit_cfg: FitConfig, *, tune: str,
            tail_blocks: int, views: cached.Views | None, workers: int, settings: Any, say: Say) -> Fitted:
    x_tr, x_va, x_te = (batch_tensor(parts.images(p), prep) for p in (parts.train, parts.valid, parts.test))
    y_tr, y_va = parts.y["train"], parts.y["valid"]
    net: nn.Module = model
    x_views = None
    if tune != "full":
        # Trunk activations once, training on the cache (see training.cached); cached augmented views of
        # the training images are the augmentation.
        trunk, net = cached.prepare(model, bb, tail_blocks if tune == "last" else 0)
        say("cache-start", {"images": (1 + (views.count if views else 0)) * len(x_tr) + len(x_va) + len(x_te)})
        tick = lambda n: say("cache", {"n": n})  # noqa: E731
        if views:
            x_views = cached.cache_views(trunk, parts.images(parts.train), prep, views, on_batch=tick)
        x_tr, x_va, x_te = (cached.cache_trunk(trunk, x, on_batch=tick) for x in (x_tr, x_va, x_te))
    batches = (len(x_tr) + fit_cfg.batch_size - 1) // fit_cfg.batch_size
    say("fit-start", {"epochs": fit_cfg.epochs, "batches_per_epoch": batches, "tune": tune})
    if workers > 1:
        from training.distributed import fit_distributed

        result = fit_distributed(settings, net, x_tr, y_tr, x_va, y_va, fit_cfg, workers,
                                 x_train_views=x_views, on_epoch=lambda e, row: say("epoch", row))
    else:
        result = fit(net, x_tr, y_tr, x_va, y_va, fit_cfg, on_epoch=lambda e, row: say("epoch", row),
                     on_batch=lambda: say("batch", {}), x_train_views=x_views)
    valid_logits, valid_emb = predict_tensors(net, x_va)
    test_logits, _ = predict_tensors(net, x_te)
    once = first_copies([parts.digest_of[id(it)] for it in parts.valid])
    return Fitted(module=model, cut_probs=softmax(valid_logits)[once], cut_y=y_va.numpy()[once],
                  cut_on=cut_on_words(len(x_va), 1), test_probs=softmax(test_logits), reference=parts.valid,
                  reference_logits=valid_logits, reference_embeddings=valid_emb,
                  valid_accuracy=result.best_valid_accuracy, epochs_run=result.epochs_run, members=1)

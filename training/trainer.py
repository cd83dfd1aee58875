"""The training loop: mini-batches with augmentation, early stopping on validation accuracy, the best
epoch's weights kept. Deterministic for a seed on one machine."""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from training.augment import Augmentation
from training.model import RoomNet


@dataclass(frozen=True)
class FitConfig:
    epochs: int = 10
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.05
    patience: int = 3  # epochs without validation improvement before stopping
    # False: train every epoch and keep the last weights, the validation set only watched: for a member whose
    # validation set is the fold it must predict unseen (training.crossfit), choosing its epoch on that fold
    # would flatter those predictions.
    early_stopping: bool = True
    head_only: bool = False
    seed: int = 0
    augment: bool = True
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)  # the preprocessing's normalisation, for augmentation
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)


@dataclass
class FitResult:
    epochs_run: int
    best_epoch: int
    best_valid_accuracy: float
    history: list[dict[str, float]] = field(default_factory=list)


ProgressFn = Callable[[int, dict[str, float]], None]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def predict_tensors(model: nn.Module, x: torch.Tensor, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Logits and embeddings for a preprocessed tensor set, in eval mode."""
    model.eval()
    logits, embs = [], []
    with torch.inference_mode():
        for i in range(0, len(x), batch_size):
            lo, em = model(x[i:i + batch_size])
            logits.append(lo)
            embs.append(em)
    return torch.cat(logits).numpy(), torch.cat(embs).numpy()


def fit(model: nn.Module, x_train: torch.Tensor, y_train: torch.Tensor, x_valid: torch.Tensor, y_valid: torch.Tensor,
        cfg: FitConfig, on_epoch: ProgressFn | None = None, on_batch: Callable[[], None] | None = None,
        x_train_views: torch.Tensor | None = None) -> FitResult:
    """`model` maps a batch to (logits, embedding): a RoomNet on images, or a cached.TailNet on cached trunk
    activations, whose augmentation is `x_train_views` (N, V, ...): each epoch takes, for every item, one of
    its V + 1 cached versions (the item itself or one of its views) at random."""
    seed_everything(cfg.seed)
    if cfg.head_only and isinstance(model, RoomNet):
        model.freeze_backbone()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, cfg.epochs))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    aug = Augmentation() if cfg.augment else None
    gen = torch.Generator().manual_seed(cfg.seed)
    best_acc, best_epoch, best_state, history = -1.0, 0, None, []
    epoch = 0
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        order = torch.randperm(len(x_train), generator=gen)
        total, n = 0.0, 0
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            xb = x_train[idx]
            if x_train_views is not None:
                pick = torch.randint(x_train_views.shape[1] + 1, (len(idx),), generator=gen)
                viewed = pick > 0
                xb = xb.clone()
                xb[viewed] = x_train_views[idx[viewed], pick[viewed] - 1]
            if aug is not None:
                xb = aug(xb, gen, cfg.mean, cfg.std)
            opt.zero_grad()
            logits, _ = model(xb)
            loss = loss_fn(logits, y_train[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            n += len(idx)
            if on_batch:
                on_batch()
        sched.step()
        logits, _ = predict_tensors(model, x_valid)
        acc = float((logits.argmax(1) == y_valid.numpy()).mean()) if len(y_valid) else 0.0
        row = {"epoch": epoch, "train_loss": total / max(1, n), "valid_accuracy": acc}
        history.append(row)
        if on_epoch:
            on_epoch(epoch, row)
        if not cfg.early_stopping:
            best_acc, best_epoch = acc, epoch
        elif acc > best_acc:
            best_acc, best_epoch, best_state = acc, epoch, copy.deepcopy(model.state_dict())
        elif epoch - best_epoch >= cfg.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return FitResult(epochs_run=epoch, best_epoch=best_epoch, best_valid_accuracy=best_acc, history=history)

"""Data-parallel training with Ray Train: `rollout train --workers N` runs the same fit loop in N
TorchTrainer workers (gloo, CPU), each on its own shard of the training set, gradients averaged by
DistributedDataParallel. The driver then gets the best epoch's weights back and carries on as in a
single-process run (thresholds, export), so the exported model does not depend on how it was trained.

The tensors travel through Ray's object store, so this works on the local Ray and on a cluster whose
workers run the same roomsight install.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from roomsight.config import Settings
from training.trainer import FitConfig, FitResult

CPU_PER_WORKER = 0.5  # fractional: a 2-core machine also runs the Serve replicas on the same Ray


def _worker_loop(config: dict[str, Any]) -> None:
    """Runs in each Ray Train worker."""
    import ray
    import ray.train
    import ray.train.torch

    from training.model import RoomNet
    from training.trainer import FitConfig, fit

    torch.set_num_threads(1)
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    model: nn.Module = ray.get(config["model"])
    x_tr, y_tr, x_va, y_va, views = ray.get(config["tensors"])
    cfg = FitConfig(**config["fit"])
    if cfg.head_only and isinstance(model, RoomNet):
        model.freeze_backbone()  # before DDP wraps it: DDP syncs only what trains
    # Equal shard sizes: every worker must run the same number of steps, or the gradient all-reduce waits forever.
    n = len(x_tr) // world
    shard = torch.arange(rank, n * world, world)
    ddp = ray.train.torch.prepare_model(model, move_to_device=False)

    def on_epoch(_epoch: int, row: dict[str, float]) -> None:
        ray.train.report({**row, "rank": rank})  # a barrier too: workers stay in step

    # Every worker validates the same synchronised weights on the whole validation set, so all reach
    # the same early-stopping decision.
    result = fit(ddp, x_tr[shard], y_tr[shard], x_va, y_va, cfg, on_epoch=on_epoch,
                 x_train_views=None if views is None else views[shard])
    final = {"best_epoch": result.best_epoch, "best_valid_accuracy": result.best_valid_accuracy,
             "epochs_run": result.epochs_run, "history": result.history}
    inner = ddp.module if hasattr(ddp, "module") else ddp
    if rank == 0:
        with tempfile.TemporaryDirectory() as tmp:
            torch.save(inner.state_dict(), Path(tmp) / "model.pt")
            ray.train.report(final, checkpoint=ray.train.Checkpoint.from_directory(tmp))
    else:
        ray.train.report(final)


def fit_distributed(settings: Settings, model: nn.Module, x_tr: torch.Tensor, y_tr: torch.Tensor,
                    x_va: torch.Tensor, y_va: torch.Tensor, cfg: FitConfig, workers: int,
                    x_train_views: torch.Tensor | None = None,
                    on_epoch: Callable[[int, dict[str, float]], None] | None = None) -> FitResult:
    """Train `model` in place with `workers` Ray Train workers; returns what `trainer.fit` would."""
    import ray
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from roomsight.cluster import init_ray

    init_ray(settings)
    # The rank-0 worker writes the checkpoint and the driver reads it: across nodes, that needs storage both reach.
    storage = settings.train_storage
    if "://" not in storage:
        Path(storage).mkdir(parents=True, exist_ok=True)
    trainer = TorchTrainer(
        _worker_loop,
        train_loop_config={"model": ray.put(model), "fit": asdict(cfg),
                           "tensors": ray.put((x_tr, y_tr, x_va, y_va, x_train_views))},
        torch_config=TorchConfig(backend="gloo"),
        scaling_config=ScalingConfig(num_workers=workers, use_gpu=False, resources_per_worker={"CPU": CPU_PER_WORKER}),
        run_config=RunConfig(storage_path=storage),
    )
    result = trainer.fit()
    if result.error:
        raise result.error
    # Ray Train 2 keeps only the metrics reported with a checkpoint: the history travels in the last report.
    m = result.metrics
    history = [{k: float(v) for k, v in row.items()} for row in m["history"]]
    if on_epoch:
        for row in history:
            on_epoch(int(row["epoch"]), row)
    with result.checkpoint.as_directory() as d:
        model.load_state_dict(torch.load(Path(d) / "model.pt", map_location="cpu", weights_only=True))
    return FitResult(epochs_run=int(m["epochs_run"]), best_epoch=int(m["best_epoch"]),
                     best_valid_accuracy=float(m["best_valid_accuracy"]), history=history)

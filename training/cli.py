"""`rollout` commands of the training area: train (and, as they land, labels, evaluate, embed).

Heavy imports happen inside the commands so `rollout --help` stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from roomsight.console import console, friendly

app = typer.Typer()


@app.command()
@friendly
def train(
    ctx: typer.Context,
    data: Optional[Path] = typer.Option(None, "--data", help="Folder with one sub-folder per class, or a CSV manifest "
                                        "(path,label[,caption,region,listing_id,taken_at]). Default: embedded synthetic photos."),
    seed: int = typer.Option(0, "--seed", help="Seed for the split, initialisation and augmentation."),
    backbone: Optional[str] = typer.Option(None, "--backbone", help="tiny_cnn, efficientnet_lite0, resnet18 or resnet50 "
                                           "(default: tiny_cnn on synthetic data, efficientnet_lite0 on real photos)."),
    head_only: bool = typer.Option(False, "--head-only", help="Train only the two-layer head; the backbone stays frozen."),
    no_pretrained: bool = typer.Option(False, "--no-pretrained", help="Start the backbone from random weights (explicitly)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="ImageNet weights file for the backbone."),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help="Most epochs; early stopping may end sooner."),
    resize: str = typer.Option("squish", "--resize", help="Item transform to a square: crop, pad or squish."),
    target_precision: float = typer.Option(0.95, "--target-precision", min=0.5, max=1.0,
                                           help="Per-class thresholds are set for this precision on validation data."),
    label_noise: float = typer.Option(0.0, "--label-noise", min=0.0, max=1.0, hidden=True,
                                      help="Shuffle this share of training labels (makes deliberately worse models)."),
) -> None:
    """Train a room-type classifier and register it as a new MLflow model version."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from training.pipeline import TrainConfig
    from training.pipeline import train as run_train

    settings = ctx.obj.settings
    cfg = TrainConfig(data=data, seed=seed, backbone=backbone, pretrained=not no_pretrained, weights=weights,
                      head_only=head_only, epochs=epochs, resize_mode=resize, target_precision=target_precision,
                      label_noise=label_noise)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        task = progress.add_task("preparing data", total=None)

        def on(event: str, info: dict[str, Any]) -> None:
            if event == "data":
                progress.console.print(f"data: {info['source']} ({info['items']} images)")
            elif event == "skipped":
                progress.console.print(f"[yellow]skipped {info['count']} unreadable image(s):[/]")
                for path, why in info["files"][:20]:
                    progress.console.print(f"  {path}: {why}")
            elif event == "split":
                progress.console.print(f"split: train {info['train']}, valid {info['valid']}, test {info['test']}; "
                                       f"classes: {', '.join(info['classes'])}")
            elif event == "fit-start":
                progress.update(task, description="training", total=info["epochs"] * info["batches_per_epoch"], completed=0)
            elif event == "batch":
                progress.advance(task)
            elif event == "epoch":
                progress.console.print(f"epoch {info['epoch']}: loss {info['train_loss']:.3f}, "
                                       f"valid accuracy {info['valid_accuracy']:.3f}")
            elif event == "evaluated":
                progress.update(task, description="done", total=1, completed=1)

        result = run_train(settings, cfg, progress=on)
    m = result.metrics
    console.print(f"test accuracy {m['test_accuracy']:.3f}; at thresholds: precision {m['test_precision_at_thresholds']:.3f}, "
                  f"coverage {m['test_coverage_at_thresholds']:.3f}")
    if result.registered.became_champion:
        console.print("no champion existed: this version is now [bold]champion[/]")
    console.print(result.registered.ref.uri)

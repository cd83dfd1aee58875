"""`rollout` commands of the training area: train, labels, evaluate, embed.

Heavy imports happen inside the commands so `rollout --help` stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from roomsight.cli_context import of
from roomsight.console import console, friendly
from roomsight.userfiles import check_output_file

app = typer.Typer()


def share(value: float | None) -> str:
    """A precision or coverage for a table; None (over no photos, so undefined) as n/a, not as 0."""
    return "n/a" if value is None else f"{value:.3f}"


@app.command()
@friendly
def train(
    ctx: typer.Context,
    data: Optional[Path] = typer.Option(None, "--data", help="Folder with one sub-folder per class, or a CSV manifest "
                                        "(path,label[,caption,region,listing_id,taken_at]). Default: embedded synthetic photos."),
    seed: int = typer.Option(0, "--seed", help="Seed for the split, initialisation and augmentation."),
    backbone: Optional[str] = typer.Option(None, "--backbone", help="tiny_cnn, efficientnet_lite0, resnet18 or resnet50 "
                                           "(default: tiny_cnn on synthetic data, efficientnet_lite0 on real photos)."),
    head_only: bool = typer.Option(False, "--head-only", help="Train only the two-layer head; the backbone stays frozen "
                                   "(the same as --tune head)."),
    tune: Optional[str] = typer.Option(None, "--tune", help="What trains: head (backbone frozen), last (the backbone's "
                                       "last stages too, on cached activations of the rest) or full. Default: head for "
                                       "pretrained backbones, full otherwise."),
    folds: int = typer.Option(5, "--folds", min=1, help="With --tune head or last: cross-fit this many members on train + "
                              "validation, cut the thresholds on their out-of-fold predictions and export them on one "
                              "shared backbone. 1: one model, thresholds cut on the validation part."),
    no_pretrained: bool = typer.Option(False, "--no-pretrained", help="Start the backbone from random weights (explicitly)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="ImageNet weights file for the backbone."),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help="Most epochs; early stopping may end sooner."),
    resize: str = typer.Option("squish", "--resize", help="Item transform to a square: crop, pad or squish."),
    target_precision: float = typer.Option(0.95, "--target-precision", min=0.5, max=1.0,
                                           help="Per-class thresholds are set for this precision on predictions "
                                           "each made by a model that did not train on the photo: out of fold, "
                                           "or on the validation part when one model is trained."),
    threshold_method: Optional[str] = typer.Option(None, "--threshold-method", help="lcb: where a lower confidence bound "
                                                   "on precision reaches the target; point: where precision itself does. "
                                                   "Default: lcb on real photos, point on the synthetic ones."),
    threshold_confidence: float = typer.Option(0.9, "--threshold-confidence", min=0.5, max=0.999,
                                               help="Confidence of the lower bound (lcb)."),
    workers: int = typer.Option(1, "--workers", min=1, help="Train data-parallel with this many Ray Train workers "
                                "(on the configured Ray: local, or a cluster by address)."),
    allow_always_unsure: bool = typer.Option(False, "--allow-always-unsure", help="Register the model even when no "
                                             "class reaches the target precision, so that it would answer only "
                                             "'unsure' (refused otherwise)."),
    label_noise: float = typer.Option(0.0, "--label-noise", min=0.0, max=1.0, hidden=True,
                                      help="Shuffle this share of training labels (makes deliberately worse models)."),
) -> None:
    """Train a room-type classifier and register it as a new MLflow model version."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from training.pipeline import TrainConfig, check_options
    from training.pipeline import train as run_train

    settings = of(ctx).settings
    cfg = TrainConfig(data=data, seed=seed, backbone=backbone, pretrained=not no_pretrained, weights=weights,
                      head_only=head_only, tune=tune, folds=folds, epochs=epochs, resize_mode=resize,
                      target_precision=target_precision, threshold_method=threshold_method,
                      threshold_confidence=threshold_confidence, workers=workers, label_noise=label_noise,
                      allow_always_unsure=allow_always_unsure)
    check_options(cfg)  # before the progress bar: a mistyped option is the one line the command prints
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
            elif event == "cache-start":
                progress.update(task, description="caching backbone activations", total=info["images"], completed=0)
            elif event == "cache":
                progress.advance(task, info["n"])
            elif event == "fit-start":
                progress.update(task, description=f"training ({info['tune']})",
                                total=info["epochs"] * info["batches_per_epoch"], completed=0)
            elif event == "batch":
                progress.advance(task)
            elif event == "epoch":
                progress.console.print(f"epoch {info['epoch']}: loss {info['train_loss']:.3f}, "
                                       f"valid accuracy {info['valid_accuracy']:.3f}")
            elif event == "fold":
                progress.console.print(f"member {info['fold'] + 1} done after {info['epochs']} epochs: "
                                       f"accuracy on its held-out fold {info['valid_accuracy']:.3f}")
            elif event == "evaluated":
                progress.update(task, description="done", total=1, completed=1)

        result = run_train(settings, cfg, progress=on)
    m, th = result.metrics, result.thresholding
    console.print(f"thresholds: {th['described']}; they answer {th['coverage_cut_on']:.1%} of those photos")
    if len(th["abstaining"]) == len(result.classes):
        console.print(f"[bold red]warning:[/] no class reaches {th['target']:.2f} precision: this model answers only "
                      "'unsure' (registered because of --allow-always-unsure)")
    elif th["abstaining"]:
        console.print(f"[yellow]always unsure (no threshold reaches {th['target']:.2f} precision): "
                      f"{', '.join(th['abstaining'])}[/]")
    console.print(f"test accuracy {m['test_accuracy']:.3f}; at thresholds: precision "
                  f"{share(m['test_precision_at_thresholds'])}, coverage {m['test_coverage_at_thresholds']:.3f}")
    if result.registered.became_champion:
        console.print("no champion existed: this version is now [bold]champion[/]")
    console.print(result.registered.ref.uri)


@app.command()
@friendly
def labels(
    captions: Path = typer.Option(..., "--captions", help="CSV with a `caption` column; other columns pass through."),
    out: Path = typer.Option(..., "--out", help="Output CSV: the input columns plus `label` (empty where the rules abstain)."),
    rules: Optional[Path] = typer.Option(None, "--rules", help="Caption rules YAML (default: the shipped training/rules/default.yaml)."),
    gold: Optional[Path] = typer.Option(None, "--gold", help="CSV with known labels (`label`, joined on `path` if both "
                                        "files have one, else row by row; a label none of the rules' classes, e.g. `other`, counts as wrong when "
                                        "labelled): report precision and coverage per class and which rule fired on what."),
) -> None:
    """Label photos from their captions with keyword rules; ambiguous or unmatched captions stay unlabelled."""
    from rich.table import Table

    from training.labels import label_csv, load_rules

    check_output_file(out, "--out", ".csv")  # as review export's: a folder was refused as "FOLDER: Is a directory"
    result = label_csv(captions, out, load_rules(rules), gold)
    console.print(f"labelled {result.labelled} of {result.rows} captions "
                  f"({result.labelled / max(1, result.rows):.0%}); the rest abstained -> {out}")
    if result.report is not None:
        rep = result.report
        table = Table("class", "precision", "coverage", "labelled", "known", title="rules against known labels")
        for c, s in rep.per_class.items():
            table.add_row(c, share(s.precision), share(s.coverage), str(s.labelled), str(s.support))
        table.add_row("[bold]all[/]", share(rep.precision), f"{share(rep.coverage)} of {rep.n_classes} room captions",
                      str(sum(s.labelled for s in rep.per_class.values())), str(rep.n))
        console.print(table)
        rules_table = Table("rule", "fired", "correct", "by keyword (fired/correct)", "refused (why)",
                            title="which rule fired")
        for c, r in rep.per_rule.items():
            rules_table.add_row(c, str(r.fired), str(r.correct),
                                ", ".join(f"{k} {f}/{ok}" for k, (f, ok) in r.by_keyword.items()),
                                ", ".join(f"{why} ({n})" for why, n in r.refused.items()))
        console.print(rules_table)
        console.print("abstained: " + (", ".join(f"{why} ({n})" for why, n in rep.abstained.items()) or "none"))


def _progress():  # noqa: ANN202 - rich.progress.Progress, imported lazily
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    # Off a terminal the transient bar shows nothing, and Rich still ended it with a blank line: the first line
    # `evaluate` and `embed` printed to a pipe or a file.
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=True, disable=not console.is_interactive)


def _load(ctx: typer.Context, uri: str):  # noqa: ANN202 - roomsight.modelpack.ModelPack
    from roomsight import registry

    return registry.load(of(ctx).settings, uri)


def _count_items(source: Path) -> int:
    from training.data import load_manifest

    return len(load_manifest(source))


@app.command()
@friendly
def evaluate(
    ctx: typer.Context,
    model: str = typer.Option(..., "--model", help="Registered model: models:/roomtype/N or models:/roomtype@alias."),
    data: Path = typer.Option(..., "--data", help="Labelled images: a folder with one sub-folder per class, or a CSV manifest."),
    json_out: Path = typer.Option(Path("evaluation.json"), "--json", help="Report file; the confusion matrix (PNG, JSON) "
                                  "and precision-recall curves (PNG) are written next to it."),
    target_precision: float = typer.Option(0.95, "--target-precision", min=0.5, max=1.0,
                                           help="Per-class thresholds are chosen for this precision on a validation part of the data."),
    threshold_method: str = typer.Option("lcb", "--threshold-method", help="lcb: where a lower confidence bound on "
                                         "precision reaches the target; point: where precision itself does."),
    threshold_confidence: float = typer.Option(0.9, "--threshold-confidence", min=0.5, max=0.999,
                                               help="Confidence of the lower bound (lcb)."),
    valid_share: float = typer.Option(0.3, "--valid-share", min=0.05, max=0.9,
                                      help="Share of the data (seeded, stratified) used only to choose thresholds."),
    seed: int = typer.Option(0, "--seed", help="Seed of the validation/test split."),
) -> None:
    """Accuracy, confusion matrix, precision-recall curves and thresholds at a target precision; warns when
    the photos are ones the model trained on."""
    from rich.table import Table

    from training.evaluate import evaluate as run_evaluate

    check_output_file(json_out, "--json", ".json")
    from training.thresholds import METHODS

    if threshold_method not in METHODS:
        raise typer.BadParameter(f"choose one of {', '.join(METHODS)}", param_hint="--threshold-method")
    pack = _load(ctx, model)
    with _progress() as progress:
        task = progress.add_task("predicting", total=_count_items(data))
        result = run_evaluate(pack, data, json_out, target_precision=target_precision, valid_share=valid_share,
                              seed=seed, method=threshold_method, confidence=threshold_confidence,  # type: ignore[arg-type]
                              on_batch=lambda n: progress.advance(task, n))
    rep = result.report
    if result.skipped:
        console.print(f"[yellow]skipped {len(result.skipped)} unreadable image(s)[/]")
    table = Table("class", "precision", "recall", "threshold", "AP", "support",
                  title=f"at {target_precision:.2f} target precision (test part: {rep['n_test']} images)")
    for c, s in rep["per_class"].items():
        table.add_row(c, share(s["precision"]), share(s["recall"]), f"{s['threshold']:.3f}", share(s["ap"]),
                      str(s["support"]))
    console.print(table)
    th, exported = rep["thresholding"], rep["as_exported"]
    console.print(f"thresholds: {th['described']}")
    if th["abstaining"]:
        console.print(f"[yellow]always unsure (no threshold reaches {target_precision:.2f} precision): "
                      f"{', '.join(th['abstaining'])}[/]")
    console.print(f"accuracy {rep['accuracy']:.3f}; answered {rep['coverage']:.1%} at these thresholds, "
                  f"precision {share(rep['accuracy_at_thresholds'])}")
    console.print(f"as exported ({exported['thresholding']}): answered {exported['coverage']:.1%}, "
                  f"precision {share(exported['precision'])}")
    if exported["abstaining"]:
        console.print(f"[yellow]as exported, always unsure: {', '.join(exported['abstaining'])}[/]")
    warn_seen(rep["seen_in_training"], pack.meta.metrics.get("test_accuracy"))
    for f in result.files.values():
        console.print(f"wrote {f}")


def warn_seen(seen: dict[str, Any] | None, test_accuracy: float | None) -> None:
    """Say so when the photos are ones the model trained on: the figures above would pass for new photos'."""
    if seen is None or seen["photos"] == 0:
        return
    which = (f"{seen['photos']} of these {seen['of']} photos are ones the model trained on (or cut its "
             f"thresholds on)" if seen["photos"] is not None else
             "this is the data the model was trained on (the same manifest hash): most of its photos are ones "
             "it trained on")
    on_new = f" (its accuracy on its own test part: {test_accuracy:.3f})" if test_accuracy is not None else ""
    console.print(f"[bold yellow]warning:[/] {which}, so these figures overstate how it does on new photos"
                  f"{on_new}; evaluate on photos it has not seen")


@app.command()
@friendly
def embed(
    ctx: typer.Context,
    model: str = typer.Option(..., "--model", help="Registered model: models:/roomtype/N or models:/roomtype@alias."),
    data: Path = typer.Option(..., "--data", help="Labelled images: a folder with one sub-folder per class, or a CSV manifest."),
    out: Path = typer.Option(Path("pca.png"), "--out", help="Where to write the scatter plot (PNG)."),
) -> None:
    """PCA of the model's embeddings: a 2-D scatter of the images, coloured by label."""
    from training.embedview import embed_plot

    check_output_file(out, "--out", ".png")
    pack = _load(ctx, model)
    with _progress() as progress:
        task = progress.add_task("embedding", total=_count_items(data))
        info = embed_plot(pack, data, out, on_batch=lambda n: progress.advance(task, n))
    console.print(f"{info['n']} images; PC1+PC2 explain {sum(info['explained']):.0%} of the variance -> {out}")

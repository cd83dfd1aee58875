"""`rollout evaluate`: a registered model on a labelled dataset. Thresholds for the target precision are
chosen on a seeded, stratified validation part of that dataset (training.thresholds: by default where a
lower confidence bound on precision reaches the target) and everything is reported on the rest, never on
the items the thresholds were chosen on; so are the thresholds the model was exported with, as it would
answer. Photos the model trained on are counted (`seen_in_training`) so that a report on them is not
mistaken for one on new photos. Writes the JSON report, the confusion matrix (PNG and JSON) and per-class
precision-recall curves (PNG)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from roomsight.errors import DataError
from roomsight.modelpack import UNSURE, ModelPack, PackMeta, softmax
from roomsight.preprocess import batch_tensor
from training import data
from training.thresholds import Method, apply_thresholds, describe_method, thresholds_at_precision

BATCH = 32


@dataclass
class Predicted:
    items: list[data.Item]
    logits: np.ndarray
    embeddings: np.ndarray
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)  # of the items, in order (data.photo_digest)


def predict_items(pack: ModelPack, items: list[data.Item], on_batch: Any = None) -> Predicted:
    """Logits and embeddings of every readable item, decoded a batch at a time to bound memory."""
    kept, logits, embs, skipped, digests = [], [], [], [], []
    for i in range(0, len(items), BATCH):
        loaded = data.load_images(items[i:i + BATCH])
        skipped += loaded.skipped
        if loaded.images:
            lo, em = pack.forward(batch_tensor(loaded.images, pack.meta.preprocessing))
            kept += loaded.items
            digests += loaded.digests
            logits.append(lo)
            embs.append(em)
        if on_batch:
            on_batch(len(items[i:i + BATCH]))
    if not kept:
        raise DataError("none of the images could be read")
    return Predicted(kept, np.concatenate(logits), np.concatenate(embs), skipped, digests)


@dataclass
class Evaluation:
    report: dict[str, Any]
    files: dict[str, Path]
    skipped: list[tuple[Path, str]]


def evaluate(pack: ModelPack, source: Path, out_json: Path, *, target_precision: float = 0.95,
             valid_share: float = 0.3, seed: int = 0, method: Method = "lcb", confidence: float = 0.9,
             on_batch: Any = None) -> Evaluation:
    items = data.load_manifest(source)
    classes = pack.classes
    unknown = sorted({i.label for i in items} - set(classes))
    if unknown:
        raise DataError(f"labels the model does not know: {', '.join(unknown)} (model classes: {', '.join(classes)}); "
                             "relabel or drop those items")
    # One part cuts the thresholds, the other measures them. One class is enough: a gold set of kitchens
    # alone asks the model a fair question, so this is not training's check.
    data.check_splittable(items)
    pred = predict_items(pack, items, on_batch)
    probs = softmax(pred.logits)
    index = {c: k for k, c in enumerate(classes)}
    y = np.asarray([index[i.label] for i in pred.items])

    # Thresholds from one seeded part, measurements on the other: choosing and measuring on the same
    # items would report the target precision whether or not the model generalises.
    parts = data.split(pred.items, seed=seed, valid=valid_share, test=0.0, digests=pred.digests)
    pos = {id(it): k for k, it in enumerate(pred.items)}
    v_idx = np.asarray([pos[id(it)] for it in parts.valid])
    v_idx = v_idx[data.first_copies([pred.digests[k] for k in v_idx])]
    t_idx = np.asarray([pos[id(it)] for it in parts.train])
    if len(t_idx) == 0:
        raise DataError(f"{source}: too few images to keep a validation part apart from the test part")
    chosen = thresholds_at_precision(probs[v_idx], y[v_idx], classes, target_precision, method=method,
                                     confidence=confidence)
    thresholds = {c: t.threshold for c, t in chosen.items()}

    pt, yt = probs[t_idx], y[t_idx]
    decided = apply_thresholds(pt, classes, thresholds)
    report = build_report(pt, yt, decided, classes, thresholds)
    exported = apply_thresholds(pt, classes, pack.meta.thresholds)
    said = exported >= 0
    # Per class, as the answer contract is: an overall precision can hide a class that falls short of it.
    per_class_exported = {c: {"answered": int((exported == k).sum()),
                              "precision": float((yt[exported == k] == k).mean()) if (exported == k).any() else None}
                          for k, c in enumerate(classes)}
    report.update({
        "target_precision": target_precision, "n_valid": int(len(v_idx)), "n_test": int(len(t_idx)),
        "skipped": len(pred.skipped), "data": str(source), "seed": seed,
        "seen_in_training": seen_in_training(pack.meta, items, pred.digests),
        "thresholding": {"method": method, "confidence": confidence,
                         "described": describe_method(method, target_precision, confidence,
                                                      f"the {len(v_idx)} photos of the validation part"),
                         "abstaining": [c for c, t in chosen.items() if not t.reached],
                         "per_class": {c: t.to_dict() for c, t in chosen.items()}},
        # The model's own thresholds, as it answers in serving, on the same test part.
        "as_exported": {"thresholding": pack.meta.thresholding.get("described", "not recorded (an older model)"),
                        "coverage": float(said.mean()),
                        "precision": float((exported[said] == yt[said]).mean()) if said.any() else None,
                        "abstaining": exported_abstaining(pack.meta),
                        "per_class": per_class_exported},
    })

    out_json.parent.mkdir(parents=True, exist_ok=True)
    stem = out_json.with_suffix("")
    files = {"json": out_json, "confusion_json": Path(f"{stem}.confusion.json"),
             "confusion_png": Path(f"{stem}.confusion.png"), "pr_png": Path(f"{stem}.pr.png")}
    out_json.write_text(json.dumps(report, indent=1))
    files["confusion_json"].write_text(json.dumps(report["confusion"], indent=1))
    plot_confusion(report["confusion"], files["confusion_png"])
    plot_pr(pt, yt, classes, report["per_class"], files["pr_png"])
    return Evaluation(report, files, pred.skipped)


def exported_abstaining(meta: PackMeta) -> list[str]:
    """The classes the model as exported never names: a threshold above every probability, or none."""
    return [c for c in meta.classes if not meta.thresholds.get(c, math.inf) <= 1.0]


def seen_in_training(meta: PackMeta, listed: list[data.Item], evaluated: list[str]) -> dict[str, Any] | None:
    """How many of the evaluated photos the model trained on or cut its thresholds on: its figures on
    those overstate how it does on new photos. `photos` is None for a model that did not record its
    photos, evaluated on data with its manifest hash (its own folder, but which photos of it went to the
    test part is not known); the whole is None when nothing can be told."""
    if meta.trained_on:
        known = set(meta.trained_on)
        return {"photos": sum(d in known for d in evaluated), "of": len(evaluated)}
    if meta.data_sha256 and meta.data_sha256 == data.manifest_hash(listed):
        return {"photos": None, "of": len(evaluated)}
    return None


def build_report(probs: np.ndarray, y: np.ndarray, decided: np.ndarray, classes: list[str],
                 thresholds: dict[str, float]) -> dict[str, Any]:
    """Accuracy (top class), per-class precision/recall at the thresholds, AP, and the confusion matrix
    with an `unsure` column for the answers the thresholds withheld. A precision over no answers is None
    (null in the JSON): a class that always answers "unsure" is never wrong, nor right. So are a recall and
    an AP over no photos of the class: 0 would read as a class the model never finds."""
    from sklearn.metrics import average_precision_score

    per_class = {}
    for k, c in enumerate(classes):
        said = decided == k
        truth = y == k
        tp = int((said & truth).sum())
        ap = float(average_precision_score(truth, probs[:, k])) if truth.any() else None
        per_class[c] = {"precision": tp / int(said.sum()) if said.any() else None,
                        "recall": tp / int(truth.sum()) if truth.any() else None,
                        "threshold": float(thresholds[c]), "ap": ap, "support": int(truth.sum())}
    labels = [*classes, UNSURE]
    matrix = np.zeros((len(labels), len(labels)), dtype=int)
    for t, d in zip(y, decided):
        matrix[t, d if d >= 0 else len(classes)] += 1
    answered = decided >= 0
    return {"accuracy": float((probs.argmax(1) == y).mean()),
            "coverage": float(answered.mean()),
            "accuracy_at_thresholds": float((decided[answered] == y[answered]).mean()) if answered.any() else None,
            "per_class": per_class, "confusion": {"labels": labels, "matrix": matrix.tolist()}}


def plot_confusion(confusion: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, m = confusion["labels"], np.asarray(confusion["matrix"])
    rows = len(labels) - 1  # the `unsure` row is empty by construction: nothing is truly "unsure"
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * len(labels), 0.8 + 0.6 * rows))
    ax.imshow(m[:rows], cmap="Blues")
    for i in range(rows):
        for j in range(len(labels)):
            ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if m[i, j] > m[:rows].max() / 2 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(rows), labels[:rows])
    ax.set_xlabel("predicted (at thresholds)")
    ax.set_ylabel("true")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_pr(probs: np.ndarray, y: np.ndarray, classes: list[str], per_class: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve

    fig, ax = plt.subplots(figsize=(7, 5))
    for k, c in enumerate(classes):
        truth = y == k
        if not truth.any():
            continue
        prec, rec, _ = precision_recall_curve(truth, probs[:, k])
        line, = ax.plot(rec, prec, label=f"{c} (AP {per_class[c]['ap']:.2f})")
        if per_class[c]["precision"] is not None:  # a class that answers nothing has no point on its curve
            ax.plot([per_class[c]["recall"]], [per_class[c]["precision"]], "o", color=line.get_color())
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_ylim(0, 1.02)
    ax.set_title("precision-recall per class (dot: at the chosen threshold)")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

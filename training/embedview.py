"""`rollout embed`: the seed's PCA view of a model's embeddings, a 2-D scatter coloured by label, to see
at a glance which classes the model keeps apart and which it mixes up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from roomsight.modelpack import ModelPack
from training import data
from training.evaluate import predict_items


def pca_2d(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Projection on the first two principal components, and the share of variance each explains."""
    centred = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    var = s ** 2
    return centred @ vt[:2].T, var[:2] / var.sum() if var.sum() else np.zeros(2)


def embed_plot(pack: ModelPack, source: Path, out: Path, on_batch: Any = None) -> dict[str, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pred = predict_items(pack, data.load_manifest(source), on_batch)
    points, explained = pca_2d(pred.embeddings.astype(np.float64))
    labels = [it.label for it in pred.items]
    fig, ax = plt.subplots(figsize=(7, 6))
    for label in sorted(set(labels)):
        mask = np.asarray([lab == label for lab in labels])
        ax.scatter(points[mask, 0], points[mask, 1], s=10, alpha=0.7, label=label)
    ax.set_xlabel(f"PC1 ({explained[0]:.0%} of variance)")
    ax.set_ylabel(f"PC2 ({explained[1]:.0%} of variance)")
    ax.set_title(f"embeddings of {len(labels)} images, model version {pack.version or '?'}")
    ax.legend(fontsize=8, markerscale=2)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return {"out": out, "n": len(labels), "explained": explained.tolist(), "skipped": pred.skipped}

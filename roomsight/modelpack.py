"""The exported-model format: what `training` writes to MLflow and `serving` loads, without either
importing the other.

A pack is a directory with
  model.pt2  a torch.export program: normalised NCHW float batch (any batch size) -> (logits, embedding)
  meta.json  classes, preprocessing, per-class thresholds, reference statistics, metrics, data hash,
             content hashes of the photos it trained on
The exported program carries the architecture with the weights, so loading needs no backbone code
(and TorchScript, the older way to do this, is deprecated).
"""

from __future__ import annotations

import copy
import json
import math
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import mlflow.pyfunc
import numpy as np
import pandas as pd
import torch
from PIL import Image

from roomsight.errors import PackError, first_line
from roomsight.images import SERVE_MAX_SIDE, decode_image
from roomsight.preprocess import Preprocessing, batch_tensor
from roomsight.verdicts import UNSURE

MODEL_FILE = "model.pt2"
META_FILE = "meta.json"


@dataclass
class PackMeta:
    classes: list[str]
    preprocessing: Preprocessing
    thresholds: dict[str, float] = field(default_factory=dict)  # below it the answer is "unsure"
    backbone: str = ""
    reference: dict[str, Any] = field(default_factory=dict)  # monitoring's reference statistics
    metrics: dict[str, Any] = field(default_factory=dict)
    data_sha256: str = ""
    # How the thresholds were chosen and what they leave: method, target, confidence, the data they were
    # cut on, per class the threshold's precision, its lower bound, recall, whether it abstains.
    thresholding: dict[str, Any] = field(default_factory=dict)
    # Sorted content hashes (training.data.photo_digest) of the photos training saw: its training and
    # validation parts, not its test part. Empty for models exported before they were recorded.
    trained_on: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"classes": self.classes, "preprocessing": self.preprocessing.to_dict(),
                "thresholds": self.thresholds, "backbone": self.backbone, "reference": self.reference,
                "metrics": self.metrics, "data_sha256": self.data_sha256, "thresholding": self.thresholding,
                "trained_on": self.trained_on}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PackMeta:
        return cls(classes=list(d["classes"]), preprocessing=Preprocessing.from_dict(d["preprocessing"]),
                   thresholds={k: float(v) for k, v in d.get("thresholds", {}).items()},
                   backbone=d.get("backbone", ""), reference=d.get("reference", {}),
                   metrics=d.get("metrics", {}), data_sha256=d.get("data_sha256", ""),
                   thresholding=d.get("thresholding", {}), trained_on=list(d.get("trained_on", [])))


@dataclass(frozen=True)
class Output:
    """One image's answer from one model."""

    label: str  # a class, or "unsure" below that class's threshold
    top_class: str  # the argmax class, whatever the threshold
    score: float  # probability of top_class
    probs: dict[str, float]
    logits: np.ndarray
    embedding: np.ndarray


class ModelPack:
    """A loaded model: preprocessing + network + thresholds."""

    def __init__(self, module: torch.nn.Module, meta: PackMeta, version: str = "") -> None:
        self.module = module
        self.meta = meta
        self.version = version
        # Serving calls from one event loop; the lock keeps ad-hoc multi-threaded callers from
        # interleaving forward passes on the same module.
        self._lock = threading.Lock()

    @property
    def classes(self) -> list[str]:
        return self.meta.classes

    def forward(self, batch: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        with self._lock, torch.inference_mode():
            logits, emb = self.module(batch)
        return logits.float().numpy(), emb.float().numpy()

    def with_checkpoint(self, checkpoint: Callable[[], None]) -> ModelPack:
        """The same model, calling `checkpoint()` before every convolution of its forward pass: a place
        where the caller may pause it (serving.yielding). The weights are shared, the graph is a copy.
        A network with no convolution gets no checkpoint."""
        graph = copy.deepcopy(self.module.graph)
        for node in list(graph.nodes):
            if node.op == "call_function" and "conv" in str(node.target):
                with graph.inserting_before(node):
                    graph.call_function(checkpoint, ())
        return ModelPack(torch.fx.GraphModule(self.module, graph), self.meta, version=self.version)

    def label_for(self, probs: np.ndarray) -> tuple[str, str, float]:
        top = int(np.argmax(probs))
        cls = self.classes[top]
        score = float(probs[top])
        # A class without a threshold has no cut vouching for its answers: it abstains, never answers freely.
        label = cls if score >= self.meta.thresholds.get(cls, math.inf) else UNSURE
        return label, cls, score

    def predict(self, images: list[Image.Image]) -> list[Output]:
        if not images:
            return []
        logits, emb = self.forward(batch_tensor(images, self.meta.preprocessing))
        probs = softmax(logits)
        outs = []
        for i in range(len(images)):
            label, cls, score = self.label_for(probs[i])
            outs.append(Output(label=label, top_class=cls, score=score,
                               probs={c: float(p) for c, p in zip(self.classes, probs[i])},
                               logits=logits[i], embedding=emb[i]))
        return outs


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def save_pack(directory: Path, module: torch.nn.Module, meta: PackMeta, example: torch.Tensor) -> Path:
    """Export `module` (returning (logits, embedding)) with a dynamic batch size and write the pack."""
    from torch.export import Dim, export

    directory.mkdir(parents=True, exist_ok=True)
    module = module.eval()
    batch = Dim("batch", min=1, max=4096)
    with torch.no_grad():
        program = export(module, (example,), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(directory / MODEL_FILE))
    (directory / META_FILE).write_text(json.dumps(meta.to_dict(), indent=1, sort_keys=True))
    return directory


def read_meta(directory: Path, source: str | None = None) -> PackMeta:
    """The pack's meta.json; `source` (a models:/ URI) names the pack in errors instead of its folder."""
    where = source or str(directory)
    try:
        return PackMeta.from_dict(json.loads((directory / META_FILE).read_text()))
    except FileNotFoundError:
        raise PackError(f"cannot load {where}: its {META_FILE} is missing from the artifact store") from None
    except KeyError as exc:
        raise PackError(f"cannot load {where}: its {META_FILE} has no {exc}") from None
    except (ValueError, TypeError, AttributeError) as exc:
        raise PackError(f"cannot load {where}: its {META_FILE} is damaged ({first_line(exc)})") from None


def load_pack(directory: Path | str, version: str = "", source: str | None = None) -> ModelPack:
    """The pack in `directory`; `source` as for read_meta. The files can go once it returns."""
    directory = Path(directory)
    meta = read_meta(directory, source)
    where = source or str(directory)
    if not (directory / MODEL_FILE).is_file():
        raise PackError(f"cannot load {where}: its {MODEL_FILE} is missing from the artifact store")
    if not zipfile.is_zipfile(directory / MODEL_FILE):  # torch would log a page of traceback before failing
        raise PackError(f"cannot load {where}: its {MODEL_FILE} is damaged (not a complete archive)")
    try:
        module = torch.export.load(str(directory / MODEL_FILE)).module()
    except Exception as exc:  # a damaged file fails in torch's zip, pickle or schema checks alike
        raise PackError(f"cannot load {where}: its {MODEL_FILE} is damaged ({type(exc).__name__}: {first_line(exc)})") from None
    width = _score_width(module)
    # A meta.json from another pack would name each score after the wrong class, and every answer with it.
    if width is not None and width != len(meta.classes):
        raise PackError(f"cannot load {where}: its {META_FILE} names {len(meta.classes)} classes but its {MODEL_FILE} "
                        f"gives {width} scores per photo")
    return ModelPack(module, meta, version=version)


def _score_width(module: torch.nn.Module) -> int | None:
    """How many scores per photo the exported graph gives (its first output's last dimension, as export
    recorded it); None when the graph does not say."""
    outputs = [n for n in module.graph.nodes if n.op == "output"]
    try:
        return int(outputs[0].args[0][0].meta["val"].shape[-1])
    except (IndexError, KeyError, TypeError, AttributeError):
        return None


class RoomTypeModel(mlflow.pyfunc.PythonModel):
    """The MLflow pyfunc wrapper: lets `mlflow.pyfunc.load_model(uri)` hand back a ModelPack, and
    answers pyfunc predict() for a DataFrame with an `image` column of encoded bytes."""

    def load_context(self, context) -> None:  # noqa: ANN001 - mlflow's PythonModelContext
        self.pack = load_pack(context.artifacts["pack"])

    # A DataFrame hint tells MLflow to skip its schema inference: the `image` column holds encoded bytes,
    # which its schema types cannot describe. Without a hint MLflow warns each time a model is logged.
    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:  # noqa: ANN001
        # Decoded as serving decodes an upload, so a tool using the pyfunc gets the answers serving gives.
        images = [decode_image(b, max_side=SERVE_MAX_SIDE).image for b in model_input["image"]]
        outs = self.pack.predict(images)
        return pd.DataFrame({"label": [o.label for o in outs], "score": [o.score for o in outs]})

"""Export: one MLflow model version per training run, holding the exported program (weights and architecture), class list,
preprocessing, thresholds, monitoring reference statistics, metrics, the data manifest's hash and which photos
it trained on."""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from roomsight import registry
from roomsight.config import Settings
from roomsight.modelpack import PackMeta, RoomTypeModel, save_pack
from roomsight.registry import CHAMPION, ModelRef

# What a fresh process needs to load the pyfunc; stated, because inferring it loads the model again.
_PIP_REQUIREMENTS = [f"torch=={torch.__version__.split('+')[0]}", "pillow", "numpy", "pandas", "roomsight"]


@dataclass(frozen=True)
class Registered:
    ref: ModelRef
    run_id: str
    became_champion: bool


def export_and_register(settings: Settings, module: torch.nn.Module, meta: PackMeta, example: torch.Tensor,
                        params: dict[str, Any], metrics: dict[str, float | None]) -> Registered:
    import mlflow

    registry.configure(settings)
    exp_id = registry.ensure_experiment(settings, registry.TRAINING_EXPERIMENT)
    with tempfile.TemporaryDirectory(prefix="roomsight-pack-") as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # export's notes on specialised shapes
            pack_dir = save_pack(Path(tmp) / "pack", module, meta, example)
        with mlflow.start_run(experiment_id=exp_id) as run:
            mlflow.log_params({k: str(v) for k, v in params.items()})
            # MLflow has no null: a metric that is undefined (a precision over no answers) is left out.
            mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None})
            mlflow.set_tag("data_sha256", meta.data_sha256)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # advice about type hints and cloudpickle, not problems
                info = mlflow.pyfunc.log_model(
                    name="model", python_model=RoomTypeModel(), artifacts={"pack": str(pack_dir)},
                    registered_model_name=settings.model_name, pip_requirements=_PIP_REQUIREMENTS,
                )
    ref = ModelRef(settings.model_name, str(info.registered_model_version))
    registry.set_version_tags(ref, {"classes": ",".join(meta.classes), "backbone": meta.backbone,
                                    "data_sha256": meta.data_sha256, "stage": "registered"})
    became = False
    if registry.alias_version(settings.model_name, CHAMPION) is None:
        # The first model registered while nothing is live becomes the champion: there is nothing to
        # roll out against, so no rollout is needed.
        registry.set_alias(ref, CHAMPION)
        registry.set_version_tags(ref, {"stage": "champion"})
        became = True
    return Registered(ref=ref, run_id=run.info.run_id, became_champion=became)

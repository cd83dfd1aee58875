"""Model replicas: a Ray Serve deployment that loads registered versions by MLflow URI and answers
batches of images.

A replica is told which version to run on every call (the ingress decides, from the rollout state),
and keeps the last few versions loaded. So a promotion needs no redeploy: the next call names the
new version, the replica loads it once, and traffic never stops.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np
from PIL import Image
from ray import serve

from monitoring.reference import model_descriptors
from roomsight.config import Settings
from roomsight.errors import BadAnswer
from roomsight.images import decode_upload
from roomsight.registry import ModelRef
from roomsight.verdicts import UNSURE
from serving.priority import current_priority, set_priority
from serving.yielding import NodeActivity, Yielder, signal_dir

_KEEP_LOADED = 2  # current + previous version: a rollback answers without a reload


@dataclass(frozen=True)
class ModelAnswer:
    """One model's output for one image, as it crosses from a model replica to the ingress."""

    version: str
    label: str
    top_class: str
    score: float
    probs: dict[str, float]
    ms: float  # model time for the batch this image was in
    model_scores: dict[str, float]  # model-side OOD inputs (max softmax, energy, embedding distance)


def check_answer(answer: object) -> ModelAnswer:
    """The answer as the ingress may use it, or BadAnswer: a broken model (a bad export, a replica in a
    bad state) must fail like an exception, which the ingress handles, not leak garbage to a client."""
    if not isinstance(answer, ModelAnswer):
        raise BadAnswer(f"the model answered a {type(answer).__name__}, not a ModelAnswer")
    probs = answer.probs
    if not (isinstance(probs, dict) and probs and all(isinstance(v, Real) and math.isfinite(v) for v in probs.values())):
        raise BadAnswer("the model's class probabilities are missing or not finite")
    if not (isinstance(answer.score, Real) and 0.0 <= answer.score <= 1.0):
        raise BadAnswer(f"the model's score is not a probability: {answer.score!r}")
    if answer.top_class not in probs or answer.label not in (answer.top_class, UNSURE):
        raise BadAnswer("the model's label is not one of its classes")
    return answer


class ModelServer:
    """Deployment class; `build_app` binds it twice, as `champion` and `candidate`."""

    def __init__(self, role: str, settings: dict[str, Any]) -> None:
        from roomsight import registry

        self.role = role
        self.settings = Settings.model_validate(settings)
        registry.configure(self.settings)
        self._registry = registry
        self._packs: OrderedDict[str, Any] = OrderedDict()
        self._load_lock = asyncio.Lock()
        self._priority = "normal"
        s = self.settings.serve
        # While this replica only shadows (idle priority), its forward passes step aside for answering work.
        self._yielder = Yielder(NodeActivity(signal_dir(self.settings.home)), s.shadow_yield_max_s) if s.shadow_yield else None
        self._yielding: dict[str, Any] = {}  # per version: its pack with checkpoints, built on first use
        import torch

        # Fractional-CPU replicas share the cores: few intra-op threads each avoids oversubscription.
        torch.set_num_threads(self.settings.serve.torch_threads)
        self._batched.set_max_batch_size(self.settings.serve.max_batch_size)
        self._batched.set_batch_wait_timeout_s(self.settings.serve.batch_wait_timeout_s)

    async def _pack(self, ref: ModelRef):  # noqa: ANN202 - ModelPack
        key = ref.uri
        if key in self._packs:
            self._packs.move_to_end(key)
            return self._packs[key]
        async with self._load_lock:
            if key not in self._packs:
                pack = await asyncio.to_thread(self._registry.load_model, ref)
                self._packs[key] = pack
                while len(self._packs) > _KEEP_LOADED:
                    evicted, _ = self._packs.popitem(last=False)
                    self._yielding.pop(evicted, None)
        return self._packs[key]

    async def warm(self, ref: dict[str, str]) -> str:
        """Load a version ahead of its first request (called when the rollout state changes)."""
        pack = await self._pack(ModelRef.from_dict(ref))
        return pack.version

    async def reference(self, ref: dict[str, str]) -> dict[str, Any]:
        """The version's reference statistics (monitoring calibrates its out-of-domain flags on them)."""
        return (await self._pack(ModelRef.from_dict(ref))).meta.reference

    async def predict(self, ref: dict[str, str], image: np.ndarray | bytes, priority: str = "normal") -> ModelAnswer:
        """`image`: RGB pixels, or the upload's bytes, which this replica decodes exactly as the ingress
        did. `priority` (serving.routing.call_priority) comes with every call rather than once per stage
        change, so a restarted replica takes the right one from its first request."""
        if priority != self._priority:
            self._priority = priority  # recorded even if refused: one attempt per change, not per call
            set_priority(priority)  # type: ignore[arg-type]
        return await self._batched(ref["name"] + "/" + ref["version"], picture(image, self.settings))

    async def predict_many(self, ref: dict[str, str], images: list[np.ndarray | bytes],
                           priority: str = "normal") -> list[ModelAnswer]:
        """Several images in one call (a shadow batch): one hop through the ingress instead of one each.
        They go through `predict`, so they batch on the model as any other calls do."""
        return list(await asyncio.gather(*(self.predict(ref, image, priority) for image in images)))

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.005)
    async def _batched(self, keys: list[str], images: list[Image.Image]) -> list[ModelAnswer]:
        answers: list[ModelAnswer | None] = [None] * len(keys)
        # A batch can straddle a promotion and name two versions: run each version's share separately.
        for key in dict.fromkeys(keys):
            name, version = key.split("/", 1)
            ref = ModelRef(name, version)
            pack = await self._pack(ref)
            idx = [i for i, k in enumerate(keys) if k == key]
            batch = [images[i] for i in idx]
            t0, paused_s = time.perf_counter(), 0.0
            if self._yielder is not None and self._priority == "idle":
                if ref.uri not in self._yielding:
                    self._yielding[ref.uri] = pack.with_checkpoint(self._yielder.checkpoint)
                self._yielder.begin()
                # On a thread: a pass that pauses must not stall this replica's loop (health checks, warm-ups).
                outs = await asyncio.to_thread(self._yielding[ref.uri].predict, batch)
                paused_s = self._yielder.paused_in_pass
            else:
                outs = pack.predict(batch)
            # The model's time, less the pauses it stepped aside for answering work: read into the candidate's
            # p99, a shadow pass's pauses looked like a slow candidate, and a watched gate could roll back on it.
            ms = (time.perf_counter() - t0 - paused_s) * 1000
            for i, out in zip(idx, outs):
                answers[i] = ModelAnswer(
                    version=version, label=out.label, top_class=out.top_class, score=out.score,
                    probs=out.probs, ms=ms, model_scores=_model_scores(pack, out),
                )
        return answers  # type: ignore[return-value]

    def priority(self) -> str:
        """The scheduling policy the kernel applies to this replica now (tests, operators)."""
        return current_priority()

    def paused_s(self) -> float:
        """Seconds this replica's shadow passes have paused for answering work (tests, operators)."""
        return self._yielder.paused_s if self._yielder is not None else 0.0

    def check_health(self) -> None:
        """Serve calls this periodically; a replica that raises is restarted."""


def picture(image: np.ndarray | bytes, settings: Settings) -> Image.Image:
    """The model's input from what a call carries: pixels as the ingress decoded them, or the upload's
    bytes decoded here with the ingress's limits, to the same pixels."""
    if isinstance(image, np.ndarray):
        return Image.fromarray(image)
    return decode_upload(image, settings.serve).image


def _model_scores(pack, out) -> dict[str, float]:  # noqa: ANN001
    """What the model itself says about how familiar an input is; monitoring turns these into flags."""
    return model_descriptors(out.logits, out.embedding, pack.meta.reference.get("embedding"))


ModelDeployment = serve.deployment(ModelServer, name="model", max_ongoing_requests=64)

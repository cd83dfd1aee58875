"""The reference a harness is measured against: the same model in ONE Ray Serve deployment with a
FastAPI ingress, decode + @serve.batch forward, and nothing else (no routing, no log, no shadow)."""

import asyncio
from typing import Any

import numpy as np
from fastapi import FastAPI, File, Form, UploadFile
from PIL import Image
from ray import serve

from roomsight import registry
from roomsight.config import Settings
from roomsight.images import decode_image
from roomsight.registry import ModelRef

bare = FastAPI()


@serve.deployment(name="bare", max_ongoing_requests=256)
@serve.ingress(bare)
class BareModel:
    def __init__(self, settings: dict[str, Any], ref: dict[str, str], threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        s = Settings.model_validate(settings)
        registry.configure(s)
        self.pack = registry.load_model(ModelRef.from_dict(ref))

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.005)
    async def _forward(self, images: list[np.ndarray]) -> list[dict]:
        outs = self.pack.predict([Image.fromarray(a) for a in images])
        return [{"label": o.label, "scores": o.probs} for o in outs]

    @bare.post("/predict")
    async def predict(self, image: UploadFile = File(...), listing_id: str = Form(...), region: str = Form(...)) -> dict:
        data = await image.read()
        decoded = await asyncio.to_thread(decode_image, data, max_side=512)
        return await self._forward(np.asarray(decoded.image))

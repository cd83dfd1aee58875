"""Fault injection for tests and benchmarks: a model deployment that can be told, at run time, to be
slow, to hang, to raise or to answer garbage. It stands in for the candidate so the harness's promise
(a bad candidate never fails or slows a request the champion can answer) is checked against real
failures over real HTTP. It is never part of the app unless `build_app(..., candidate_faults=True)`
asks for it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from ray import serve

from serving.models import ModelAnswer, ModelServer

FAULTS = ("none", "slow", "hang", "raise", "garbage")


class FaultyModelServer(ModelServer):
    def __init__(self, role: str, settings: dict[str, Any]) -> None:
        super().__init__(role, settings)
        self.fault = "none"
        self.delay_s = 0.0

    def set_fault(self, fault: str, delay_s: float = 0.0) -> str:
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {FAULTS}")
        self.fault, self.delay_s = fault, delay_s
        return fault

    async def predict(self, ref: dict[str, str], image: np.ndarray | bytes, priority: str = "normal") -> ModelAnswer:
        if self.fault == "raise":
            raise RuntimeError("injected fault: the candidate raised")
        if self.fault == "hang":
            await asyncio.sleep(3600)
        if self.fault == "garbage":  # what a broken export might return: not an answer at all
            return {"label": 42, "scores": float("nan")}  # type: ignore[return-value]
        if self.fault == "slow":
            await asyncio.sleep(self.delay_s)
        return await super().predict(ref, image, priority)


FaultyModelDeployment = serve.deployment(FaultyModelServer, name="model", max_ongoing_requests=1024)

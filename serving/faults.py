"""Fault injection for tests and benchmarks: a model deployment that can be told, at run time, to be
slow, to hang, to raise or to answer garbage. It stands in for the candidate so the harness's promise
(a bad candidate never fails or slows a request the champion can answer) is checked against real
failures over real HTTP. It is never part of the app unless a test or a benchmark passes it in:
`start_serve(settings, candidate=FaultyModelDeployment)`.

The fault is a file under ROOMSIGHT_HOME rather than a replica's attribute, so that every replica of the
deployment follows it, whichever one the `set_fault` call reached (tests and benchmarks run on one node).
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import numpy as np
from ray import serve

from serving.models import ModelAnswer, ModelServer

FAULTS = ("none", "slow", "hang", "raise", "garbage")


class FaultyModelServer(ModelServer):
    def __init__(self, role: str, settings: dict[str, Any]) -> None:
        super().__init__(role, settings)
        self._fault_file = self.settings.home / f"fault-{role}.json"

    def set_fault(self, fault: str, delay_s: float = 0.0) -> str:
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {FAULTS}")
        tmp = self._fault_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"fault": fault, "delay_s": delay_s}))
        os.replace(tmp, self._fault_file)  # whole or not at all, for replicas reading it meanwhile
        return fault

    def _fault(self) -> tuple[str, float]:
        try:
            current = json.loads(self._fault_file.read_text())
        except FileNotFoundError:
            return "none", 0.0
        return current["fault"], current["delay_s"]

    async def predict(self, ref: dict[str, str], image: np.ndarray | bytes, priority: str = "normal") -> ModelAnswer:
        fault, delay_s = self._fault()
        if fault == "raise":
            raise RuntimeError("injected fault: the candidate raised")
        if fault == "hang":
            await asyncio.sleep(3600)
        if fault == "garbage":  # what a broken export might return: not an answer at all
            return {"label": 42, "scores": float("nan")}  # type: ignore[return-value]
        if fault == "slow":
            await asyncio.sleep(delay_s)
        return await super().predict(ref, image, priority)


FaultyModelDeployment = serve.deployment(FaultyModelServer, name="model", max_ongoing_requests=1024)

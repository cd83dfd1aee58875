"""Calls from the ingress to the model deployments: one answer, a shadow batch, a version's reference
statistics, a warm-up, each bounded in time and timed in the metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import numpy as np
from ray.serve.handle import DeploymentHandle

from roomsight.errors import BadAnswer, NotReady
from roomsight.images import DecodedImage
from roomsight.registry import ModelRef
from serving.metrics import ServeMetrics
from serving.models import ModelAnswer, check_answer
from roomsight.rollout_state import RoutingState
from serving.routing import CANDIDATE, CHAMPION, call_priority

log = logging.getLogger(__name__)

ModelInput = np.ndarray | bytes


def model_input(decoded: DecodedImage) -> ModelInput:
    """What a model call sends: the upload's bytes when they are fewer than its pixels (a JPEG usually
    is), and the replica decodes them again, on its own core. Ray moves arguments over 100 KB through its
    object store, which is work for the ingress and the raylet on the answering cores."""
    image = decoded.image
    return decoded.data if len(decoded.data) < image.width * image.height * 3 else np.asarray(image)


def error_text(exc: BaseException) -> str:
    """One line for the log: the replica's own exception, not Ray's wrapper with its traceback."""
    cause = getattr(exc, "cause", None) or exc
    if isinstance(exc, asyncio.TimeoutError):
        return "TimeoutError: the model did not answer in time"
    return f"{type(cause).__name__}: {cause}".splitlines()[0][:500]


def answer_columns(role: str, answer: ModelAnswer) -> dict[str, Any]:
    """The prediction-log columns of one model's answer."""
    prefix = "champion" if role == CHAMPION else "candidate"
    return {f"{prefix}_version": answer.version, f"{prefix}_label": answer.label,
            f"{prefix}_scores": answer.probs, f"{prefix}_ms": answer.ms}


def model_ref(state: RoutingState, role: str) -> ModelRef:
    ref = state.champion if role == CHAMPION else state.candidate
    assert ref is not None, f"no {role} in stage {state.stage}"
    return ref


class ModelCalls:
    def __init__(self, handles: dict[str, DeploymentHandle], metrics: ServeMetrics, shadow_priority: str) -> None:
        self.handles, self.metrics, self.shadow_priority = handles, metrics, shadow_priority

    def priority(self, state: RoutingState, role: str) -> str:
        return call_priority(state, role, self.shadow_priority)

    async def predict(self, role: str, state: RoutingState, image: ModelInput, timeout: float | None) -> ModelAnswer:
        """One checked answer from the model in `role`; BadAnswer for an answer that is not one."""
        ref = model_ref(state, role).to_dict()
        response = self.handles[role].predict.remote(ref, image, self.priority(state, role))
        return check_answer(await self._result(role, response, timeout))

    async def predict_many(self, role: str, ref: dict[str, str], priority: str, images: list[ModelInput],
                           timeout: float) -> list[Any]:
        """Unchecked answers to a shadow batch, one per image (BadAnswer if the count is wrong)."""
        response = self.handles[role].predict_many.remote(ref, images, priority)
        answers = await self._result(role, response, timeout)
        if not isinstance(answers, list) or len(answers) != len(images):
            raise BadAnswer(f"the model answered {type(answers).__name__} for a batch of {len(images)}")
        return answers

    async def reference(self, role: str, ref: dict[str, str]) -> dict[str, Any]:
        return await self.handles[role].reference.remote(ref)

    async def _result(self, role: str, response: Any, timeout: float | None) -> Any:
        """A call's result; a call still running after `timeout` is cancelled (TimeoutError)."""
        t0 = time.perf_counter()
        try:
            return await asyncio.wait_for(response, timeout) if timeout else await response
        except asyncio.TimeoutError:
            response.cancel()
            raise
        finally:
            self.metrics.model_latency.labels(role).observe(time.perf_counter() - t0)


class Warmer:
    """The state watcher's `prepare` hook: before a new state is routed on, the model replicas load its
    versions, so no request waits for a load. Bounded by `timeout_s`, so a change is live within seconds.
    A new champion that cannot be loaded at all (the registry is down) holds the change back, so the
    current champion keeps answering; a failing candidate does not (the champion covers for it)."""

    def __init__(self, handles: dict[str, DeploymentHandle], timeout_s: float) -> None:
        self.handles, self.timeout_s = handles, timeout_s
        # The champion of the state routed on now: the watcher routes on every state this hook lets through.
        self.live_champion: ModelRef | None = None

    def __call__(self, state: RoutingState) -> None:
        deadline = time.monotonic() + self.timeout_s
        calls = [(CHAMPION, self.handles[CHAMPION].warm.remote(state.champion.to_dict()))]
        if state.candidate is not None:
            calls.append((CANDIDATE, self.handles[CANDIDATE].warm.remote(state.candidate.to_dict())))
        for role, call in calls:
            try:
                call.result(timeout_s=max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                continue  # still loading: route on; the first requests wait for it
            except Exception as exc:
                log.warning("could not load the %s %s: %s", role, model_ref(state, role).uri, error_text(exc))
                if role == CHAMPION and self.live_champion not in (None, state.champion):
                    raise NotReady(f"champion {state.champion.uri} cannot be loaded") from None
        self.live_champion = state.champion

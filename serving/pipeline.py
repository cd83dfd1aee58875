"""The answer to one photo: out-of-domain check, route, call the answering model (the champion when the
candidate fails), record. The other model, when sampled, is handed to shadow dispatch; the answer never
waits for it and never fails because of it."""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Callable

from monitoring.descriptors import describe
from monitoring.ood import IMAGE_FLAGS, MODEL_FLAGS, Calibration, OodResult
from monitoring.review.photos import PhotoKeeper
from roomsight.config import Settings
from roomsight.errors import RequestError
from roomsight.images import DecodedImage
from serving.calls import ModelCalls, ModelInput, answer_columns, error_text, model_input, model_ref
from serving.metrics import ServeMetrics
from serving.models import ModelAnswer
from serving.predlog import LogWriter, PredictionRecord
from serving.request import PredictRequest
from serving.responses import ModelInfo, OodInfo, Prediction
from roomsight.rollout_state import RoutingState
from serving.routing import CANDIDATE, CHAMPION, Decision, choose
from serving.shadow_dispatch import ShadowDispatcher, ShadowJob

log = logging.getLogger(__name__)


class AnswerPipeline:
    def __init__(self, settings: Settings, state: Callable[[], RoutingState | None], calls: ModelCalls,
                 shadow: ShadowDispatcher, log_writer: LogWriter, photos: PhotoKeeper, metrics: ServeMetrics,
                 draw: Callable[[], float] = random.random) -> None:
        self.settings, self._state, self.calls, self.shadow = settings, state, calls, shadow
        self.log, self.photos, self.metrics, self._draw = log_writer, photos, metrics, draw
        self._calibrations: dict[str, Calibration] = {}  # per model version, from its reference statistics

    def state(self) -> RoutingState:
        current = self._state()
        if current is None:
            raise RequestError(503, "no model is live yet: train one (`rollout train`) and start serving again", "no-state")
        return current

    async def answer(self, decoded: DecodedImage, request: PredictRequest) -> Prediction:
        t0 = time.perf_counter()
        state = self.state()
        # Image flags come before routing, so the plan can keep out-of-domain photos on the champion.
        threshold = self.settings.monitoring.flag_threshold
        descriptors = await asyncio.to_thread(describe, decoded.image, decoded.width, decoded.height, decoded.n_bytes)
        image_ood = (await self._calibration(state, CHAMPION)).assess(descriptors, threshold, IMAGE_FLAGS)
        decision = choose(state, request.listing_id, request.region, tuple(image_ood.flags), self._draw())
        image = model_input(decoded)
        decision, answer, candidate_error = await self._call(state, decision, image)
        served_by = decision.served_by
        # Novelty is the answering model's own judgement, calibrated on that model's reference.
        descriptors.update(answer.model_scores)
        novelty = (await self._calibration(state, served_by)).assess(descriptors, threshold, MODEL_FLAGS)
        ood = OodResult(flags=image_ood.flags + novelty.flags, scores={**image_ood.scores, **novelty.scores},
                        held=list(decision.held_flags)).to_dict()
        for flag in ood["flags"]:
            self.metrics.ood.labels(flag).inc()
        latency_ms = (time.perf_counter() - t0) * 1000
        record = PredictionRecord(
            request_id=str(uuid.uuid4()), ts=time.time(), rollout_id=state.rollout_id, stage=state.stage.value,
            listing_id=request.listing_id, region=request.region, photo_id=request.photo_id, caption=request.caption,
            taken_at=request.taken_at, served_by=served_by, label=answer.label, score=answer.score,
            latency_ms=latency_ms, routing_reason=decision.reason, ood=ood, descriptors=descriptors,
            candidate_error=candidate_error, **answer_columns(served_by, answer),
        )
        self._record(record, state, decision, answer, image, decoded)
        self.metrics.answered(state.stage.value, request.region, served_by)
        self.metrics.latency.labels(served_by).observe(latency_ms / 1000)
        return Prediction(
            request_id=record.request_id, label=answer.label, scores=answer.probs,
            model=ModelInfo(name=model_ref(state, served_by).name, version=answer.version, alias=served_by),
            stage=state.stage.value, served_by=served_by, ood=OodInfo(**ood))

    async def _call(self, state: RoutingState, decision: Decision,
                    image: ModelInput) -> tuple[Decision, ModelAnswer, str | None]:
        """The answering model's answer; a failing candidate is answered for by the champion (the decision
        then says so, with the candidate's error for the log)."""
        if decision.served_by != CANDIDATE:
            return decision, await self._champion(state, image), None
        try:
            with self.shadow.answering():
                timeout = self.settings.serve.candidate_timeout_s
                return decision, await self.calls.predict(CANDIDATE, state, image, timeout), None
        except Exception as exc:
            # The candidate must never fail a request the champion can answer.
            self.metrics.fallbacks.inc()
            return Decision(CHAMPION, None, "candidate-fallback"), await self._champion(state, image), error_text(exc)

    async def _champion(self, state: RoutingState, image: ModelInput) -> ModelAnswer:
        """The champion's answer. When it fails, also as the candidate's stand-in, the request is refused with a
        503 the client may retry: never a 500, and on /predict/batch never the other photos' answers."""
        try:
            with self.shadow.answering():
                return await self.calls.predict(CHAMPION, state, image, None)
        except Exception:
            log.exception("champion failed")
            raise RequestError(503, "the model is unavailable; retry shortly", "champion-error") from None

    def _record(self, record: PredictionRecord, state: RoutingState, decision: Decision, answer: ModelAnswer,
                image: ModelInput, decoded: DecodedImage) -> None:
        queued = False
        if decision.shadow is not None:
            record.shadow = decision.shadow
            queued = self.shadow.offer(ShadowJob(decision.shadow, state, image, record.request_id, answer, record.region))
            if not queued:
                record.shadow_status = "dropped"
        self.log.submit(record)  # before any shadow update of its row
        if queued:
            self.shadow.pump()
        if state.rollout_id is not None:
            # Which photos get reviewed is decided later from the log, so during a rollout every photo is
            # kept (pruned after review.photo_retention_h unless queued); written off the request path.
            self.photos.keep(record.request_id, decoded)

    async def _calibration(self, state: RoutingState, role: str) -> Calibration:
        """Out-of-domain calibration of the version in `role`, fetched once per version. If its replica
        cannot say, built-in defaults stand in for this request (and the fetch is retried next time)."""
        ref = model_ref(state, role)
        key = f"{ref.name}/{ref.version}"
        if key not in self._calibrations:
            try:
                self._calibrations[key] = Calibration.from_reference(await self.calls.reference(role, ref.to_dict()))
            except Exception:
                log.exception("no reference statistics for %s; using default out-of-domain calibration", key)
                return Calibration.from_reference(None)
        return self._calibrations[key]

"""The Serve application: a FastAPI ingress in front of two model deployments.

Request path: decode and validate the upload -> route (pure, `routing.choose`) -> await the answering
model -> enqueue the log record -> answer. The other model, when sampled, gets a shadow job that starts
when the models are idle (`shadowing.ShadowGate`) and updates the log row later; the answer never waits
for it and never fails because of it.
"""

# No `from __future__ import annotations` here: FastAPI resolves the endpoint signatures at run time,
# and with Serve's class-based ingress it cannot see this module's names through string annotations.
import asyncio
import contextlib
import logging
import random
import time
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from ray import serve
from ray.serve.handle import DeploymentHandle

from monitoring.descriptors import describe
from monitoring.ood import IMAGE_FLAGS, MODEL_FLAGS, Calibration, OodResult
from monitoring.review.photos import PhotoKeeper, PhotoStore
from roomsight.config import Settings
from roomsight.db import engine_for
from roomsight.images import DecodedImage, ImageRejected, decode_upload
from serving.metrics import ServeMetrics
from serving.models import ModelAnswer, ModelDeployment, check_answer
from serving.predlog import LogWriter, PredictionRecord, ShadowUpdate
from serving.routing import CANDIDATE, CHAMPION, Decision, RoutingState, call_priority, choose
from serving.shadowing import ShadowGate
from serving.state import NotReady, StateWatcher
from serving.yielding import InFlight, signal_dir

log = logging.getLogger(__name__)

api = FastAPI(title="roomsight", description="Room-type photo classification with staged rollout of new models.")


class RequestError(Exception):
    def __init__(self, status: int, message: str, reason: str) -> None:
        super().__init__(message)
        self.status, self.message, self.reason = status, message, reason


@api.exception_handler(RequestValidationError)
async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    missing = [str(e["loc"][-1]) for e in exc.errors() if e.get("type") == "missing"]
    message = f"missing form field(s): {', '.join(missing)}" if missing else "invalid request"
    return JSONResponse({"error": message, "detail": [
        {"field": ".".join(str(p) for p in e["loc"][1:]), "message": e["msg"]} for e in exc.errors()]}, status_code=422)


@api.exception_handler(RequestError)
async def _request_error(_request: Request, exc: RequestError) -> JSONResponse:
    return JSONResponse({"error": exc.message}, status_code=exc.status)


def _clean(value: str | None, field: str, required: bool = False, max_len: int = 128) -> str | None:
    if value is None or not value.strip():
        if required:
            raise RequestError(422, f"missing form field: {field}", f"missing-{field}")
        return None
    value = value.strip()
    if len(value) > max_len:
        raise RequestError(422, f"{field} is longer than {max_len} characters", f"long-{field}")
    return value


def _error_text(exc: BaseException) -> str:
    """One line for the log: the replica's own exception, not Ray's wrapper with its traceback."""
    cause = getattr(exc, "cause", None) or exc
    if isinstance(exc, asyncio.TimeoutError):
        return "TimeoutError: the model did not answer in time"
    return f"{type(cause).__name__}: {cause}".splitlines()[0][:500]


# Module-level helpers the Ingress uses must be defined above it: Serve pickles the decorated class when
# the decorator runs, capturing only the globals that exist at that moment.
def _columns(role: str, answer: ModelAnswer) -> dict[str, Any]:
    prefix = "champion" if role == CHAMPION else "candidate"
    return {f"{prefix}_version": answer.version, f"{prefix}_label": answer.label,
            f"{prefix}_scores": answer.probs, f"{prefix}_ms": answer.ms}


def _model_input(decoded: DecodedImage) -> np.ndarray | bytes:
    """What a model call sends: the upload's bytes when they are fewer than its pixels (a JPEG usually
    is, by 5-10x), and the replica decodes them again, on its own core. Ray moves arguments over 100 KB
    through its object store, which is work for the ingress and the raylet on the answering cores."""
    image = decoded.image
    return decoded.data if len(decoded.data) < image.width * image.height * 3 else np.asarray(image)


@dataclass(frozen=True)
class ShadowJob:
    role: str  # the model that shadows
    state: RoutingState
    image: np.ndarray | bytes  # see _model_input
    request_id: str
    primary: ModelAnswer  # the answer it is compared with
    region: str


@serve.deployment(name="ingress", max_ongoing_requests=256)
@serve.ingress(api)
class Ingress:
    def __init__(self, champion: DeploymentHandle, candidate: DeploymentHandle, settings: dict[str, Any]) -> None:
        self.settings = Settings.model_validate(settings)
        self.handles = {CHAMPION: champion, CANDIDATE: candidate}
        engine = engine_for(self.settings.db_url)
        self.metrics = ServeMetrics()
        lg = self.settings.log
        self.log = LogWriter(engine, flush_interval_s=lg.flush_interval_s, batch_size=lg.batch_size,
                             buffer_max=lg.buffer_max, journal_dir=self.settings.home / "journal" if lg.journal else None,
                             fsync=lg.fsync)
        self.watcher = StateWatcher(engine, self.settings.serve.state_poll_s, prepare=self._warm)
        s = self.settings.serve
        self.shadow_gate: ShadowGate[ShadowJob] = ShadowGate(s.shadow_queue_size, s.shadow_concurrency, s.shadow_max_wait_s,
                                                             s.shadow_batch_size, s.shadow_batch_wait_s)
        self._shadow_timer: asyncio.TimerHandle | None = None
        self.shadow_dropped = 0
        self.answering = 0  # answering model calls in flight: shadow jobs start only when there are none
        self._tasks: set[asyncio.Task] = set()
        self._calibrations: dict[str, Calibration] = {}  # per model version, from its reference statistics
        self.photos = PhotoKeeper(PhotoStore.for_settings(self.settings))
        # Tells shadow computation on this node that a request is in flight (serving.yielding).
        self.inflight = InFlight(signal_dir(self.settings.home)) if s.shadow_yield else None

    def _in_flight(self) -> contextlib.AbstractContextManager:
        return self.inflight if self.inflight is not None else contextlib.nullcontext()

    # -- state ------------------------------------------------------------------------------------
    def _state(self) -> RoutingState:
        current = self.watcher.current
        if current is None:
            raise RequestError(503, "no model is live yet: train one (`rollout train`) and start serving again", "no-state")
        return current.state

    def _warm(self, state: RoutingState) -> None:
        """Runs in the watcher thread before a new state is routed on: the model replicas load the new
        versions first, so no request waits for a load. Bounded, so a change is live within seconds. A
        new champion that cannot be loaded at all (the registry is down) holds the change back, so the
        current champion keeps answering; a failing candidate does not (the champion covers for it)."""
        # The watcher's first prepare can run before __init__ has assigned it: nothing is current yet then.
        current = self.watcher.current if hasattr(self, "watcher") else None
        deadline = time.monotonic() + self.settings.serve.warm_timeout_s
        calls = [(CHAMPION, self.handles[CHAMPION].warm.remote(state.champion.to_dict()))]
        if state.candidate is not None:
            calls.append((CANDIDATE, self.handles[CANDIDATE].warm.remote(state.candidate.to_dict())))
        for role, call in calls:
            try:
                call.result(timeout_s=max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                continue  # still loading: route on; the first requests wait for it
            except Exception as exc:
                ref = state.champion if role == CHAMPION else state.candidate
                log.warning("could not load the %s %s: %s", role, ref.uri if ref else "", _error_text(exc))
                if role == CHAMPION and current is not None and current.state.champion != state.champion:
                    raise NotReady(f"champion {state.champion.uri} cannot be loaded") from None

    async def _calibration(self, state: RoutingState, role: str) -> Calibration:
        """Out-of-domain calibration of the version in `role`, fetched once per version. If its replica
        cannot say, built-in defaults stand in for this request (and the fetch is retried next time)."""
        ref = self._ref(state, role)
        key = f"{ref['name']}/{ref['version']}"
        if key not in self._calibrations:
            try:
                self._calibrations[key] = Calibration.from_reference(await self.handles[role].reference.remote(ref))
            except Exception:
                log.exception("no reference statistics for %s; using default out-of-domain calibration", key)
                return Calibration.from_reference(None)
        return self._calibrations[key]

    def _ref(self, state: RoutingState, role: str) -> dict[str, str]:
        ref = state.champion if role == CHAMPION else state.candidate
        assert ref is not None
        return ref.to_dict()

    # -- endpoints --------------------------------------------------------------------------------
    @api.get("/healthz")
    async def healthz(self) -> dict[str, Any]:
        current = self.watcher.current
        st = current.state if current else None
        return {
            "status": "ok" if st else "no-model",
            "stage": st.stage.value if st else None,
            "champion": st.champion.version if st else None,
            "candidate": st.candidate.version if st and st.candidate else None,
            "state_generation": current.generation if current else None,
            "state_held": self.watcher.held,  # polls at which a newer state waited for its champion to load
            "log": {"pending": self.log.pending, "written": self.log.written, "overflow": self.log.overflow,
                    "write_errors": self.log.write_errors, "recovered": self.log.recovered},
            "shadow": {"inflight": self.shadow_gate.running, "waiting": self.shadow_gate.waiting,
                       "dropped": self.shadow_dropped},
            "photos": {"pending": self.photos.pending, "dropped": self.photos.dropped},
        }

    @api.get("/metrics")
    async def metrics(self) -> Response:
        self.metrics.log_pending.set(self.log.pending)
        return Response(self.metrics.render(), media_type="text/plain; version=0.0.4")

    @api.post("/predict")
    async def predict(
        self,
        request: Request,
        image: UploadFile | None = File(None, description="The photo (JPEG, PNG, WebP, ...)."),
        listing_id: str | None = Form(None),
        region: str | None = Form(None),
        photo_id: str | None = Form(None),
        caption: str | None = Form(None),
        taken_at: str | None = Form(None),
    ) -> dict[str, Any]:
        with self._in_flight():
            return await self._predict(request, image, listing_id, region, photo_id, caption, taken_at)

    async def _predict(self, request: Request, image: UploadFile | None, listing_id: str | None, region: str | None,
                       photo_id: str | None, caption: str | None, taken_at: str | None) -> dict[str, Any]:
        try:
            self._check_length(request)
            if image is None:
                raise RequestError(422, "missing form field: image", "missing-image")
            fields = {"listing_id": _clean(listing_id, "listing_id", required=True),
                      "region": _clean(region, "region", required=True, max_len=64),
                      "photo_id": _clean(photo_id, "photo_id"), "caption": _clean(caption, "caption", max_len=2000),
                      "taken_at": _clean(taken_at, "taken_at", max_len=64)}
            decoded = await self._decode(image)
        except RequestError as exc:
            self.metrics.rejected.labels(exc.reason).inc()
            raise
        return await self._answer(decoded, **fields)

    @api.post("/predict/batch")
    async def predict_batch(
        self,
        request: Request,
        images: list[UploadFile] | None = File(None, description="Several photos; one answer each, in order."),
        listing_id: list[str] | None = Form(None, description="One per image, or one for all."),
        region: list[str] | None = Form(None, description="One per image, or one for all."),
    ) -> dict[str, Any]:
        with self._in_flight():
            return await self._predict_batch(request, images, listing_id, region)

    async def _predict_batch(self, request: Request, images: list[UploadFile] | None, listing_id: list[str] | None,
                             region: list[str] | None) -> dict[str, Any]:
        self._check_length(request)
        if not images:
            raise RequestError(422, "missing form field: images", "missing-image")
        n = len(images)
        listings = self._per_image(listing_id, n, "listing_id")
        regions = self._per_image(region, n, "region")

        async def one(i: int) -> dict[str, Any]:
            try:
                decoded = await self._decode(images[i])
                return await self._answer(decoded, listing_id=listings[i], region=regions[i])
            except RequestError as exc:
                self.metrics.rejected.labels(exc.reason).inc()
                return {"error": exc.message, "status": exc.status}

        return {"results": await asyncio.gather(*(one(i) for i in range(n)))}

    # -- helpers ----------------------------------------------------------------------------------
    def _per_image(self, values: list[str] | None, n: int, field: str) -> list[str]:
        values = [v for v in (values or []) if v and v.strip()]
        if len(values) == 1:
            values = values * n
        if len(values) != n:
            raise RequestError(422, f"{field}: give one value for all images or one per image ({n})", f"missing-{field}")
        return [_clean(v, field, required=True) for v in values]  # type: ignore[misc]

    def _check_length(self, request: Request) -> None:
        # Refuse an oversized body from its header, before reading it.
        limit = self.settings.serve.max_upload_bytes
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > limit + 64 * 1024:
            raise RequestError(413, f"request body is {length} bytes; the image limit is {limit}", "too-large")

    async def _decode(self, upload: UploadFile) -> DecodedImage:
        data = await upload.read(self.settings.serve.max_upload_bytes + 1)
        try:
            return await asyncio.to_thread(decode_upload, data, self.settings.serve)
        except ImageRejected as exc:
            raise RequestError(exc.status, str(exc), "bad-image") from None

    async def _call(self, role: str, state: RoutingState, image: np.ndarray | bytes, timeout: float | None) -> ModelAnswer:
        priority = call_priority(state, role, self.settings.serve.shadow_priority)
        response = self.handles[role].predict.remote(self._ref(state, role), image, priority)
        return check_answer(await self._result(role, response, timeout))

    async def _result(self, role: str, response: Any, timeout: float | None) -> Any:
        """A model call's result; a call still running after `timeout` is cancelled (TimeoutError)."""
        t0 = time.perf_counter()
        try:
            return await asyncio.wait_for(response, timeout) if timeout else await response
        except asyncio.TimeoutError:
            response.cancel()
            raise
        finally:
            self.metrics.model_latency.labels(role).observe(time.perf_counter() - t0)

    async def _answering_call(self, role: str, state: RoutingState, image: np.ndarray | bytes,
                              timeout: float | None) -> ModelAnswer:
        self.answering += 1
        try:
            return await self._call(role, state, image, timeout)
        finally:
            self.answering -= 1
            self._pump_shadow()

    async def _answer(self, decoded: DecodedImage, *, listing_id: str, region: str, photo_id: str | None = None,
                      caption: str | None = None, taken_at: str | None = None) -> dict[str, Any]:
        t0 = time.perf_counter()
        state = self._state()
        # Image flags come before routing, so the plan can keep out-of-domain photos on the champion.
        threshold = self.settings.monitoring.flag_threshold
        descriptors = await asyncio.to_thread(describe, decoded.image, decoded.width, decoded.height, decoded.n_bytes)
        image_ood = (await self._calibration(state, CHAMPION)).assess(descriptors, threshold, IMAGE_FLAGS)
        decision = choose(state, listing_id, region, tuple(image_ood.flags), random.random())
        image = _model_input(decoded)
        served_by = decision.served_by
        candidate_error = None
        try:
            answer = await self._answering_call(served_by, state, image, self.settings.serve.candidate_timeout_s
                                                if served_by == CANDIDATE else None)
        except Exception as exc:
            if served_by != CANDIDATE:
                log.exception("champion failed")
                raise RequestError(503, "the model is unavailable; retry shortly", "champion-error") from None
            # The candidate must never fail a request the champion can answer.
            candidate_error = _error_text(exc)
            self.metrics.fallbacks.inc()
            served_by = CHAMPION
            decision = Decision(CHAMPION, None, "candidate-fallback")
            answer = await self._answering_call(CHAMPION, state, image, None)
        # Novelty is the answering model's own judgement, calibrated on that model's reference.
        descriptors.update(answer.model_scores)
        novelty = (await self._calibration(state, served_by)).assess(descriptors, threshold, MODEL_FLAGS)
        ood = OodResult(flags=image_ood.flags + novelty.flags, scores={**image_ood.scores, **novelty.scores},
                        held=list(decision.held_flags)).to_dict()
        for flag in ood["flags"]:
            self.metrics.ood.labels(flag).inc()
        latency_ms = (time.perf_counter() - t0) * 1000
        request_id = str(uuid.uuid4())
        record = PredictionRecord(
            request_id=request_id, ts=time.time(), rollout_id=state.rollout_id, stage=state.stage.value,
            listing_id=listing_id, region=region, photo_id=photo_id, caption=caption, taken_at=taken_at,
            served_by=served_by, label=answer.label, score=answer.score, latency_ms=latency_ms,
            routing_reason=decision.reason, ood=ood, descriptors=descriptors, candidate_error=candidate_error,
            **_columns(served_by, answer),
        )
        queued = False
        if decision.shadow is not None:
            record.shadow = decision.shadow
            job = ShadowJob(decision.shadow, state, image, request_id, answer, region)
            queued = self.shadow_gate.offer(job, time.monotonic())
            if not queued:
                record.shadow_status = "dropped"
                self._count_dropped(decision.shadow)
        self.log.submit(record)  # before any shadow update of its row
        if queued:
            self._pump_shadow()
        if state.rollout_id is not None:
            # Which photos get reviewed is decided later from the log, so during a rollout every photo is
            # kept (pruned after review.photo_retention_h unless queued); written off the request path.
            self.photos.keep(request_id, decoded)
        self.metrics.requests.labels(state.stage.value, region, served_by).inc()
        self.metrics.latency.labels(served_by).observe(latency_ms / 1000)
        model_ref = state.champion if served_by == CHAMPION else state.candidate
        return {
            "request_id": request_id,
            "label": answer.label,
            "scores": answer.probs,
            "model": {"name": model_ref.name if model_ref else None, "version": answer.version, "alias": served_by},
            "stage": state.stage.value,
            "served_by": served_by,
            "ood": ood,
        }

    def _pump_shadow(self) -> None:
        now = time.monotonic()
        admission = self.shadow_gate.admit(now, self.answering)
        for job in admission.expired:
            self.log.submit_shadow(ShadowUpdate(job.request_id, "dropped"))
            self._count_dropped(job.role)
        loop = asyncio.get_running_loop()
        for batch in admission.start:
            task = loop.create_task(self._shadow(batch))
            self._tasks.add(task)  # keep a reference: the loop holds tasks weakly
            task.add_done_callback(self._tasks.discard)
        self.metrics.shadow_inflight.set(self.shadow_gate.running)
        due = self.shadow_gate.due_in(now)
        if due and self._shadow_timer is None:
            # A partial batch comes due even if no request arrives to pump it (0: the end of an answering
            # or shadow call pumps it).
            self._shadow_timer = loop.call_later(due, self._shadow_timer_fired)

    def _shadow_timer_fired(self) -> None:
        self._shadow_timer = None
        self._pump_shadow()

    def _count_dropped(self, role: str) -> None:
        self.shadow_dropped += 1
        self.metrics.shadow.labels(role, "dropped").inc()

    async def _shadow(self, batch: list[ShadowJob]) -> None:
        try:
            # One call per (model, version, priority): a batch can mix roles (in limited, the champion
            # shadows the candidate's slice) or straddle a state change.
            groups: dict[tuple[str, str, str, str], list[ShadowJob]] = {}
            for job in batch:
                ref = self._ref(job.state, job.role)
                key = (job.role, ref["name"], ref["version"], call_priority(job.state, job.role, self.settings.serve.shadow_priority))
                groups.setdefault(key, []).append(job)
            for (role, name, version, priority), jobs in groups.items():
                await self._shadow_group(role, {"name": name, "version": version}, priority, jobs)
        finally:
            self.shadow_gate.finished()
            self._pump_shadow()

    async def _shadow_group(self, role: str, ref: dict[str, str], priority: str, jobs: list[ShadowJob]) -> None:
        response = self.handles[role].predict_many.remote(ref, [j.image for j in jobs], priority)
        try:
            answers = await self._result(role, response, self.settings.serve.shadow_timeout_s)
            if not isinstance(answers, list) or len(answers) != len(jobs):
                raise ValueError(f"the model answered {type(answers).__name__} for a batch of {len(jobs)}")
        except asyncio.TimeoutError:
            for job in jobs:
                self._shadow_failed(role, job.request_id, "timeout", "shadow call timed out")
            return
        except Exception as exc:
            for job in jobs:
                self._shadow_failed(role, job.request_id, "error", _error_text(exc))
            return
        for job, answer in zip(jobs, answers):
            try:
                self._compared(job, check_answer(answer))
            except ValueError as exc:
                self._shadow_failed(role, job.request_id, "error", _error_text(exc))

    def _compared(self, job: ShadowJob, answer: ModelAnswer) -> None:
        primary = job.primary
        disagree = (answer.top_class != primary.top_class
                    or abs(answer.score - primary.score) > self.settings.serve.disagreement_gap)
        values = {**_columns(job.role, answer), "disagreement": disagree}
        self.log.submit_shadow(ShadowUpdate(job.request_id, "ok", values))
        self.metrics.shadow.labels(job.role, "ok").inc()
        if disagree:
            self.metrics.disagreements.labels(job.state.stage.value, job.region).inc()

    def _shadow_failed(self, role: str, request_id: str, status: str, message: str) -> None:
        values = {"candidate_error": message} if role == CANDIDATE else {}
        self.log.submit_shadow(ShadowUpdate(request_id, status, values))
        self.metrics.shadow.labels(role, status).inc()

    def __del__(self) -> None:
        self.watcher.stop()
        self.log.close()
        self.photos.close()
        if self.inflight is not None:
            self.inflight.close()


def build_app(settings: Settings, candidate_faults: bool = False) -> serve.Application:
    """The application graph: ingress -> {champion, candidate} model deployments, fractional CPUs.
    `candidate_faults` swaps in serving.faults' injectable candidate (tests and benchmarks only)."""
    conf = settings.model_dump(mode="json")
    s = settings.serve
    model_opts = {"ray_actor_options": {"num_cpus": s.model_cpus, "resources": dict(s.model_resources)},
                  "num_replicas": s.model_replicas}
    champion = ModelDeployment.options(name="champion", **model_opts).bind(CHAMPION, conf)
    if candidate_faults:
        from serving.faults import FaultyModelDeployment

        candidate = FaultyModelDeployment.options(name="candidate", **model_opts).bind(CANDIDATE, conf)
    else:
        candidate = ModelDeployment.options(name="candidate", **model_opts).bind(CANDIDATE, conf)
    return Ingress.options(ray_actor_options={"num_cpus": s.ingress_cpus, "resources": dict(s.ingress_resources)}).bind(
        champion, candidate, conf)

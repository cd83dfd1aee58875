"""The ingress's parts, built from the settings and the two model handles, and closed together: the
prediction log, the rollout-state watcher, the photo keeper, the answer pipeline and shadow dispatch.
The Serve deployment (`serving.app`) and the HTTP routes (`serving.api`) only hold one of these."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from ray.serve.handle import DeploymentHandle
from starlette.datastructures import UploadFile

from monitoring.review.photos import PhotoKeeper, PhotoStore
from roomsight.config import Settings
from roomsight.db import engine_for
from roomsight.errors import ImageRejected, RequestError
from roomsight.images import DecodedImage, decode_upload
from serving.calls import ModelCalls, Warmer
from serving.metrics import RolloutCollector, ServeMetrics
from serving.pipeline import AnswerPipeline
from serving.predlog import LogWriter
from serving.responses import Health
from roomsight.rollout_state import RoutingState
from serving.routing import CANDIDATE, CHAMPION
from serving.shadow_dispatch import ShadowDispatcher
from serving.state import StateWatcher
from serving.yielding import InFlight, signal_dir


class IngressService:
    def __init__(self, settings: Settings, champion: DeploymentHandle, candidate: DeploymentHandle) -> None:
        self.settings = settings
        s, lg = settings.serve, settings.log
        handles = {CHAMPION: champion, CANDIDATE: candidate}
        engine = engine_for(settings.db_url)
        self.metrics = ServeMetrics()
        self.log = LogWriter(engine, flush_interval_s=lg.flush_interval_s, batch_size=lg.batch_size,
                             buffer_max=lg.buffer_max, journal_dir=settings.home / "journal" if lg.journal else None,
                             fsync=lg.fsync, late_after_s=settings.review.settle_s / 2)
        self.watcher = StateWatcher(engine, s.state_poll_s, prepare=Warmer(handles, s.warm_timeout_s))
        self.photos = PhotoKeeper(PhotoStore.for_settings(settings))
        calls = ModelCalls(handles, self.metrics, s.shadow_priority)
        self.shadow = ShadowDispatcher(s, calls, self.log, self.metrics)
        self.pipeline = AnswerPipeline(settings, self.routing_state, calls, self.shadow, self.log, self.photos, self.metrics)
        self.metrics.registry.register(RolloutCollector(self.routing_state, self.metrics.answered_regions))
        # Tells shadow computation on this node that a request is in flight (serving.yielding).
        self._inflight = InFlight(signal_dir(settings.home)) if s.shadow_yield else None

    def routing_state(self) -> RoutingState | None:
        current = self.watcher.current
        return current.state if current is not None else None

    def in_flight(self) -> contextlib.AbstractContextManager[Any]:
        """Around every request that answers photos."""
        return self._inflight if self._inflight is not None else contextlib.nullcontext()

    def check_length(self, content_length: str | None) -> None:
        """Refuse an oversized body from its header, before reading it."""
        limit = self.settings.serve.max_upload_bytes
        if content_length and content_length.isdigit() and int(content_length) > limit + 64 * 1024:
            raise RequestError(413, f"request body is {content_length} bytes; the image limit is {limit}", "too-large")

    async def decode(self, upload: UploadFile) -> DecodedImage:
        """The uploaded photo decoded (off the event loop), or a RequestError saying why not."""
        data = await upload.read(self.settings.serve.max_upload_bytes + 1)  # one byte over is enough to refuse
        try:
            return await asyncio.to_thread(decode_upload, data, self.settings.serve)
        except ImageRejected as exc:
            # Over the byte or pixel limit is a 413 counted as too large, as a body refused by its header is.
            raise RequestError(exc.status, str(exc), "too-large" if exc.status == 413 else "bad-image") from None

    def health(self) -> Health:
        current = self.watcher.current
        st = current.state if current else None
        return Health.model_validate({
            "status": "ok" if st else "no-model",
            "stage": st.stage.value if st else None,
            "champion": st.champion.version if st else None,
            "candidate": st.candidate.version if st and st.candidate else None,
            "state_generation": current.generation if current else None,
            "state_held": self.watcher.held,
            "state_read_errors": self.watcher.read_errors,
            "warm_errors": self.watcher.prepare_errors,
            "log": {"pending": self.log.pending, "written": self.log.written, "overflow": self.log.overflow,
                    "write_errors": self.log.write_errors, "rejected": self.log.rejected,
                    "recovered": self.log.recovered},
            "shadow": {"inflight": self.shadow.gate.running, "waiting": self.shadow.gate.waiting,
                       "dropped": self.shadow.dropped},
            "photos": {"pending": self.photos.pending, "dropped": self.photos.dropped},
        })

    def render_metrics(self) -> bytes:
        self.metrics.log_pending.set(self.log.pending)
        return self.metrics.render()

    def close(self) -> None:
        """Stop polling, write what the log and the photo keeper hold, release the in-flight signal."""
        self.watcher.stop()
        self.log.close()
        self.photos.close()
        if self._inflight is not None:
            self._inflight.close()

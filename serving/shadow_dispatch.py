"""Shadow dispatch: the model that does not answer a sampled request runs on it later, in the models'
idle time, and its answer updates the request's log row.

The admission policy (when a job may start, when it is dropped) is `shadowing.ShadowGate`, pure; this
module runs it on the ingress's event loop: it counts the answering calls in flight, starts admitted
batches as tasks, sets a timer for a partial batch that no request would otherwise start, groups a
batch into one call per model version, and logs and counts every outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

from roomsight.config import ServeSettings
from roomsight.errors import BadAnswer
from serving.calls import ModelCalls, ModelInput, answer_columns, error_text, model_ref
from serving.metrics import ServeMetrics
from serving.models import ModelAnswer, check_answer
from serving.predlog import LogWriter, ShadowUpdate
from roomsight.rollout_state import RoutingState
from serving.routing import CANDIDATE
from serving.shadowing import ShadowGate


def disagrees(served: ModelAnswer, shadow: ModelAnswer, gap: float) -> bool:
    """Whether a compared photo belongs to the review's disagreement stratum. The paired analysis reads a
    photo outside it as a tie that needs no verdict, which holds only when both models gave the same
    answer: so a class against `unsure` disagrees, as do two `unsure`s behind different top classes and
    the same label held with confidences more than `gap` apart."""
    return (shadow.label != served.label or shadow.top_class != served.top_class
            or abs(shadow.score - served.score) > gap)


@dataclass(frozen=True)
class ShadowJob:
    role: str  # the model that shadows
    state: RoutingState
    image: ModelInput
    request_id: str
    primary: ModelAnswer  # the answer it is compared with
    region: str


class ShadowDispatcher:
    def __init__(self, settings: ServeSettings, calls: ModelCalls, log: LogWriter, metrics: ServeMetrics) -> None:
        self.settings, self.calls, self.log, self.metrics = settings, calls, log, metrics
        self.gate: ShadowGate[ShadowJob] = ShadowGate(settings.shadow_queue_size, settings.shadow_concurrency,
                                                      settings.shadow_max_wait_s, settings.shadow_batch_size,
                                                      settings.shadow_batch_wait_s)
        self.dropped = 0
        self._answering = 0  # answering model calls in flight: shadow jobs start only when there are none
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task] = set()

    @contextlib.contextmanager
    def answering(self) -> Iterator[None]:
        """Around every answering model call: shadow work waits while it runs and may start after it."""
        self._answering += 1
        try:
            yield
        finally:
            self._answering -= 1
            self.pump()

    def offer(self, job: ShadowJob) -> bool:
        """Queue a job; False (counted as dropped) when the queue is full. Call `pump` once the request's
        log record is submitted: a shadow update must never reach the log before its row."""
        if self.gate.offer(job, time.monotonic()):
            return True
        self._count_dropped(job.role)
        return False

    def pump(self) -> None:
        """Start what the gate admits now, drop what waited too long, and look again when a partial batch
        comes due (0: the end of an answering or shadow call pumps it)."""
        now = time.monotonic()
        admission = self.gate.admit(now, self._answering)
        for job in admission.expired:
            self.log.submit_shadow(ShadowUpdate(job.request_id, "dropped"))
            self._count_dropped(job.role)
        loop = asyncio.get_running_loop()
        for batch in admission.start:
            task = loop.create_task(self._run(batch))
            self._tasks.add(task)  # keep a reference: the loop holds tasks weakly
            task.add_done_callback(self._tasks.discard)
        self.metrics.shadow_inflight.set(self.gate.running)
        due = self.gate.due_in(now)
        if due and self._timer is None:
            self._timer = loop.call_later(due, self._timer_fired)

    def _timer_fired(self) -> None:
        self._timer = None
        self.pump()

    def _count_dropped(self, role: str) -> None:
        self.dropped += 1
        self.metrics.shadow.labels(role, "dropped").inc()

    async def _run(self, batch: list[ShadowJob]) -> None:
        try:
            # One call per (model, version, priority): a batch can mix roles (in limited, the champion
            # shadows the candidate's slice) or straddle a state change.
            groups: dict[tuple[str, str, str, str], list[ShadowJob]] = {}
            for job in batch:
                ref = model_ref(job.state, job.role)
                key = (job.role, ref.name, ref.version, self.calls.priority(job.state, job.role))
                groups.setdefault(key, []).append(job)
            # At once, each under its own timeout: every outcome is then had within shadow_max_wait_s +
            # shadow_timeout_s of its request, which review.settle_s and the replay's as-of counts rely on;
            # one after the other, three hanging calls took three timeouts, and a shared deadline would
            # blame one model for another's time.
            await asyncio.gather(*(self._call(role, {"name": name, "version": version}, priority, jobs)
                                   for (role, name, version, priority), jobs in groups.items()))
        finally:
            self.gate.finished()
            self.pump()

    async def _call(self, role: str, ref: dict[str, str], priority: str, jobs: list[ShadowJob]) -> None:
        try:
            answers = await self.calls.predict_many(role, ref, priority, [j.image for j in jobs],
                                                    self.settings.shadow_timeout_s)
        except asyncio.TimeoutError:
            for job in jobs:
                self._failed(role, job.request_id, "timeout", "shadow call timed out")
            return
        except Exception as exc:
            for job in jobs:
                self._failed(role, job.request_id, "error", error_text(exc))
            return
        for job, answer in zip(jobs, answers):
            try:
                checked = check_answer(answer)
            except BadAnswer as exc:
                self._failed(role, job.request_id, "error", error_text(exc))
                continue
            self._compared(job, checked)

    def _compared(self, job: ShadowJob, answer: ModelAnswer) -> None:
        primary = job.primary
        disagree = disagrees(primary, answer, self.settings.disagreement_gap)
        values = {**answer_columns(job.role, answer), "disagreement": disagree}
        self.log.submit_shadow(ShadowUpdate(job.request_id, "ok", values))
        self.metrics.shadow.labels(job.role, "ok").inc()
        if disagree:
            self.metrics.disagreed(job.state.stage.value, job.region)

    def _failed(self, role: str, request_id: str, status: str, message: str) -> None:
        values = {"candidate_error": message} if role == CANDIDATE else {}
        self.log.submit_shadow(ShadowUpdate(request_id, status, values))
        self.metrics.shadow.labels(role, status).inc()

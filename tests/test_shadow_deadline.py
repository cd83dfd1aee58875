"""A shadow batch's outcomes all come within shadow_max_wait_s + shadow_timeout_s of their requests, what
review.settle_s is kept above, and no model's call is cut short by another's. Real dispatcher on asyncio,
models that take their time; no Ray."""

from __future__ import annotations

import asyncio
import time
from unittest.mock import MagicMock

import pytest

import serving.shadow_dispatch as dispatch
from roomsight.config import Settings
from roomsight.registry import ModelRef
from roomsight.rollout_state import RoutingState, Stage
from serving.routing import CANDIDATE, CHAMPION, call_priority
from serving.shadow_dispatch import ShadowDispatcher, ShadowJob

SETTINGS = Settings(serve={"shadow_max_wait_s": 0.05, "shadow_timeout_s": 0.5, "shadow_batch_size": 8,
                           "shadow_batch_wait_s": 0.005},
                    review={"settle_s": 1.11})  # > 2 * (0.05 + 0.5): accepted
CHAMP, CAND = ModelRef("m", "1"), ModelRef("m", "2")
SHADOW = RoutingState(champion=CHAMP, stage=Stage.SHADOW, candidate=CAND, rollout_id="r", step=0)
LIMITED = RoutingState(champion=CHAMP, stage=Stage.LIMITED, candidate=CAND, rollout_id="r", step=1,
                       regions=("eu-west",), region_percent=50.0)


class Calls:
    """Model calls that take `took[role]` seconds each, under the timeout the dispatcher gives."""

    def __init__(self, took: dict[str, float]) -> None:
        self.took = took

    def priority(self, state: RoutingState, role: str) -> str:
        return call_priority(state, role)

    async def predict_many(self, role, ref, priority, images, timeout):  # noqa: ANN001, ANN201
        await asyncio.wait_for(asyncio.sleep(self.took[role]), timeout)
        return [None] * len(images)


class Log:
    def __init__(self) -> None:
        self.updates: list = []

    def submit_shadow(self, upd) -> None:  # noqa: ANN001
        self.updates.append(upd)


def run_batch(calls: Calls, jobs: list[tuple[str, RoutingState]], monkeypatch: pytest.MonkeyPatch) -> tuple[float, dict]:
    """Offer the jobs as one batch; when the requests were logged, and each request's outcome by id."""
    log = Log()
    d = ShadowDispatcher(SETTINGS.serve, calls, log, MagicMock())  # type: ignore[arg-type]
    # An answer is an answer here: what the dispatcher makes of its content is tested elsewhere.
    monkeypatch.setattr(dispatch, "check_answer", lambda answer: answer)
    monkeypatch.setattr(d, "_compared", lambda job, answer: log.updates.append(
        dispatch.ShadowUpdate(job.request_id, "ok")))

    async def offer_and_wait() -> float:
        ts = time.time()
        for i, (role, state) in enumerate(jobs):
            assert d.offer(ShadowJob(role, state, b"", f"req-{i}", MagicMock(), "eu-west"))
        d.pump()
        while len(log.updates) < len(jobs):
            await asyncio.sleep(0.01)
        return ts

    ts = asyncio.run(offer_and_wait())
    return ts, {u.request_id: u for u in log.updates}


def test_a_shadow_batch_of_several_calls_has_every_outcome_within_one_timeout(monkeypatch):
    """A batch runs one call per (role, model, version, priority); one straddling shadow -> limited holds
    three. Run one after the other, each under its own timeout, three hanging calls had their last outcome
    max_wait + 3 timeouts after its request, past review.settle_s, on which the review queue and the
    replay's as-of counts rely."""
    hang = {CHAMPION: 10.0, CANDIDATE: 10.0}
    ts, outcomes = run_batch(Calls(hang), [(CANDIDATE, SHADOW), (CANDIDATE, LIMITED), (CHAMPION, LIMITED)], monkeypatch)
    assert [u.shadow_status for u in outcomes.values()] == ["timeout"] * 3
    late = max(u.shadow_at for u in outcomes.values()) - ts
    # max_wait + timeout is 0.55 s; one after the other, the calls took 1.55 s (two would take 1.05 s).
    assert late <= 0.85 < SETTINGS.review.settle_s, f"a shadow outcome came {late:.3f} s after its request"


def test_a_slow_champion_call_does_not_time_out_the_candidates_call_in_the_same_batch(monkeypatch):
    """In limited a batch holds a champion call (shadowing the slice) and a candidate call (outside it).
    Under one deadline shared in turn, the champion's 0.4 s left the candidate 0.1 s of its 0.5 s timeout:
    its 0.2 s answer was a 'timeout' with candidate_error, counted in the candidate's calls and errors."""
    _, outcomes = run_batch(Calls({CHAMPION: 0.4, CANDIDATE: 0.2}), [(CHAMPION, LIMITED), (CANDIDATE, LIMITED)],
                            monkeypatch)
    assert {rid: u.shadow_status for rid, u in outcomes.items()} == {"req-0": "ok", "req-1": "ok"}

"""A shadow batch's outcomes all come within shadow_max_wait_s + shadow_timeout_s of their requests, what
review.settle_s is kept above. Real dispatcher on asyncio, models that hang; no Ray."""

from __future__ import annotations

from roomsight.config import Settings


def test_a_shadow_batch_of_several_calls_has_every_outcome_within_one_timeout():
    """A batch runs one call per (role, model, version, priority), one after the other; a batch straddling
    shadow -> limited holds three. Each call had its own shadow_timeout_s, so with every call hanging the
    last outcome came max_wait + 3 timeouts after its request, past review.settle_s, which the settings
    keep above twice max_wait + one timeout and on which the review queue and the replay's as-of counts
    rely. The batch now has one deadline. Scaled down, with settings that validate."""
    import asyncio
    import time as _time
    from unittest.mock import MagicMock

    from roomsight.registry import ModelRef
    from roomsight.rollout_state import RoutingState, Stage
    from serving.models import ModelAnswer  # noqa: F401  (the dispatcher's answer type)
    from serving.routing import CANDIDATE, CHAMPION, call_priority
    from serving.shadow_dispatch import ShadowDispatcher, ShadowJob

    settings = Settings(serve={"shadow_max_wait_s": 0.05, "shadow_timeout_s": 0.5, "shadow_batch_size": 8,
                               "shadow_batch_wait_s": 0.005},
                        review={"settle_s": 1.11})  # > 2 * (0.05 + 0.5): accepted
    champ, cand = ModelRef("m", "1"), ModelRef("m", "2")
    shadow = RoutingState(champion=champ, stage=Stage.SHADOW, candidate=cand, rollout_id="r", step=0)
    limited = RoutingState(champion=champ, stage=Stage.LIMITED, candidate=cand, rollout_id="r", step=1,
                           regions=("eu-west",), region_percent=100.0)

    class HangingCalls:
        def priority(self, state, role):  # noqa: ANN001, ANN201
            return call_priority(state, role)

        async def predict_many(self, role, ref, priority, images, timeout):  # noqa: ANN001, ANN201
            await asyncio.wait_for(asyncio.sleep(10), timeout)  # the model is overloaded: every call times out

    class Log:
        def __init__(self) -> None:
            self.updates = []

        def submit_shadow(self, upd):  # noqa: ANN001, ANN201
            self.updates.append(upd)

    log = Log()
    d = ShadowDispatcher(settings.serve, HangingCalls(), log, MagicMock())  # type: ignore[arg-type]
    primary = MagicMock()

    async def run() -> float:
        ts = _time.time()  # the three requests' rows are logged now
        for i, (role, state) in enumerate([(CANDIDATE, shadow), (CANDIDATE, limited), (CHAMPION, limited)]):
            assert d.offer(ShadowJob(role, state, b"", f"req-{i}", primary, "eu-west"))
        d.pump()
        while len(log.updates) < 3:
            await asyncio.sleep(0.01)
        return ts

    ts = asyncio.run(run())
    assert [u.shadow_status for u in log.updates] == ["timeout"] * 3
    late = max(u.shadow_at for u in log.updates) - ts
    # max_wait + timeout is 0.55 s; one after the other, the calls took 1.55 s (two would take 1.05 s).
    assert late <= 0.85 < settings.review.settle_s, f"a shadow outcome came {late:.3f} s after its request"


def test_a_slow_champion_call_does_not_time_out_the_candidates_call_in_the_same_batch():
    """In limited a batch holds a champion call (shadowing the slice) and a candidate call (outside it).
    Under one deadline shared in turn, the champion's 0.4 s left the candidate 0.1 s of its 0.5 s timeout:
    its 0.2 s answer was a 'timeout' with candidate_error, counted in the candidate's calls and errors."""
    import asyncio
    from unittest.mock import MagicMock

    from roomsight.registry import ModelRef
    from roomsight.rollout_state import RoutingState, Stage
    from serving.routing import CANDIDATE, CHAMPION, call_priority
    from serving.shadow_dispatch import ShadowDispatcher, ShadowJob

    settings = Settings(serve={"shadow_max_wait_s": 0.05, "shadow_timeout_s": 0.5, "shadow_batch_size": 8,
                               "shadow_batch_wait_s": 0.005}, review={"settle_s": 1.11})
    limited = RoutingState(champion=ModelRef("m", "1"), stage=Stage.LIMITED, candidate=ModelRef("m", "2"),
                           rollout_id="r", step=1, regions=("eu-west",), region_percent=50.0)
    took = {CHAMPION: 0.4, CANDIDATE: 0.2}

    class SlowCalls:
        def priority(self, state, role):  # noqa: ANN001, ANN201
            return call_priority(state, role)

        async def predict_many(self, role, ref, priority, images, timeout):  # noqa: ANN001, ANN201
            await asyncio.wait_for(asyncio.sleep(took[role]), timeout)
            return [None] * len(images)

    class Log:
        def __init__(self) -> None:
            self.updates = []

        def submit_shadow(self, upd):  # noqa: ANN001, ANN201
            self.updates.append(upd)

    log = Log()
    d = ShadowDispatcher(settings.serve, SlowCalls(), log, MagicMock())  # type: ignore[arg-type]
    d._compared = lambda job, answer: log.updates.append(type("U", (), {"request_id": job.request_id,  # noqa: SLF001
                                                                        "shadow_status": "ok", "values": {}})())

    async def run() -> None:
        for i, role in enumerate([CHAMPION, CANDIDATE]):
            assert d.offer(ShadowJob(role, limited, b"", f"req-{i}", MagicMock(), "eu-west"))
        d.pump()
        while len(log.updates) < 2:
            await asyncio.sleep(0.01)

    import serving.shadow_dispatch as sd
    orig = sd.check_answer
    sd.check_answer = lambda a: a
    try:
        asyncio.run(run())
    finally:
        sd.check_answer = orig
    by_id = {u.request_id: u for u in log.updates}
    assert by_id["req-1"].shadow_status == "ok", (
        f"the candidate answered in 0.2 s of a 0.5 s timeout but was logged {by_id['req-1'].shadow_status!r} "
        f"with {by_id['req-1'].values}")

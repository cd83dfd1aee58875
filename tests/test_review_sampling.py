"""The review queue as a sample with known inclusion probabilities, on a real SQLite log: the fill reads
only rows after its watermark, waits for late shadow answers, queues the same ids in the same order for the
same traffic, serves the rollout in progress, double-reviews a share of photos (a conflict goes to a
third reviewer), and `review_sample` reads the frontier, counts and verdicts the analyses need, as of any
moment. No Ray."""

from __future__ import annotations

import math
import time
import uuid
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, insert, select, update

from analysis import AnalysisSpec, analyse
from monitoring.review import queue
from monitoring.review.evidence import evidence, review_sample
from monitoring.review.photos import PhotoStore
from monitoring.review.stats import cohen_kappa, resolve
from roomsight.registry import ModelRef
from roomsight.rollout_state import RoutingState, Stage, write_state
from roomsight.tables import metadata, predictions, review_counts, review_fill, review_items, review_unseen, review_verdicts
from roomsight.verdicts import DISPUTED, UNSURE, ReviewSample
from tests.conftest import settings_for
from tests.test_review_queue import CLASSES, ROLLOUT, jpeg

T0 = 1_700_000_000.0  # the log's past


@pytest.fixture
def env(tmp_path: Path):
    s = settings_for(tmp_path, ROOMSIGHT_REVIEW__SPOT_CHECK_SHARE="0.5", ROOMSIGHT_REVIEW__SETTLE_S="60")
    engine = create_engine(f"sqlite:///{tmp_path / 'roomsight.db'}", connect_args={"timeout": 30, "check_same_thread": False})
    metadata.create_all(engine)
    return s, engine, PhotoStore.for_settings(s)


def put(engine, store, ts: float, champion: str, candidate: str | None, *, rollout: str = ROLLOUT, photo_id: str | None = None,
        region: str = "eu-west", ood: list[str] | None = None, late: bool | None = None) -> str:
    """One compared prediction at `ts` (candidate None: its shadow answer is still on its way)."""
    rid = str(uuid.uuid4())
    with engine.begin() as conn:
        conn.execute(insert(predictions).values(
            request_id=rid, ts=ts, rollout_id=rollout, stage="shadow", listing_id="L", photo_id=photo_id, region=region,
            served_by="champion", label=champion, score=0.9, latency_ms=1.0, champion_label=champion,
            candidate_label=candidate, shadow="candidate", shadow_status="ok" if candidate else None,
            disagreement=None if candidate is None else champion != candidate, ood={"flags": ood or []}, late=late))
    store.put(rid, jpeg(int(ts) % 97))
    return rid


def queued(engine, rollout: str = ROLLOUT) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(select(review_items.c.request_id, review_items.c.reason)
                                 .where(review_items.c.rollout_id == rollout)).all())


def test_fill_reads_only_rows_after_its_watermark_and_waits_for_late_shadow_answers(env) -> None:
    s, engine, store = env
    first = put(engine, store, T0, "kitchen", "bedroom")
    late = put(engine, store, T0 + 200, "kitchen", None)  # its shadow answer has not arrived yet
    assert queue.fill(engine, s, ROLLOUT, now=T0 + 210) == 1 and set(queued(engine)) == {first}
    with engine.connect() as conn:
        mark, settled = conn.execute(select(review_fill.c.watermark, review_fill.c.settled_to)).one()
    assert mark == pytest.approx(T0 + 150) and settled < T0 + 200  # nothing at or after the waiting row is settled

    # A row logged before the watermark is never read again: fill's cost follows the new rows only.
    hidden = put(engine, store, T0 + 100, "kitchen", "bedroom")
    with engine.begin() as conn:
        conn.execute(update(predictions).where(predictions.c.request_id == late)
                     .values(candidate_label="bathroom", disagreement=True, shadow_status="ok"))
    assert queue.fill(engine, s, ROLLOUT, now=T0 + 230) == 1
    assert set(queued(engine)) == {first, late} and hidden not in queued(engine)


def test_a_shadow_answer_that_never_comes_is_given_up_after_settle_s(env) -> None:
    s, engine, store = env
    put(engine, store, T0, "kitchen", None)
    put(engine, store, T0 + 1, "kitchen", "bedroom")
    assert queue.fill(engine, s, ROLLOUT, now=T0 + 10) == 1  # the second is settled and queued...
    with engine.connect() as conn:
        assert conn.execute(select(review_fill.c.settled_to)).scalar_one() < T0  # ...but nothing from the first on is
    assert queue.fill(engine, s, ROLLOUT, now=T0 + 100) == 0  # given up on the first (no comparison to queue)
    with engine.connect() as conn:
        assert conn.execute(select(review_fill.c.settled_to)).scalar_one() == pytest.approx(T0 + 1)


def test_same_traffic_same_items_same_order(tmp_path: Path) -> None:
    orders = []
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        s = settings_for(tmp_path / run)
        engine = create_engine(f"sqlite:///{tmp_path / run / 'db.sqlite'}")
        metadata.create_all(engine)
        store = PhotoStore.for_settings(s)
        for i in range(30):
            put(engine, store, T0 + i, "kitchen", "bedroom" if i % 3 else "kitchen", photo_id=f"P{i}")
        queue.fill(engine, s, ROLLOUT, now=T0 + 1000)
        order = []
        while (c := queue.claim_next(engine, "ann", 60)) is not None:
            order.append(c.item_id)
            queue.submit(engine, "ann", c.item_id, c.claim_id, "kitchen", CLASSES)
        orders.append(order)
    assert orders[0] == orders[1] and len(orders[0]) >= 10
    with engine.connect() as conn:
        reasons = dict(conn.execute(select(review_items.c.id, review_items.c.reason)).all())
    first_spot = next(i for i, item in enumerate(orders[1]) if reasons[item] != "disagreement")
    assert all(reasons[item] != "disagreement" for item in orders[1][first_spot:])  # disagreements first


def test_a_reserve_of_claims_goes_to_agreements_without_reordering_disagreements(tmp_path: Path) -> None:
    s = settings_for(tmp_path, ROOMSIGHT_REVIEW__SPOT_CHECK_SHARE="1.0")
    engine = create_engine(f"sqlite:///{tmp_path / 'roomsight.db'}")
    metadata.create_all(engine)
    store = PhotoStore.for_settings(s)
    for i in range(12):  # disagreements, the oldest first; agreements logged before any of them
        put(engine, store, T0 + 10 + i, "kitchen", "bedroom", photo_id=f"D{i}")
    for i in range(4):
        put(engine, store, T0 + i, "kitchen", "kitchen", photo_id=f"S{i}")  # spot checks
        put(engine, store, T0 + 4 + i, UNSURE, UNSURE, photo_id=f"L{i}")  # low-confidence answers
    queue.fill(engine, s, ROLLOUT, now=T0 + 1000)
    with engine.connect() as conn:
        logged = dict(conn.execute(select(review_items.c.id, review_items.c.logged_at)).all())

    def served(reserve: float, n: int) -> list[tuple[str, float]]:
        out = []
        for _ in range(n):
            c = queue.claim_next(engine, "ann", 60, reserve=reserve)
            queue.submit(engine, "ann", c.item_id, c.claim_id, "kitchen", CLASSES)
            out.append((queued(engine)[c.request_id], logged[c.item_id]))
        return out

    first = served(0.25, 16)
    assert [r for r, _ in first][3::4] == ["spot_check", "low_confidence"] * 2  # every fourth claim, in turn
    assert [r for r, _ in first if r != "disagreement"] == [r for r, _ in first][3::4]
    assert [t for r, t in first if r == "disagreement"] == [T0 + 10 + i for i in range(12)]  # the frontier's order
    rest = served(0.25, 4)
    assert [r for r, _ in rest] == ["low_confidence"] * 2 + ["spot_check"] * 2  # nothing else waits: in priority order
    assert queue.claim_next(engine, "ann", 60, reserve=0.25) is None


def test_the_rollout_in_progress_is_served_and_others_only_on_request(env) -> None:
    s, engine, store = env
    old, new = "00000000-0000-0000-0000-00000000000a", ROLLOUT
    put(engine, store, T0, "kitchen", "bedroom", rollout=old)
    put(engine, store, T0 + 1, "kitchen", "bedroom", rollout=new)
    for rid in (old, new):
        queue.fill(engine, s, rid, now=T0 + 1000)
    assert queue.claim_next(engine, "ann", 60).request_id in queued(engine, old)  # no rollout in progress: all
    write_state(engine, RoutingState(champion=ModelRef("roomtype", "1"), stage=Stage.SHADOW,
                                     candidate=ModelRef("roomtype", "2"), rollout_id=new, step=0), None)
    claim = queue.claim_next(engine, "bob", 60)
    assert claim.request_id in queued(engine, new)
    assert queue.claim_next(engine, "cho", 60) is None  # the old rollout's item waits
    assert queue.claim_next(engine, "cho", 60, rollout_id=old) is None  # ann holds it
    assert queue.progress(engine).to_dict() == {"pending": 0, "claimed": 1, "done": 0, "mine": 0}


def test_double_review_agreement_conflict_third_reviewer_and_undo(env, tmp_path: Path) -> None:
    s, engine, store = env
    s = s.model_copy(update={"review": s.review.model_copy(update={
        "double_review_share": 1.0, "tokens": {"ann": "a" * 20, "bob": "b" * 20, "cho": "c" * 20}})})
    for i in range(3):
        put(engine, store, T0 + i, "kitchen", "bedroom")
    queue.fill(engine, s, ROLLOUT, now=T0 + 1000)

    def judge(who: str, label: str) -> str:
        c = queue.claim_next(engine, who, 60)
        queue.submit(engine, who, c.item_id, c.claim_id, label, CLASSES, reviewers=3)
        return c.item_id

    def item(item_id: str):
        with engine.connect() as conn:
            return conn.execute(select(review_items).where(review_items.c.id == item_id)).one()

    first, second, third = judge("ann", "kitchen"), judge("ann", "bedroom"), judge("ann", "bedroom")
    assert len({first, second, third}) == 3 and queue.claim_next(engine, "ann", 60) is None  # never twice
    assert item(first).status == "pending" and item(first).truth is None  # waiting for a second reviewer
    assert judge("bob", "kitchen") == first and item(first).truth == "kitchen"  # two agree: resolved
    assert judge("bob", "bathroom") == second  # a conflict goes to a third reviewer
    assert (item(second).reviews_wanted, item(second).status, item(second).truth) == (3, "pending", None)
    assert judge("cho", "bedroom") == second and item(second).truth == "bedroom"  # the majority
    assert judge("bob", "kitchen") == third and item(third).reviews_wanted == 3
    back = queue.undo(engine, "bob", 60)  # bob takes back the verdict that made the conflict
    assert back.item_id == third and item(third).reviews_wanted == 2
    queue.submit(engine, "bob", back.item_id, back.claim_id, "bedroom", CLASSES, reviewers=3)
    assert item(third).truth == "bedroom" and item(third).status == "done"
    with engine.connect() as conn:
        assert len(conn.execute(select(review_verdicts.c.id)).all()) == 7
    # First and second verdicts: (kitchen, kitchen), (bedroom, bathroom), (bedroom, bedroom).
    assert cohen_kappa(queue.double_reviews(engine, ROLLOUT)) == pytest.approx((2 / 3 - 1 / 3) / (1 - 1 / 3))


def test_resolution_and_kappa_rules() -> None:
    assert resolve(["kitchen"], 1) == (1, "kitchen")
    assert resolve(["kitchen"], 2) == (2, None)
    assert resolve(["kitchen", "bedroom"], 2) == (3, None)
    assert resolve(["kitchen", "bedroom"], 2, reviewers=2) == (2, DISPUTED)  # nobody left to decide
    assert resolve(["kitchen", "bedroom", "bedroom"], 3) == (3, "bedroom")
    assert resolve(["kitchen", "bedroom", "bathroom"], 3) == (3, DISPUTED)
    # Cohen's kappa against a hand computation: 8 agreements in 10, chance 0.5 -> 0.6.
    pairs = [("a", "a")] * 4 + [("b", "b")] * 4 + [("a", "b"), ("b", "a")]
    assert cohen_kappa(pairs) == pytest.approx(0.6)
    assert cohen_kappa([]) is None


def reviewed_scenario(s, engine, store) -> None:
    """40 photos, every fourth a disagreement; the four oldest disagreements judged for the candidate."""
    for i in range(40):
        disagree = i % 4 == 0
        put(engine, store, T0 + i, "kitchen", "bedroom" if disagree else "kitchen",
            region="ap-south" if i % 2 else "eu-west", ood=["night_time"] if i % 8 == 0 else None)
    queue.fill(engine, s, ROLLOUT, photos=store, now=T0 + 1000)
    for _ in range(4):
        c = queue.claim_next(engine, "ann", 60, rollout_id=ROLLOUT)
        queue.submit(engine, "ann", c.item_id, c.claim_id, "bedroom", CLASSES)


def forget(engine, rollout: str) -> None:
    """Remove one rollout's rows (the suite's PostgreSQL is shared by other tests: no table is dropped)."""
    with engine.begin() as conn:
        for table in (review_verdicts, review_items, review_fill, review_counts, predictions):
            conn.execute(table.delete().where(table.c.rollout_id == rollout))


def test_review_sample_reads_the_frontier_counts_and_verdicts_as_of_a_moment(env) -> None:
    s, engine, store = env
    reviewed_scenario(s, engine, store)
    sample = review_sample(engine, s, ROLLOUT)
    with engine.connect() as conn:
        oldest_open = conn.execute(select(review_items.c.logged_at).where(review_items.c.reason == "disagreement",
                                                                          review_items.c.truth.is_(None))
                                   .order_by(review_items.c.logged_at)).scalars().first()
    assert oldest_open == T0 + 16 and sample.frontier == pytest.approx(T0 + 16, abs=1e-3)
    assert sum(r.n for r in sample.counts) == 40 and sum(r.n for r in sample.counts if r.settled) == 16
    assert sum(r.n for r in sample.counts if r.cell.ood == "night_time") == 5
    assert len(sample.verdicts) == 4 and {v.pi for v in sample.verdicts} == {1.0}
    assert all(v.candidate == v.truth != v.champion for v in sample.verdicts)

    result = analyse("quality", AnalysisSpec(margin=0.05), sample)
    assert result.estimate == pytest.approx(4 / 16) and result.n == 4 and result.discordant == 4

    with engine.connect() as conn:
        resolved = sorted(conn.execute(select(review_items.c.resolved_at).where(review_items.c.truth.is_not(None))).scalars())
    before = review_sample(engine, s, ROLLOUT, as_of=resolved[1])
    assert len(before.verdicts) == 2 and before.frontier == pytest.approx(T0 + 8, abs=1e-3)
    assert evidence(engine, s, ROLLOUT, as_of=resolved[1])["reviewed"] == 2
    assert evidence(engine, s, ROLLOUT)["reviewed"] == 4


def test_the_weighted_estimates_read_up_to_the_oldest_open_item_of_any_stratum_now_and_as_of(env) -> None:
    """The queue served the four oldest disagreements and no agreement: the oldest queued agreement holds the
    common frontier back behind the disagreements' one, and the counts the weighted estimates read stop there,
    read now (from the kept counts) as at the same moment in the past."""
    s, engine, store = env
    reviewed_scenario(s, engine, store)
    sample = review_sample(engine, s, ROLLOUT)
    it = review_items.c
    with engine.connect() as conn:
        oldest_open = conn.execute(select(func.min(it.logged_at)).where(it.truth.is_(None))).scalar()
    assert oldest_open < T0 + 16  # an agreement, older than the oldest open disagreement
    assert sample.common_frontier == pytest.approx(oldest_open, abs=1e-3) and sample.common_frontier < sample.frontier
    assert sum(r.n for r in sample.counts if r.common) == oldest_open - T0  # photos logged at T0, T0 + 1, ...
    assert all(r.settled for r in sample.counts if r.common)
    result = analyse("quality", AnalysisSpec(margin=0.05), sample)
    assert result.models["champion"]["covers_to"] == sample.common_frontier
    as_rows = lambda smp: Counter((r.stratum, r.cell, r.discordant, r.settled, r.common, r.n) for r in smp.counts)  # noqa: E731
    then = review_sample(engine, s, ROLLOUT, as_of=time.time())
    assert then.common_frontier == sample.common_frontier and as_rows(then) == as_rows(sample)

    while (c := queue.claim_next(engine, "ann", 60, rollout_id=ROLLOUT)) is not None:
        queue.submit(engine, "ann", c.item_id, c.claim_id, "kitchen", CLASSES)
    done = review_sample(engine, s, ROLLOUT)
    assert done.common_frontier == done.frontier and sum(r.n for r in done.counts if r.common) == 40


def test_a_later_sample_adds_only_the_rows_settled_since_to_the_counts_kept_in_the_database(env) -> None:
    from collections import Counter

    s, engine, store = env
    reviewed_scenario(s, engine, store)
    first = review_sample(engine, s, ROLLOUT)

    def kept_row():  # noqa: ANN202
        with engine.connect() as conn:
            return conn.execute(select(review_counts).where(review_counts.c.rollout_id == ROLLOUT)).one()

    assert kept_row().edge == first.frontier
    # More traffic, and every open item judged: the frontier moves past rows the first sample left unsettled.
    for i in range(40, 60):
        put(engine, store, T0 + i, "kitchen", "bedroom" if i % 4 == 0 else "kitchen", region="us-east")
    queue.fill(engine, s, ROLLOUT, photos=store, now=T0 + 2000)
    while (c := queue.claim_next(engine, "ann", 60, rollout_id=ROLLOUT)) is not None:
        queue.submit(engine, "ann", c.item_id, c.claim_id, "kitchen", CLASSES)
    kept = review_sample(engine, s, ROLLOUT)
    assert kept_row().edge == kept.frontier > first.frontier
    with engine.begin() as conn:
        conn.execute(review_counts.delete())
    recounted = review_sample(engine, s, ROLLOUT)
    as_rows = lambda sample: Counter((r.stratum, r.cell, r.discordant, r.champion_answered, r.candidate_answered,  # noqa: E731
                                      r.settled, r.n) for r in sample.counts)
    assert kept.frontier == recounted.frontier
    assert as_rows(kept) == as_rows(recounted) and sum(r.n for r in kept.counts) == 60

    # A verdict undone reopens its photo (as /api/undo does): the frontier steps back before it, and the
    # kept counts with it.
    it = review_items.c
    with engine.begin() as conn:
        reopened = conn.execute(select(it.id, it.logged_at).where(it.reason == "disagreement")
                                .order_by(it.logged_at.desc())).first()
        conn.execute(review_items.update().where(it.id == reopened.id)
                     .values(status="pending", truth=None, resolved_at=None, reviews_done=0))
    back = review_sample(engine, s, ROLLOUT)
    assert first.frontier < back.frontier < reopened.logged_at < kept.frontier
    with engine.begin() as conn:
        conn.execute(review_counts.delete())
    assert as_rows(back) == as_rows(review_sample(engine, s, ROLLOUT))

    # A new reading starts from the kept counts, whoever kept them: planted counts show through.
    row = kept_row()
    planted = [[*r[:7], r[7] + 1000, r[8] + 1000] if i == 0 else r for i, r in enumerate(row.counts)]
    with engine.begin() as conn:
        conn.execute(review_counts.update().values(counts=planted))
    put(engine, store, T0 + 60, "kitchen", "kitchen", region="us-east")
    assert sum(r.n for r in review_sample(engine, s, ROLLOUT).counts) == 61 + 1000


def test_review_sample_is_the_same_on_postgres(env, postgres_url: str, tmp_path: Path) -> None:
    s, engine, store = env
    reviewed_scenario(s, engine, store)
    pg = create_engine(postgres_url)
    metadata.create_all(pg)
    forget(pg, ROLLOUT)
    try:
        reviewed_scenario(s, pg, PhotoStore(tmp_path / "pg-photos"))
        a, b = review_sample(engine, s, ROLLOUT), review_sample(pg, s, ROLLOUT)
        # Request ids, and so the agreements sampled, differ between the two: the common frontier with them.
        def merged(smp: ReviewSample) -> Counter:
            out: Counter = Counter()
            for r in smp.counts:
                out[replace(r, n=0, common=False)] += r.n
            return out

        assert merged(a) == merged(b)
        for smp in (a, b):
            assert sum(r.n for r in smp.counts if r.common) == math.ceil(smp.common_frontier - T0)
        assert [(v.cell, v.truth, v.logged_at) for v in a.verdicts] == [(v.cell, v.truth, v.logged_at) for v in b.verdicts]
        assert a.frontier == pytest.approx(b.frontier)
    finally:
        forget(pg, ROLLOUT)
        pg.dispose()


@pytest.mark.parametrize("at_half", ["filler", "reader"])
def test_the_disagreement_rate_the_analysis_scales_by_is_the_one_the_sample_was_drawn_at(env, tmp_path: Path,
                                                                                          at_half: str) -> None:
    """The paired analysis scaled the reviewed disagreements by the rate configured in the process reading
    them, whatever rate the filler drew the sample at and its items recorded: a share changed during the
    rollout, or set for one service and not the other, multiplied the estimate by their ratio. The sample
    reads at the smallest rate either knows, keeping the verdicts a draw at that rate would have queued."""
    from monitoring.review.sampling import unit

    s, engine, store = env
    half = settings_for(tmp_path / "half", ROOMSIGHT_REVIEW__DISAGREEMENT_SHARE="0.5")
    filler, reader = (half, s) if at_half == "filler" else (s, half)
    keys = [f"P{i}" for i in range(200)]
    below = [k for k in keys if unit(k) < 0.5][:8]
    above = [k for k in keys if unit(k) >= 0.5][:8]
    for i, key in enumerate(below + above):  # 16 disagreements, the candidate right on each, and 16 agreements
        put(engine, store, T0 + 2 * i, "kitchen", "bedroom", photo_id=key)
        put(engine, store, T0 + 2 * i + 1, "kitchen", "kitchen", photo_id=f"A{i}")
    queue.fill(engine, filler, ROLLOUT, photos=store, now=T0 + 1000)
    while (c := queue.claim_next(engine, "ann", 60, rollout_id=ROLLOUT)) is not None:
        with engine.connect() as conn:
            reason = conn.execute(select(review_items.c.reason).where(review_items.c.id == c.item_id)).scalar_one()
        queue.submit(engine, "ann", c.item_id, c.claim_id, "bedroom" if reason == "disagreement" else "kitchen", CLASSES)
    sample = review_sample(engine, reader, ROLLOUT)
    # At 0.5 only the photos numbered below 0.5 count, each standing for two: 8 x 2 of the 32 photos.
    assert sample.rates["disagreement"] == 0.5
    assert sorted(v.pi for v in sample.verdicts if v.stratum == "disagreement") == [0.5] * 8
    assert analyse("q", AnalysisSpec(margin=0.05), sample).estimate == pytest.approx(2 * 8 / 32)


def test_a_photo_sent_again_is_one_photo_in_the_sample(env) -> None:
    """The queue keeps one item per photo_id, but the counts took every send: each repeat of a reviewed
    disagreement stood as a sampled photo with no difference between the models, so a candidate worse on
    every disagreement looked half as bad when each was sent three times."""
    s, engine, store = env
    for i in range(10):  # disagreements the champion gets right, each sent three times
        for k in range(3):
            put(engine, store, T0 + 100 * k + i, "kitchen", "bedroom", photo_id=f"D{i}")
    for i in range(10):
        put(engine, store, T0 + 50 + i, "kitchen", "kitchen", photo_id=f"A{i}")
    queue.fill(engine, s, ROLLOUT, photos=store, now=T0 + 1000)
    while (c := queue.claim_next(engine, "ann", 60, rollout_id=ROLLOUT)) is not None:
        queue.submit(engine, "ann", c.item_id, c.claim_id, "kitchen", CLASSES)
    sample = review_sample(engine, s, ROLLOUT)
    assert sum(r.n for r in sample.counts) == 20 and len([v for v in sample.verdicts if v.stratum == "disagreement"]) == 10
    assert analyse("q", AnalysisSpec(margin=0.05), sample).estimate == pytest.approx(-10 / 20)
    replayed = review_sample(engine, s, ROLLOUT, as_of=T0 + 10_000)  # the past's counts read the same rule
    assert sum(r.n for r in replayed.counts) == 20


def test_a_sampled_photo_never_kept_is_recorded_unseen_and_read_as_the_worst_case(env) -> None:
    """The fill queued only photos the store held and moved past the others, which the counts still took:
    each sampled disagreement whose photo was lost (dropped under load, kept on another node) stood in the
    paired analysis as a sampled photo with no difference between the models, so a rollout losing most of
    its photos passed on the few it kept. It is recorded as unseen, and read as the worst case."""
    s, engine, store = env
    lost = []
    for i in range(20):  # disagreements; the candidate is right on the five whose photos are kept
        rid = put(engine, store, T0 + i, "kitchen", "bedroom", photo_id=f"D{i}")
        if i >= 5:
            lost.append(rid)
            store._path(rid).unlink()
    for i in range(400):
        put(engine, store, T0 + 20 + i, "kitchen", "kitchen", photo_id=f"A{i}")
    recent = put(engine, store, T0 + 990, "kitchen", "bedroom", photo_id="R")  # within settle_s: not yet given up
    store._path(recent).unlink()
    queue.fill(engine, s, ROLLOUT, photos=store, now=T0 + 1000)
    with engine.connect() as conn:
        unseen = set(conn.execute(select(review_unseen.c.request_id)).scalars())
    assert unseen == set(lost)
    store.put(recent, jpeg(1))  # written late, within the settle window: queued by the next fill
    queue.fill(engine, s, ROLLOUT, photos=store, now=T0 + 1010)
    assert queued(engine)[recent] == "disagreement"
    while (c := queue.claim_next(engine, "ann", 60, rollout_id=ROLLOUT)) is not None:
        with engine.connect() as conn:
            reason = conn.execute(select(review_items.c.reason).where(review_items.c.id == c.item_id)).scalar_one()
        queue.submit(engine, "ann", c.item_id, c.claim_id, "bedroom" if reason == "disagreement" else "kitchen", CLASSES)

    sample = review_sample(engine, s, ROLLOUT)
    assert len(sample.unseen) == 15 and {u.stratum for u in sample.unseen} == {"disagreement"}
    spec = AnalysisSpec(margin=0.02, alpha=0.1)
    as_ties = analyse("q", spec, replace(sample, unseen=()))
    result = analyse("q", spec, sample)
    assert as_ties.outcome == "pass"  # what the sample read before
    assert result.outcome == "inconclusive" and "15 sampled disagreements never kept" in result.summary
    assert result.lower < as_ties.lower and result.upper > as_ties.upper and result.estimate == as_ties.estimate
    assert review_sample(engine, s, ROLLOUT, as_of=T0 + 999).unseen == ()  # recorded at T0 + 1000

    from typer.testing import CliRunner

    from shell.cli import app

    told = CliRunner().invoke(app, ["review", "stats", "--rollout", ROLLOUT], env={"ROOMSIGHT_HOME": str(s.home)})
    assert told.exit_code == 0 and "15 sampled photo(s) never kept for review" in told.output, told.output


def test_a_sampled_photo_not_yet_kept_holds_the_frontier_before_it(env) -> None:
    """Photos are written off the request path, after their row is logged. A sampled disagreement whose photo
    was not on disk yet was neither queued nor unseen, yet the fill's settled_to passed it, and with no item
    open the frontier did too: the analysis read it as a sampled photo with no difference between the models
    until a later fill queued it or gave it up."""
    s, engine, store = env
    judged = put(engine, store, T0, "kitchen", "bedroom")
    waiting = put(engine, store, T0 + 5, "kitchen", "bedroom")
    store._path(waiting).unlink()  # not written yet
    assert queue.fill(engine, s, ROLLOUT, photos=store, now=T0 + 10) == 1 and set(queued(engine)) == {judged}
    c = queue.claim_next(engine, "ann", 60, rollout_id=ROLLOUT)
    queue.submit(engine, "ann", c.item_id, c.claim_id, "bedroom", CLASSES)
    sample = review_sample(engine, s, ROLLOUT)
    assert sample.frontier is not None and T0 <= sample.frontier < T0 + 5
    assert sum(row.n for row in sample.counts if row.settled) == 1
    store.put(waiting, jpeg(1))
    assert queue.fill(engine, s, ROLLOUT, photos=store, now=T0 + 20) == 1 and waiting in queued(engine)


def test_rows_written_behind_the_watermark_are_neither_counted_nor_drawn(env) -> None:
    """A row written after the fill had moved past its time (replayed from a journal, held through an
    outage) was never drawn, yet a reading that grouped the log afresh counted it: a sampled disagreement
    among them stood as a sampled tie. The writer marks such rows late, and the sample leaves them out."""
    s, engine, store = env
    for i in range(10):
        put(engine, store, T0 + i, "kitchen", "bedroom")
        put(engine, store, T0 + 10 + i, "kitchen", "kitchen")
    queue.fill(engine, s, ROLLOUT, photos=store, now=T0 + 1000)
    before = review_sample(engine, s, ROLLOUT)
    late = [put(engine, store, T0 + 20 + i, "kitchen", "bedroom", late=True) for i in range(5)]
    assert queue.fill(engine, s, ROLLOUT, photos=store, now=T0 + 1001) == 0
    assert not set(late) & set(queued(engine))
    with engine.begin() as conn:  # the counts grouped afresh, as the first reader of a rollout does
        conn.execute(review_counts.delete())
    for sample in (review_sample(engine, s, ROLLOUT), review_sample(engine, s, ROLLOUT, as_of=T0 + 2000)):
        assert sum(r.n for r in sample.counts) == sum(r.n for r in before.counts) == 20


def test_a_row_a_slower_replica_writes_behind_the_last_fill_is_counted(env) -> None:
    """The counts kept everything up to the fill's settled_to (the last row it read) as final, but another
    replica's row of a moment before can be written after the fill, in time to be drawn by the next one:
    the kept counts never took it, and a reading that grouped the log afresh did. They are kept up to the
    fill's watermark, behind which a row written afterwards is late and outside the sample."""
    s, engine, store = env
    for i in range(10):
        put(engine, store, T0 + i, "kitchen", "bedroom" if i % 2 else "kitchen")
    queue.fill(engine, s, ROLLOUT, photos=store, now=T0 + 10)
    assert sum(r.n for r in review_sample(engine, s, ROLLOUT).counts) == 10
    slow = put(engine, store, T0 + 5.5, "kitchen", "bedroom")  # flushed a little later by another replica
    queue.fill(engine, s, ROLLOUT, photos=store, now=T0 + 12)
    assert slow in queued(engine)
    kept = review_sample(engine, s, ROLLOUT)
    with engine.begin() as conn:
        conn.execute(review_counts.delete())
    fresh = review_sample(engine, s, ROLLOUT)
    assert sum(r.n for r in kept.counts) == sum(r.n for r in fresh.counts) == 11
    assert sorted(map(repr, kept.counts)) == sorted(map(repr, fresh.counts))


def test_a_photos_stratum_is_the_same_in_python_and_sql_at_the_low_confidence_bound(tmp_path: Path) -> None:
    """`stratum_of` (the fill) and `stratum_sql` (the counts the analyses weight by) are one rule: a photo both
    models call alike is low-confidence when `unsure` or scored below review.low_confidence, a spot check at
    it. Told apart, a photo was drawn at one stratum's rate and counted in another's population."""
    from monitoring.review.sampling import stratum_of, stratum_sql

    cases = [(True, "kitchen", 0.99), (False, UNSURE, 0.9), (False, "kitchen", 0.49), (False, "kitchen", 0.5),
             (False, "kitchen", 0.9), (None, "kitchen", 0.5)]
    expected = ["disagreement", "low_confidence", "low_confidence", "spot_check", "spot_check", "spot_check"]
    assert [stratum_of(d, label, score, 0.5) for d, label, score in cases] == expected
    engine = create_engine(f"sqlite:///{tmp_path / 'strata.db'}")
    metadata.create_all(engine)
    with engine.begin() as conn:
        for i, (d, label, score) in enumerate(cases):
            conn.execute(insert(predictions).values(request_id=str(i), ts=float(i), rollout_id=ROLLOUT, stage="shadow",
                                                    listing_id="L", region="eu-west", served_by="champion", label=label,
                                                    score=score, latency_ms=1.0, disagreement=d))
        assert conn.execute(select(stratum_sql(0.5)).order_by(predictions.c.ts)).scalars().all() == expected


def test_the_reserve_falls_due_on_every_whole_share_of_claims() -> None:
    """A reserve of 0.29 is due 29 times in 100 claims, though 0.29 * 100 is 28.999999999999996 in floats."""
    from monitoring.review.order import due

    assert [due(0.29, 100), due(0.35, 180), due(0.25, 4), due(0.25, 3), due(0.0, 50)] == [29, 63, 1, 0, 0]


def test_a_replay_holds_the_frontier_before_a_photo_recorded_unseen_after_its_moment(env) -> None:
    """A replay counted only the photos recorded unseen by its moment, but took its frontier from the fill's
    position today: a sampled disagreement given up later was, at the moment replayed, neither queued nor
    unseen, and read as a sampled tie where the live frontier had held before it."""
    import time

    s, engine, store = env
    judged = put(engine, store, T0, "kitchen", "bedroom")
    waiting = put(engine, store, T0 + 5, "kitchen", "bedroom")
    store._path(waiting).unlink()  # never written
    assert queue.fill(engine, s, ROLLOUT, photos=store, now=T0 + 10) == 1 and set(queued(engine)) == {judged}
    c = queue.claim_next(engine, "ann", 60, rollout_id=ROLLOUT)
    queue.submit(engine, "ann", c.item_id, c.claim_id, "bedroom", CLASSES)
    live = review_sample(engine, s, ROLLOUT)
    moment = time.time() + 1
    queue.fill(engine, s, ROLLOUT, photos=store, now=moment + 100)  # gives the photo up after the moment
    with engine.connect() as conn:
        assert set(conn.execute(select(review_unseen.c.request_id)).scalars()) == {waiting}
    replayed = review_sample(engine, s, ROLLOUT, as_of=moment)
    assert replayed.unseen == () and replayed.frontier is not None and replayed.frontier < T0 + 5
    assert sum(r.n for r in replayed.counts if r.settled) == sum(r.n for r in live.counts if r.settled) == 1


def test_a_rate_the_filler_drew_at_counts_from_its_first_item_queued_not_its_first_verdict(env, tmp_path: Path) -> None:
    """The filler draws disagreements at 0.05, the reader is configured at 1. Until an item drawn at 0.05 had
    its verdict, the reader scaled by 1: the disagreements not drawn, logged before the first one drawn (open,
    so the frontier stops before it), read as photos sampled with no difference, and a candidate wrong on
    every disagreement passed on no verdict at all."""
    from monitoring.review.sampling import unit

    s, engine, store = env
    filler = settings_for(tmp_path / "low", ROOMSIGHT_REVIEW__DISAGREEMENT_SHARE="0.05")
    keys = [f"P{i}" for i in range(2000)]
    missed = [k for k in keys if unit(k) >= 0.05][:150]
    drawn = next(k for k in keys if unit(k) < 0.05)
    for i, key in enumerate([*missed, drawn]):
        put(engine, store, T0 + 3 * i, "kitchen", "bedroom", photo_id=key)
        put(engine, store, T0 + 3 * i + 1, "kitchen", "kitchen", photo_id=f"A{i}")
    queue.fill(engine, filler, ROLLOUT, photos=store, now=T0 + 10_000)
    sample = review_sample(engine, s, ROLLOUT)
    assert sample.rates["disagreement"] == 0.05 and sample.verdicts == ()
    assert analyse("q", AnalysisSpec(margin=0.05), sample).outcome == "inconclusive"
    assert review_sample(engine, s, ROLLOUT, as_of=T0 + 10_000).rates["disagreement"] == 0.05


def test_a_rate_the_filler_drew_at_counts_before_any_photo_drawn_at_it(env, tmp_path: Path) -> None:
    """As above, with no disagreement drawn at 0.05 yet: no item records the rate, the fill does."""
    from monitoring.review.sampling import unit

    s, engine, store = env
    filler = settings_for(tmp_path / "low", ROOMSIGHT_REVIEW__DISAGREEMENT_SHARE="0.05")
    for i, key in enumerate([k for k in (f"P{i}" for i in range(2000)) if unit(k) >= 0.05][:150]):
        put(engine, store, T0 + 3 * i, "kitchen", "bedroom", photo_id=key)
        put(engine, store, T0 + 3 * i + 1, "kitchen", "kitchen", photo_id=f"A{i}")
    queue.fill(engine, filler, ROLLOUT, photos=store, now=T0 + 10_000)
    assert "disagreement" not in queued(engine).values()
    sample = review_sample(engine, s, ROLLOUT)
    assert sample.rates["disagreement"] == 0.05
    assert analyse("q", AnalysisSpec(margin=0.05), sample).outcome == "inconclusive"
    # A later fill at a higher rate does not raise it: the photos passed over stay passed over.
    queue.fill(engine, s, ROLLOUT, photos=store, now=T0 + 20_000)
    assert review_sample(engine, s, ROLLOUT).rates["disagreement"] == 0.05

"""The stratum rule's threshold (review.low_confidence) is the rollout's, pinned at its first fill: a filler
and a reader configured otherwise (or a setting changed mid-rollout) once drew a photo in one stratum and
counted it in another, so the weighted estimates scaled verdicts by populations they were not drawn from.
On a real SQLite log; no Ray."""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import Column, Float, MetaData, String, Table, create_engine, insert, select

from analysis.weighted import model_estimates
from monitoring.review import queue, sampling
from monitoring.review.evidence import review_sample
from monitoring.review.photos import PhotoStore
from monitoring.review.sampling import stratum_of
from roomsight import db
from roomsight.tables import metadata, predictions, review_counts, review_fill, review_items
from roomsight.verdicts import UNSURE
from tests.conftest import settings_for
from tests.test_review_queue import CLASSES, ROLLOUT, jpeg

T0 = 1_700_000_000.0
# (champion, candidate, served score): a disagreement, then agreements low-confidence at 0.5 and at 0.9,
# one between the two thresholds (a spot check at 0.5, low-confidence at 0.9), a sure one, an `unsure`.
KINDS = (("kitchen", "bedroom", 0.7), ("kitchen", "kitchen", 0.3), ("kitchen", "kitchen", 0.7),
         ("kitchen", "kitchen", 0.95), (UNSURE, UNSURE, 0.95))


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch) -> None:
    """The warning is said once per process and rollout: each test is a process of its own."""
    monkeypatch.setattr(sampling, "_said", set(), raising=False)


@pytest.fixture
def env(tmp_path: Path):
    common = {"ROOMSIGHT_REVIEW__SPOT_CHECK_SHARE": "0.5", "ROOMSIGHT_REVIEW__SETTLE_S": "60"}
    a = settings_for(tmp_path / "a", ROOMSIGHT_REVIEW__LOW_CONFIDENCE="0.5", **common)
    b = settings_for(tmp_path / "b", ROOMSIGHT_REVIEW__LOW_CONFIDENCE="0.9", **common)
    engine = create_engine(f"sqlite:///{tmp_path / 'roomsight.db'}", connect_args={"timeout": 30, "check_same_thread": False})
    metadata.create_all(engine)
    yield a, b, engine, PhotoStore.for_settings(a)
    engine.dispose()


def log_photos(engine, store, start: int, n: int) -> None:
    """n compared photos logged a second apart from T0 + start, cycling through KINDS and two regions."""
    for i in range(start, start + n):
        champion, candidate, score = KINDS[i % len(KINDS)]
        rid = str(uuid.uuid4())
        with engine.begin() as conn:
            conn.execute(insert(predictions).values(
                request_id=rid, ts=T0 + i, rollout_id=ROLLOUT, stage="shadow", listing_id="L", photo_id=f"P{i}",
                region=("eu-west", "ap-south")[i % 2], served_by="champion", label=champion, score=score,
                latency_ms=1.0, champion_label=champion, candidate_label=candidate, shadow="candidate",
                shadow_status="ok", disagreement=champion != candidate, ood={"flags": []}))
        store.put(rid, jpeg(i % 97))


def recount(engine, low: float) -> Counter:
    """The log counted row by row with the stratum rule at `low`: (stratum, region, class) -> n."""
    p = predictions.c
    with engine.connect() as conn:
        rows = conn.execute(select(p.disagreement, p.label, p.score, p.region, p.champion_label)
                            .where(p.rollout_id == ROLLOUT)).all()
    return Counter((stratum_of(d, label, score, low), region, champ) for d, label, score, region, champ in rows)


def drawn(engine) -> dict[str, tuple[str, float]]:
    """Each queued photo's stratum and inclusion probability."""
    it = review_items.c
    with engine.connect() as conn:
        return {key: (reason, pi) for key, reason, pi in conn.execute(select(it.photo_key, it.reason, it.pi))}


def rule(engine, low: float, rates: dict[str, float]) -> dict[str, tuple[str, float]]:
    """The strata (and rates) each logged photo falls in by the rule at `low`."""
    p = predictions.c
    with engine.connect() as conn:
        rows = conn.execute(select(p.photo_id, p.disagreement, p.label, p.score).where(p.rollout_id == ROLLOUT)).all()
    return {key: (s, rates[s]) for key, d, label, score in rows for s in [stratum_of(d, label, score, low)]}


def review_all(engine) -> None:
    """Every queued photo judged a kitchen: the champion is right on all but the `unsure` ones, the
    candidate on the agreements it answered."""
    while (c := queue.claim_next(engine, "ann", 60, rollout_id=ROLLOUT)) is not None:
        queue.submit(engine, "ann", c.item_id, c.claim_id, "kitchen", CLASSES)


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "review.low_confidence" in r.getMessage()]


def test_a_reader_configured_otherwise_counts_the_strata_by_the_threshold_the_fill_drew_with(env, caplog) -> None:
    """Filled at 0.5, read at 0.9: the agreements scored 0.7 were drawn as spot checks (at 0.5) and are
    counted as spot checks. Counted at 0.9 they were low-confidence photos (a stratum drawn at 1 whose
    verdicts hold none of them), so its verdicts stood for them too: the champion's accuracy read 0.7 where
    the log's is 0.8."""
    a, b, engine, store = env
    log_photos(engine, store, 0, 60)
    queue.fill(engine, a, ROLLOUT, photos=store, now=T0 + 1000)
    review_all(engine)
    with caplog.at_level(logging.WARNING, logger="monitoring.review.sampling"):
        sample = review_sample(engine, b, ROLLOUT)
        again = review_sample(engine, b, ROLLOUT)
    assert recount(engine, 0.5) != recount(engine, 0.9)  # the two rules tell these photos apart
    counted: Counter = Counter()
    for r in sample.counts:
        counted[(r.stratum, r.cell.region, r.cell.predicted_class)] += r.n
    assert +counted == recount(engine, 0.5)
    assert sorted(map(repr, again.counts)) == sorted(map(repr, sample.counts))  # from the counts kept, alike
    # Each verdict stands in the stratum, and at the rate, A's rule gives its photo.
    by_rule, items = rule(engine, 0.5, sample.rates), drawn(engine)
    assert len(sample.verdicts) == len(items) and {v.stratum for v in sample.verdicts} == set(sample.rates)
    assert all(by_rule[key] == got for key, got in items.items())
    # Every stratum's verdicts are exact (all reviewed, or all right): the estimate is the log's own share.
    right = sum(n for (s, _, champion), n in recount(engine, 0.5).items() if champion == "kitchen")
    estimate = model_estimates(sample)["champion"].accuracy.value
    assert estimate == pytest.approx(right / 60)
    with engine.connect() as conn:
        assert conn.execute(select(review_counts.c.low_confidence)).scalars().all() == [0.5]
    said = warnings_of(caplog)
    assert len(said) == 1 and "0.9" in said[0] and "0.5" in said[0], said


def test_a_later_fill_configured_otherwise_draws_by_the_threshold_of_the_first(env, caplog) -> None:
    """A fills first at 0.5, B fills the next traffic at 0.9: B queues the agreements scored 0.7 as spot
    checks at 0.5, as A would have, not all of them as low-confidence photos; it says so once."""
    from monitoring.review.sampling import unit

    a, b, engine, store = env
    log_photos(engine, store, 0, 30)
    queue.fill(engine, a, ROLLOUT, photos=store, now=T0 + 1000)
    log_photos(engine, store, 30, 30)
    with caplog.at_level(logging.WARNING, logger="monitoring.review.sampling"):
        queue.fill(engine, b, ROLLOUT, photos=store, now=T0 + 2000)
        queue.fill(engine, b, ROLLOUT, photos=store, now=T0 + 3000)
    rates = {s: a.review.rate(s) for s in ("disagreement", "low_confidence", "spot_check")}
    by_a, by_b = rule(engine, 0.5, rates), rule(engine, 0.9, rates)
    due_a = {k: d for k, d in by_a.items() if unit(k) < d[1]}
    assert due_a != {k: d for k, d in by_b.items() if unit(k) < d[1]}  # the two rules draw otherwise
    assert drawn(engine) == due_a
    with engine.connect() as conn:
        assert conn.execute(select(review_fill.c.low_confidence)).scalar_one() == 0.5
    assert len(warnings_of(caplog)) == 1


def test_a_fill_row_from_before_the_threshold_was_kept_is_upgraded_and_read_by_each_process_setting(tmp_path: Path,
                                                                                                     caplog) -> None:
    """A database whose review_fill has no low_confidence gets the column at start-up (roomsight.db.migrate).
    Its rollout keeps no threshold (NULL: unknown, so the old behaviour): each fill draws, and each reader
    counts, by its own setting, and nothing is pinned after the fact."""
    from monitoring.review.sampling import unit

    a = settings_for(tmp_path / "a", ROOMSIGHT_REVIEW__LOW_CONFIDENCE="0.5", ROOMSIGHT_REVIEW__SETTLE_S="60")
    b = settings_for(tmp_path / "b", ROOMSIGHT_REVIEW__LOW_CONFIDENCE="0.9", ROOMSIGHT_REVIEW__SETTLE_S="60")
    store = PhotoStore.for_settings(a)
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    metadata.create_all(engine, tables=[t for t in metadata.sorted_tables if t.name != "review_fill"])
    before = Table("review_fill", MetaData(), Column("rollout_id", String(36), primary_key=True),
                   Column("watermark", Float, nullable=False), Column("settled_to", Float, nullable=False),
                   Column("updated_at", Float, nullable=False), Column("disagreement_rate", Float))
    before.create(engine)
    log_photos(engine, store, 0, 30)
    with engine.begin() as conn:
        conn.execute(insert(before).values(rollout_id=ROLLOUT, watermark=T0 + 29, settled_to=T0 + 29, updated_at=0.0,
                                           disagreement_rate=1.0))
    assert "added column review_fill.low_confidence" in db.migrate(engine)
    log_photos(engine, store, 30, 30)
    with caplog.at_level(logging.WARNING, logger="monitoring.review.sampling"):
        queue.fill(engine, b, ROLLOUT, photos=store, now=T0 + 1000)
        for settings, low in ((a, 0.5), (b, 0.9)):
            counted: Counter = Counter()
            for r in review_sample(engine, settings, ROLLOUT).counts:
                counted[(r.stratum, r.cell.region, r.cell.predicted_class)] += r.n
            assert +counted == recount(engine, low)
    rates = {s: b.review.rate(s) for s in ("disagreement", "low_confidence", "spot_check")}
    assert drawn(engine) == {k: d for k, d in rule(engine, 0.9, rates).items() if int(k[1:]) >= 30 and unit(k) < d[1]}
    with engine.connect() as conn:
        assert conn.execute(select(review_fill.c.low_confidence, review_fill.c.watermark)).one() == (None, T0 + 59)
    assert warnings_of(caplog) == []
    engine.dispose()


def test_two_first_fills_at_once_configured_otherwise_draw_by_the_threshold_recorded_first(env, caplog,
                                                                                             monkeypatch) -> None:
    """B, the rollout's first fill, at 0.9, has recorded its threshold and not drawn yet when A, at 0.5,
    fills the whole rollout. Each used to draw by its own rule, A's photos standing in strata the rollout's
    counts do not follow: both draw by B's, recorded first, and A says so, once."""
    from monitoring.review.sampling import unit

    a, b, engine, store = env
    log_photos(engine, store, 0, 30)
    rollout_low, meanwhile = sampling.rollout_low, [a]

    def a_fills_first(*args):  # noqa: ANN002 - B's threshold is in hand, its draw to come
        if meanwhile:
            queue.fill(engine, meanwhile.pop(), ROLLOUT, photos=store, now=T0 + 1000)
        return rollout_low(*args)

    monkeypatch.setattr(sampling, "rollout_low", a_fills_first)
    with caplog.at_level(logging.WARNING, logger="monitoring.review.sampling"):
        queue.fill(engine, b, ROLLOUT, photos=store, now=T0 + 1000)
    assert not meanwhile
    rates = {s: b.review.rate(s) for s in ("disagreement", "low_confidence", "spot_check")}
    due_a, due_b = ({k: d for k, d in rule(engine, low, rates).items() if unit(k) < d[1]} for low in (0.5, 0.9))
    assert due_a != due_b  # the two rules draw otherwise
    assert drawn(engine) == due_b
    with engine.connect() as conn:
        assert conn.execute(select(review_fill.c.low_confidence)).scalar_one() == 0.9
    said = warnings_of(caplog)
    assert len(said) == 1 and "0.5" in said[0] and "0.9" in said[0], said

"""The review sample's counts kept in the database (monitoring.review.cell_counts), on SQLite: a reading
from the kept counts is the full grouping of the log, whatever the frontiers, the fill and the processes
that kept them did before, and it groups only the rows between each kept frontier and the one now, not the
agreements' backlog between the common frontier and the frontier."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Column, Engine, Float, MetaData, String, Table, create_engine, event, func, insert, select, text, update
from sqlalchemy.types import JSON

from monitoring.review.cell_counts import CellCounts, ood_flag
from monitoring.review.sampling import compared_sql, first_of_photo_sql, stratum_sql
from roomsight import db
from roomsight.tables import metadata, predictions, review_counts
from roomsight.verdicts import UNSURE

RID, LOW, T0 = "r-counts", 0.5, 1_700_000_000.0
LABELS = ("kitchen", "bedroom", UNSURE)


def sqlite(path) -> Engine:  # noqa: ANN001
    engine = create_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def unsynced(dbapi_conn, _record) -> None:  # noqa: ANN001
        dbapi_conn.execute("PRAGMA synchronous = OFF")  # a scratch database: its many commits need not reach the disk

    return engine


@pytest.fixture
def engine(tmp_path) -> Iterator[Engine]:
    engine = sqlite(tmp_path / "counts.db")
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def log(engine: Engine, rows: list[dict]) -> None:
    """Logged predictions: `ts`, and optionally `candidate` (None: its shadow answer is on its way),
    `photo_id`, `late`; the rest drawn from the row's position so the cells vary."""
    values = []
    for i, r in enumerate(rows):
        champion, candidate = LABELS[i % 2], r.get("candidate", LABELS[(i // 3) % 3])
        values.append(dict(
            request_id=str(uuid.uuid4()), ts=r["ts"], rollout_id=RID, stage="shadow", listing_id="L",
            photo_id=r.get("photo_id"), region=("eu-west", "ap-south")[i % 2], served_by="champion", label=champion,
            score=(0.3, 0.9)[(i // 2) % 2], latency_ms=1.0, champion_label=champion, candidate_label=candidate,
            shadow="candidate", disagreement=None if candidate is None else champion != candidate,
            ood={"flags": ["night_time"] if i % 7 == 0 else []}, late=r.get("late")))
    if values:
        with engine.begin() as conn:
            conn.execute(insert(predictions), values)


def recount(engine: Engine, edge: float | None, common: float | None) -> Counter:
    """The counts from one GROUP BY of the whole rollout, as (cell, settled, common) -> n."""
    p = predictions.c
    keys = (stratum_sql(LOW), p.region, p.champion_label, ood_flag(), p.champion_label != p.candidate_label,
            p.champion_label != UNSURE, p.candidate_label != UNSURE)
    settled = p.ts <= (edge if edge is not None else -1.0)
    up_to_common = p.ts <= (min(common, edge) if common is not None and edge is not None else -1.0)
    q = (select(*keys, settled, up_to_common, func.count())
         .where(p.rollout_id == RID, compared_sql(), first_of_photo_sql()).group_by(*keys, settled, up_to_common))
    with engine.connect() as conn:
        return Counter({(s, region, champ, ood, bool(d), bool(a), bool(b), bool(is_settled), bool(is_common)): n
                        for s, region, champ, ood, d, a, b, is_settled, is_common, n in conn.execute(q)})


def read(engine: Engine, edge: float | None, final_to: float | None, watermark: float | None,
         common: float | None, counts: type = CellCounts) -> Counter:
    """A reading now, as recount() has it."""
    with engine.connect() as conn:
        rows = counts(conn, RID, LOW).now(edge, final_to, watermark, common)
    out: Counter = Counter()
    for r in rows:
        assert r.n > 0 and (r.settled or not r.common)
        out[(r.stratum, r.cell.region, r.cell.predicted_class, r.cell.ood, r.discordant, r.champion_answered,
             r.candidate_answered, r.settled, r.common)] += r.n
    return out


def kept_row(engine: Engine) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(select(review_counts)).one()._mapping)


def randomised_readings(engine: Engine, seed: int, steps: int, counts: type = CellCounts) -> Counter:
    """A rollout's readings in the order a running rollout gives them: rows keep arriving past the fill's
    watermark (some without their shadow answer yet, some photos sent again), rows written behind it are
    late; the watermark advances, and the frontier and the common frontier move forward and now and then
    back (a verdict undone). Between readings, another process reads with the fill as it stood before, the
    kept row goes, or a process from before the common counts were kept rewrites it. Every reading is
    checked against a full recount; returns how often each of those happened."""
    rnd = random.Random(seed)
    clock, watermark, final_to, edge, common = T0, T0, T0, T0, T0
    photos: list[str] = []
    previous = (final_to, watermark)
    saved_common = None
    seen: Counter = Counter()
    for step in range(steps):
        clock += rnd.uniform(5, 40)
        batch = []
        for _ in range(rnd.randrange(0, 40)):
            ts = rnd.uniform(watermark + 1e-3, clock)
            photo = rnd.choice(photos) if photos and rnd.random() < 0.15 else f"p{len(photos)}"
            photos.append(photo)
            batch.append({"ts": ts, "photo_id": photo, **({"candidate": None} if rnd.random() < 0.1 else {})})
        batch += [{"ts": rnd.uniform(T0, watermark), "late": True} for _ in range(rnd.randrange(0, 3))]
        log(engine, batch)
        if step == 0:  # before the first fill
            assert read(engine, None, None, None, None, counts) == recount(engine, None, None)
        with engine.begin() as conn:
            # Shadow answers land only past the watermark: settled_to stops before a row still waiting.
            waiting = conn.execute(select(predictions.c.request_id).where(predictions.c.candidate_label.is_(None))).scalars().all()
            conn.execute(update(predictions).where(predictions.c.request_id.in_([i for i in waiting if rnd.random() < 0.5]))
                         .values(candidate_label="kitchen", disagreement=False))
            oldest_waiting = conn.execute(select(func.min(predictions.c.ts)).where(
                predictions.c.rollout_id == RID, predictions.c.candidate_label.is_(None))).scalar()
        # The fill: settled_to stops before a row still waiting; the watermark never moves back.
        previous = (final_to, watermark)
        final_to = min(clock, oldest_waiting - 1e-6) if oldest_waiting is not None else clock
        watermark = max(watermark, min(final_to, clock - rnd.uniform(0, 60)))
        seen["frontier back"] += (back := rnd.random() < 0.1)
        edge = rnd.uniform(T0, final_to) if back else min(final_to, max(edge, rnd.uniform(edge, final_to)))
        seen["common frontier back"] += (back := rnd.random() < 0.15)
        common = rnd.uniform(T0, edge) if back else min(edge, rnd.uniform(common, edge) if rnd.random() < 0.8 else common)
        seen["common frontier past the watermark"] += common > watermark
        seen["no common frontier"] += (reading_common := None if rnd.random() < 0.05 else common) is None
        assert read(engine, edge, final_to, watermark, reading_common, counts) == recount(engine, edge, reading_common), step
        if rnd.random() < 0.2:  # another process, with the fill as it read it a moment ago
            seen["an earlier fill"] += 1
            then_edge = min(edge, previous[0])
            then_common = min(common, then_edge)
            assert (read(engine, then_edge, *previous, then_common, counts)
                    == recount(engine, then_edge, then_common)), step
        chance = rnd.random()
        if chance < 0.05:
            with engine.begin() as conn:
                conn.execute(review_counts.delete())
            saved_common = None  # what another process kept in the row now gone
            seen["kept row gone"] += 1
        elif chance < 0.15:  # kept before the common counts were
            with engine.begin() as conn:
                conn.execute(review_counts.update().values(common_to=None, common_counts=None))
            seen["no common counts kept"] += 1
        elif chance < 0.25 and saved_common is not None:  # a process from before them rewrote the rest
            with engine.begin() as conn:
                conn.execute(review_counts.update().values(**saved_common))
            seen["earlier common counts kept"] += 1
        elif chance < 0.35:
            row = kept_row(engine)
            saved_common = {"common_to": row["common_to"], "common_counts": row["common_counts"]}
    return seen


def test_a_reading_from_the_kept_counts_is_the_full_grouping_of_the_log(engine) -> None:
    seen = randomised_readings(engine, seed=8, steps=30)
    assert len(+seen) == 8, seen  # every turn of events happened


@contextmanager
def rows_grouped(engine: Engine) -> Iterator[list[int]]:
    """The predictions each GROUP BY of the log counted while the block ran, one entry per statement: each
    statement is captured as it runs and run again afterwards (the log unchanged) to sum its counts."""
    seen: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        if "GROUP BY" in statement and "FROM predictions" in statement:
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    grouped: list[int] = []
    try:
        yield grouped
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    with engine.connect() as conn:
        grouped += [sum(row[-1] for row in conn.exec_driver_sql(statement, parameters)) for statement, parameters in seen]


def backlog(engine: Engine, rows: int) -> None:
    """`rows` compared predictions one second apart from T0, every one past its fill."""
    log(engine, [{"ts": T0 + i, "candidate": "kitchen"} for i in range(rows)])


def test_a_reading_groups_the_rows_the_common_frontier_moved_over_not_the_backlog_behind_the_frontier(engine) -> None:
    """300 agreements logged between the common frontier and the frontier: a reading after the common
    frontier moved 5 rows forward groups those 5, one after a verdict undone moved it 3 back groups those
    3, and one where nothing moved groups none."""
    backlog(engine, 400)
    edge = final_to = watermark = T0 + 399.5
    assert read(engine, edge, final_to, watermark, T0 + 99.5) == recount(engine, edge, T0 + 99.5)
    for common, moved in ((T0 + 104.5, 5), (T0 + 101.5, 3), (T0 + 101.5, 0)):
        with rows_grouped(engine) as grouped:
            now = read(engine, edge, final_to, watermark, common)
        assert now == recount(engine, edge, common)
        assert sum(grouped) == moved, grouped


def test_kept_counts_from_before_the_common_frontier_was_kept_are_upgraded_and_read_once_then_stepped(tmp_path) -> None:
    """A database whose review_counts has no common counts yet (a row kept by the previous version) gets the
    columns at start-up (roomsight.db.migrate); the first reading groups the rows up to the common frontier
    once, beside the kept ones, and keeps them; the next one steps them."""
    engine = sqlite(tmp_path / "old.db")
    metadata.create_all(engine, tables=[t for t in metadata.sorted_tables if t.name != "review_counts"])
    before = Table("review_counts", MetaData(), Column("rollout_id", String(36), primary_key=True),
                   Column("low_confidence", Float, primary_key=True), Column("final_to", Float, nullable=False),
                   Column("edge", Float, nullable=False), Column("counts", JSON, nullable=False),
                   Column("updated_at", Float, nullable=False))
    before.create(engine)
    backlog(engine, 200)
    edge = final_to = watermark = T0 + 199.5
    kept = recount(engine, edge, None)
    counts = [[s, region, champ, ood, d, a, b, n, n] for (s, region, champ, ood, d, a, b, _, _), n in kept.items()]
    with engine.begin() as conn:
        conn.execute(insert(before).values(rollout_id=RID, low_confidence=LOW, final_to=final_to, edge=edge,
                                           counts=counts, updated_at=0.0))
    assert {"added column review_counts.common_to", "added column review_counts.common_counts"} <= set(db.migrate(engine))

    for common, grouped_then in ((T0 + 49.5, 50), (T0 + 59.5, 10)):
        with rows_grouped(engine) as grouped:
            now = read(engine, edge, final_to, watermark, common)
        assert now == recount(engine, edge, common) and sum(grouped) == grouped_then, grouped
        assert kept_row(engine)["common_to"] == common
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM review_counts")).scalar() == 1
    engine.dispose()


def test_a_common_frontier_past_the_watermark_keeps_up_to_the_watermark_and_groups_the_rest_each_time(engine) -> None:
    """The frontiers may pass the watermark (up to the fill's settled_to): the rows between it and them may
    still change, so they are grouped at every reading with what is past it, and only what is up to the
    watermark is kept."""
    backlog(engine, 100)
    watermark, final_to = T0 + 39.5, T0 + 99.5
    assert read(engine, T0 + 79.5, final_to, watermark, T0 + 59.5) == recount(engine, T0 + 79.5, T0 + 59.5)
    row = kept_row(engine)
    assert row["common_to"] == row["edge"] == row["final_to"] == watermark
    assert sum(n for *_, n in row["common_counts"]) == 40
    with rows_grouped(engine) as grouped:
        now = read(engine, T0 + 79.5, final_to, watermark, T0 + 69.5)
    assert now == recount(engine, T0 + 79.5, T0 + 69.5) and sum(grouped) == 60  # the rows past the watermark

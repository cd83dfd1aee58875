"""Schema upgrades at start-up (roomsight.db): a log written by the previous schema (tests/legacy_tables.py,
roomsight/tables.py as released) gets the new tables, indexes and rollup triggers when today's code opens
it, on SQLite and on a real PostgreSQL server, without losing a row; the generic step adds missing
nullable columns and indexes, refuses a NOT NULL column it cannot fill, and runs once when two processes
start together."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Column, Index, Integer, MetaData, String, Table, create_engine, func, insert, inspect, select, text

from benchmarks import synthlog
from roomsight import db, rollup
from roomsight.errors import SchemaMismatch
from roomsight.rollout_state import RoutingState
from roomsight.tables import metadata, predictions
from rollout.evidence import log_evidence
from tests import legacy_tables
from tests.test_evidence_sql import old_log_evidence, same


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    return f"sqlite:///{tmp_path / 'old.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_database")


def index_names(engine) -> set[str]:  # noqa: ANN001
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            return set(conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'index'")).scalars())
        return set(conn.execute(text("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")).scalars())


def test_a_log_written_by_the_previous_schema_is_upgraded_in_place(url):
    old = create_engine(url)
    legacy_tables.metadata.create_all(old)
    rows = list(synthlog.rows(3000, "r-old", 1_700_000_000.0, seed=5)) + list(synthlog.rows(500, None, 1_700_000_000.0, seed=6))
    with old.begin() as conn:
        conn.execute(insert(legacy_tables.predictions), rows)
        conn.execute(insert(legacy_tables.rollout_state).values(id=1, generation=3, state={"stage": "stable"}, updated_at=1.0))
    before = index_names(old)
    assert "ix_predictions_rollout_ts" not in before
    old.dispose()

    engine = db.engine_for(url)  # today's code, as any process starting on this database
    new_indexes = {i.name for t in metadata.sorted_tables for i in t.indexes}
    assert new_indexes <= index_names(engine)
    assert {"traffic_minutes", "drift_checks"} <= set(inspect(engine).get_table_names())
    # When a shadow answer landed, which a replay reads; NULL on the rows logged before (counted from their ts).
    assert "shadow_at" in {c["name"] for c in inspect(engine).get_columns("predictions")}
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(predictions)).scalar_one() == 3500
        assert conn.execute(text("SELECT generation FROM rollout_state")).scalar_one() == 3
        assert rollup.installed(conn) == set(rollup.TRIGGERS)
    for last in (None, 200):
        same(log_evidence(engine, None, "r-old", last=last), old_log_evidence(engine, "r-old", last))
    # Rows written after the upgrade are counted by the triggers, on top of the backfilled ones.
    synthlog.insert(engine, synthlog.rows(100, "r-old", 1_700_100_000.0, seed=7))
    assert log_evidence(engine, None, "r-old")["requests"] == 3100
    assert db.migrate(engine) == [], "a second start changes nothing"


def test_the_rollup_under_its_earlier_name_is_replaced(url):
    """A database the release before the rollup's rename ran on: its `prediction_minutes` table and
    triggers (here the insert trigger, as that release named it) go, or every write would keep both."""
    old = create_engine(url)
    metadata.create_all(old)  # today's tables, without today's triggers
    pg = old.dialect.name == "postgresql"
    with old.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE prediction_minutes (rollout_id VARCHAR(36), minute BIGINT, requests BIGINT)")
        if pg:
            conn.exec_driver_sql("CREATE FUNCTION prediction_minutes_v1() RETURNS trigger LANGUAGE plpgsql AS $fn$ BEGIN "
                                 "INSERT INTO prediction_minutes SELECT rollout_id, 0, 1 FROM new_rows; RETURN NULL; END $fn$")
            conn.exec_driver_sql("CREATE TRIGGER prediction_minutes_v1_insert AFTER INSERT ON predictions REFERENCING NEW "
                                 "TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION prediction_minutes_v1()")
        else:
            conn.exec_driver_sql("CREATE TRIGGER prediction_minutes_v1_insert AFTER INSERT ON predictions BEGIN "
                                 "INSERT INTO prediction_minutes VALUES (NEW.rollout_id, 0, 1); END")
        conn.execute(insert(predictions), list(synthlog.rows(200, "r-old", 1_700_000_000.0, seed=8)))
        assert conn.execute(text("SELECT count(*) FROM prediction_minutes")).scalar_one() > 0
    old.dispose()

    engine = db.engine_for(url)
    with engine.connect() as conn:
        assert rollup.installed(conn) == set(rollup.TRIGGERS)
    assert "prediction_minutes" not in inspect(engine).get_table_names()
    synthlog.insert(engine, synthlog.rows(100, "r-old", 1_700_100_000.0, seed=9))  # would fail on the old trigger
    assert log_evidence(engine, None, "r-old")["requests"] == 300


def test_generic_step_adds_nullable_columns_and_indexes_and_names_what_it_cannot_add(url):
    before, after, impossible = MetaData(), MetaData(), MetaData()
    Table("things", before, Column("id", Integer, primary_key=True), Column("name", String(20), nullable=False))
    t = Table("things", after, Column("id", Integer, primary_key=True), Column("name", String(20), nullable=False),
              Column("note", String(40)), Column("weight", Integer, nullable=False, server_default="7"))
    Index("ix_things_note", t.c.note)
    Table("things", impossible, Column("id", Integer, primary_key=True), Column("name", String(20), nullable=False),
          Column("owner", String(20), nullable=False))
    engine = create_engine(url)
    before.create_all(engine)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO things (id, name) VALUES (1, 'a'), (2, 'b')"))
    assert db.migrate(engine, after) == ["added column things.note", "added column things.weight",
                                         "added index ix_things_note on things"]
    with engine.connect() as conn:
        assert [tuple(r) for r in conn.execute(text("SELECT id, name, note, weight FROM things ORDER BY id"))] == \
               [(1, "a", None, 7), (2, "b", None, 7)]
    assert "ix_things_note" in index_names(engine)
    assert db.migrate(engine, after) == []
    with pytest.raises(SchemaMismatch, match="table things lacks column owner, which is NOT NULL"):
        db.migrate(engine, impossible)
    engine.dispose()


def test_drift_checks_indexed_by_when_a_check_finished_lose_that_index_for_the_window_one(url):
    """drift_checks as released before it was indexed by the end of the window a check read: the upgrade
    added the new index and left the old one, which every write of a check then kept up for no reader."""
    from sqlalchemy import JSON, Boolean, Float

    old_meta = MetaData()
    checks = Table("drift_checks", old_meta, Column("id", Integer, primary_key=True, autoincrement=True),
                   Column("rollout_id", String(36), nullable=False), Column("created_at", Float, nullable=False),
                   Column("window_until", Float, nullable=False), Column("n_window", Integer, nullable=False),
                   Column("n_sample", Integer, nullable=False), Column("alarm", Boolean, nullable=False),
                   Column("drifted_share", Float, nullable=False), Column("ood_share", Float, nullable=False),
                   Column("summary", JSON, nullable=False))
    Index("ix_drift_checks_rollout", checks.c.rollout_id, checks.c.created_at)
    old = create_engine(url)
    old_meta.create_all(old)
    with old.begin() as conn:
        conn.execute(insert(checks).values(rollout_id="r-old", created_at=2.0, window_until=1.0, n_window=10, n_sample=10,
                                           alarm=False, drifted_share=0.0, ood_share=0.0, summary={}))
    assert "ix_drift_checks_rollout" in index_names(old)

    assert db.migrate(old) == ["added column drift_checks.window_since",
                               "added index ix_drift_checks_rollout_window on drift_checks",
                               "dropped index ix_drift_checks_rollout on drift_checks"]
    names = index_names(old)
    assert "ix_drift_checks_rollout_window" in names and "ix_drift_checks_rollout" not in names
    with old.connect() as conn:
        assert conn.execute(text("SELECT rollout_id, window_until FROM drift_checks")).all() == [("r-old", 1.0)]
    assert db.migrate(old) == []
    old.dispose()


def test_an_outbox_written_before_claims_had_owners_gets_the_column_and_is_caught_up_on(tmp_path, monkeypatch):
    """rollout_outbox as released before `claimed_by`: opened by today's code, the column is added, and a
    row an older process claimed (no owner) waits out its claim and is then caught up on as before."""
    from sqlalchemy import JSON, Boolean, Float, Text

    from rollout import outbox, records
    from roomsight.tables import rollout_outbox

    url = f"sqlite:///{tmp_path / 'old-outbox.db'}"
    released = MetaData()
    Table("rollout_outbox", released, Column("event_id", String(36), primary_key=True),
          Column("generation", Integer, nullable=False), Column("event", JSON, nullable=False),
          Column("run_id", String(64)), Column("aliases_moved", Boolean, nullable=False),
          Column("claimed_until", Float), Column("last_error", Text))
    old = create_engine(url)
    released.create_all(old)
    state = {"champion": {"name": "roomtype", "version": "1"}}
    event = {"action": "rollback", "before": state, "after": state, "event_id": "e-old"}
    with old.begin() as conn:
        conn.execute(insert(released.tables["rollout_outbox"]).values(
            event_id="e-old", generation=1, event=event, run_id=None, aliases_moved=False, claimed_until=100.0))
    old.dispose()

    engine = db.engine_for(url)
    assert "claimed_by" in {c["name"] for c in inspect(engine).get_columns("rollout_outbox")}
    monkeypatch.setattr(records, "record", lambda _s, e: f"run-{e['event_id']}")
    keep = lambda _b, _a: None  # noqa: E731 - no MLflow here
    current = lambda: RoutingState.from_dict(state)  # noqa: E731
    assert outbox.catch_up(engine, None, keep, current, clock=lambda: 50.0) == 0  # the old claim still holds
    assert outbox.catch_up(engine, None, keep, current, clock=lambda: 101.0) == 1
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(rollout_outbox)).scalar_one() == 0


def test_a_rollout_in_progress_written_before_plan_fingerprints_opens_and_goes_on(tmp_path):
    """A SQLite database of the previous schema, mid-rollout, its state row written before the plan's fingerprint
    was kept: today's code opens it, reads the rollout as on its step (compared by kind, as then), promotes it,
    and keeps no fingerprint it never had; the next rollout records one."""
    from roomsight.registry import ModelRef
    from roomsight.rollout_state import Stage, read_state, write_state
    from rollout import stages
    from rollout.plan_identity import fingerprint
    from tests.plans import open_plan

    url = f"sqlite:///{tmp_path / 'mid-rollout.db'}"
    old = create_engine(url)
    legacy_tables.metadata.create_all(old)
    champion, candidate = {"name": "roomtype", "version": "1"}, {"name": "roomtype", "version": "2"}
    as_written = {"champion": champion, "stage": "gradual", "candidate": candidate, "rollout_id": "r-old", "step": 2,
                  "since": 1.0, "regions": ["eu-west"], "region_percent": 100.0, "percent": 10.0, "shadow_sample": 1.0,
                  "hold_ood_on_champion": True, "held": None, "previous_champion": None}
    with old.begin() as conn:
        conn.execute(insert(legacy_tables.rollout_state).values(id=1, generation=4, state=as_written, updated_at=1.0))
    old.dispose()

    engine = db.engine_for(url)
    cur = read_state(engine)
    assert (cur.generation, cur.state.stage, cur.state.step, cur.state.plan_fingerprint) == (4, Stage.GRADUAL, 2, None)
    plan = open_plan()
    assert stages.off_plan(cur.state, plan) is None
    moved = stages.advance(cur.state, plan, stages.target_step(cur.state, plan), 2.0)
    assert (moved.percent, moved.plan_fingerprint) == (25.0, None)
    write_state(engine, moved, 4)
    assert read_state(engine).state == moved
    back = write_state(engine, stages.rollback(moved), 5).state
    begun = write_state(engine, stages.start(back, ModelRef("roomtype", "2"), "r-new", plan, 3.0), 6).state
    assert read_state(engine).state.plan_fingerprint == begun.plan_fingerprint == fingerprint(plan)


def test_two_processes_starting_together_upgrade_once(url):
    """Both see the gaps; the writers' lock makes the second find them gone and do nothing."""
    before, after = MetaData(), MetaData()
    Table("predictions", before, Column("request_id", String(36), primary_key=True), Column("ts", Integer))
    t = Table("predictions", after, Column("request_id", String(36), primary_key=True), Column("ts", Integer),
              Column("extra", String(10)))
    Index("ix_extra", t.c.extra)
    setup = create_engine(url)
    before.create_all(setup)
    setup.dispose()
    engines = [create_engine(url, connect_args={"timeout": 30} if url.startswith("sqlite") else {}) for _ in range(2)]
    barrier, results, errors = threading.Barrier(2), [], []

    def start(engine) -> None:  # noqa: ANN001
        barrier.wait()
        try:
            results.append(db.migrate(engine, after))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(e,)) for e in engines]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    assert sorted(results, key=len) == [[], ["added column predictions.extra", "added index ix_extra on predictions"]]
    for e in engines:
        e.dispose()


def test_processes_starting_together_on_a_new_database_create_it_once(url):
    """Each finds the tables missing; without a lock the second CREATE TABLE failed, as the database being
    out of reach, in every process but one."""
    barrier, errors = threading.Barrier(4), []

    def start() -> None:
        barrier.wait()
        try:
            db.engine_for(url)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    try:
        assert not errors, errors
        with db.engine_for(url).connect() as conn:
            assert set(metadata.tables) <= set(inspect(conn).get_table_names())
            assert rollup.installed(conn) == set(rollup.TRIGGERS)
    finally:
        engine = db._engines.pop(url, None)
        if engine is not None:
            engine.dispose()


def test_a_new_sqlite_database_switched_to_wal_by_another_connection_is_waited_for():
    """Connections opening a new database together race to switch it to WAL, and SQLite answers the loser
    "database is locked" at once, busy timeout or not (one start in some twenty under load failed so)."""
    import sqlite3

    class Racing:  # a DB-API cursor whose first switches lose the race
        def __init__(self, losses: int) -> None:
            self.losses, self.tries = losses, 0

        def execute(self, sql: str) -> None:
            self.tries += 1
            if self.tries <= self.losses:
                raise sqlite3.OperationalError("database is locked")

    racing = Racing(losses=3)
    db._wal(racing)
    assert racing.tries == 4
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        db._wal(Racing(losses=1000), wait_s=0.2)  # not for ever


def test_a_database_sqlite_cannot_switch_to_wal_for_another_reason_fails_at_once():
    import sqlite3

    class Broken:
        tries = 0

        def execute(self, sql: str) -> None:
            self.tries += 1
            raise sqlite3.OperationalError("disk I/O error")

    broken = Broken()
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        db._wal(broken)
    assert broken.tries == 1

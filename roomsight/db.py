"""Engine factory for the shared SQL store: SQLite in the data directory by default, any SQLAlchemy URL
(PostgreSQL on a cluster) by configuration.

At the first use of a database in a process, the schema is brought up to date without losing rows: new
tables are created, missing nullable columns and missing indexes are added to the existing tables
(`migrate`, generic: it compares the metadata with what SQLAlchemy's inspector finds), indexes an earlier
release made and the schema no longer has are dropped (`DROPPED_INDEXES`), and the rollup
triggers are installed (roomsight.rollup). The changes are made while writers wait, so two processes
starting together do them once.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Connection, Engine, Index, MetaData, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.engine.reflection import Inspector
from sqlalchemy.exc import DatabaseError, InterfaceError, OperationalError
from sqlalchemy.schema import CreateColumn

from roomsight import rollup
from roomsight.errors import DatabaseUnavailable, SchemaMismatch, first_line
from roomsight.tables import metadata

log = logging.getLogger(__name__)

_engines: dict[str, Engine] = {}

# Indexes earlier releases made that the schema no longer has, by table: left behind, each would cost every
# write to its table for no reader. drift_checks was indexed by when a check finished before it was by the
# end of the window the check read.
DROPPED_INDEXES: Mapping[str, tuple[str, ...]] = {"drift_checks": ("ix_drift_checks_rollout",)}


def engine_for(url: str) -> Engine:
    """One engine per URL per process, with the schema created on first use."""
    if url in _engines:
        return _engines[url]
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            try:
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseUnavailable(f"cannot create the SQLite database {parsed.database} (the `database_url` "
                                          f"setting, or `home`): {exc.strerror}") from None
        # The Serve app and the CLI write from different processes: WAL lets readers and one writer
        # proceed together, and the busy timeout turns lock contention into a short wait, not an error.
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # noqa: ANN001 - DB-API connection
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout=30000")
            _wal(cur)
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()
    else:
        try:
            engine = create_engine(url, pool_pre_ping=True)
        except ModuleNotFoundError as exc:
            extra = " (pip install 'roomsight[postgres]')" if parsed.get_backend_name() == "postgresql" else ""
            raise DatabaseUnavailable(f"the driver for {parsed.drivername} (the `database_url` setting) is not installed: "
                                      f"{exc.name}{extra}") from None
    try:
        _create_tables(engine)
        migrate(engine)
        _install_rollup(engine)
    except (DatabaseError, InterfaceError) as exc:
        engine.dispose()
        reason = first_line(exc.orig or exc)
        # OperationalError: down, refused, wrong password; its DatabaseError siblings: a file that is not a database.
        problem = "cannot reach" if isinstance(exc, (OperationalError, InterfaceError)) else "cannot use"
        raise DatabaseUnavailable(f"{problem} the database at {redact(url)} (the `database_url` setting): {reason}") from None
    _engines[url] = engine
    return engine


def _wal(cur: Any, wait_s: float = 30.0) -> None:
    """Switch a SQLite database to WAL. Connections opening a new database together race to switch it, and
    SQLite answers the loser "database is locked" at once, without its busy timeout: retried here as the
    timeout would."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def redact(url: str) -> str:
    """A URL safe to print: the password never leaves the process."""
    return make_url(url).render_as_string(hide_password=True)


@contextmanager
def writers_excluded(engine: Engine, tables: Collection[str] = ("predictions",)) -> Iterator[Connection]:
    """A transaction during which no other connection writes `tables`: SQLite's write lock (BEGIN
    IMMEDIATE, the whole database), PostgreSQL's SHARE ROW EXCLUSIVE lock on each table (writers queue
    behind it; readers go on). For schema changes that must not interleave with writes."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            # pysqlite begins transactions lazily, before DML only: begin explicitly, so the DDL is inside.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif conn.dialect.name == "postgresql":
            names = ", ".join(conn.dialect.identifier_preparer.quote(t) for t in sorted(tables))
            conn.exec_driver_sql(f"LOCK TABLE {names} IN SHARE ROW EXCLUSIVE MODE")
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()


# PostgreSQL advisory lock held while the tables are created: they do not exist yet to be locked themselves.
_SCHEMA_LOCK = 0x726F6F6D


def _create_tables(engine: Engine, meta: MetaData = metadata) -> None:
    """The tables `meta` has and the database lacks, created by one process at a time: processes starting
    together on a new database each find a table missing, and every CREATE TABLE but the first failed."""
    with engine.connect() as conn:
        if set(meta.tables) <= set(inspect(conn).get_table_names()):
            return
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})
        meta.create_all(conn)  # checks again, under the lock
        conn.commit()


def _gaps(conn: Connection, meta: MetaData, dropped: Mapping[str, Collection[str]]
          ) -> tuple[list[Column], list[Index], list[tuple[str, str]]]:
    """The columns and indexes of `meta`'s existing tables that the database lacks, and the (table, index)
    pairs of `dropped` it still has."""
    insp = inspect(conn)
    tables = set(insp.get_table_names())
    columns: list[Column] = []
    indexes: list[Index] = []
    stale: list[tuple[str, str]] = []
    for table in meta.sorted_tables:
        if table.name not in tables:
            continue  # create_all makes whole tables
        have = {c["name"] for c in insp.get_columns(table.name)}
        columns += [c for c in table.columns if c.name not in have]
        named = _index_names(conn, insp, table.name)
        indexes += [i for i in sorted(table.indexes, key=lambda i: i.name or "") if i.name not in named]
        stale += [(table.name, name) for name in dropped.get(table.name, ()) if name in named]
    return columns, indexes, stale


def _index_names(conn: Connection, insp: Inspector, table: str) -> set[str]:
    if conn.dialect.name == "sqlite":
        # SQLAlchemy's SQLite inspector skips indexes on expressions; the catalogue lists them all.
        return set(conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :t"),
                                {"t": table}).scalars())
    return {i["name"] for i in insp.get_indexes(table)}


def migrate(engine: Engine, meta: MetaData = metadata,
            dropped: Mapping[str, Collection[str]] = DROPPED_INDEXES) -> list[str]:
    """Add to the existing tables the columns and indexes `meta` has and the database lacks, and drop the
    indexes of `dropped` they still have. A new column must be nullable or have a server default (existing
    rows need a value); otherwise SchemaMismatch names it. Returns what was done, one line per change."""
    with engine.connect() as conn:
        columns, indexes, stale = _gaps(conn, meta, dropped)
    if not columns and not indexes and not stale:
        return []
    done = []
    where = redact(str(engine.url))
    with writers_excluded(engine, {x.table.name for x in [*columns, *indexes]} | {t for t, _ in stale}) as conn:
        # Again, under the lock: another process may have done it.
        columns, indexes, stale = _gaps(conn, meta, dropped)
        for col in columns:
            if not col.nullable and col.server_default is None:
                raise SchemaMismatch(f"the database's table {col.table.name} lacks column {col.name}, which is "
                                     "NOT NULL without a server default: existing rows have no value for it")
            log.warning("upgrading the database at %s: adding column %s.%s", where, col.table.name, col.name)
            spec = CreateColumn(col).compile(dialect=conn.dialect)
            conn.exec_driver_sql(f"ALTER TABLE {conn.dialect.identifier_preparer.format_table(col.table)} ADD COLUMN {spec}")
            done.append(f"added column {col.table.name}.{col.name}")
        for index in indexes:
            # Said before it is done: indexing a big log takes a while, once.
            log.warning("upgrading the database at %s: adding index %s", where, index.name)
            index.create(conn)
            done.append(f"added index {index.name} on {index.table.name}")
        for table, name in stale:
            log.warning("upgrading the database at %s: dropping index %s, which the schema no longer has", where, name)
            conn.exec_driver_sql(f"DROP INDEX {conn.dialect.identifier_preparer.quote(name)}")
            done.append(f"dropped index {name} on {table}")
    return done


def _install_rollup(engine: Engine) -> None:
    with engine.connect() as conn:
        if rollup.installed(conn) == set(rollup.TRIGGERS):
            return
    with writers_excluded(engine) as conn:
        counted = rollup.install(conn)
    if counted:
        log.warning("upgraded the database at %s: rollup triggers installed, %d logged requests counted",
                    redact(str(engine.url)), counted)

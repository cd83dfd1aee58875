"""Engine factory for the shared SQL store: SQLite in the data directory by default, any SQLAlchemy URL
(PostgreSQL on a cluster) by configuration."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from roomsight.tables import metadata

_engines: dict[str, Engine] = {}


def engine_for(url: str) -> Engine:
    """One engine per URL per process, with the schema created on first use."""
    if url in _engines:
        return _engines[url]
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # The Serve app and the CLI write from different processes: WAL lets readers and one writer
        # proceed together, and the busy timeout turns lock contention into a short wait, not an error.
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # noqa: ANN001 - DB-API connection
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
    else:
        engine = create_engine(url, pool_pre_ping=True)
    metadata.create_all(engine)
    _engines[url] = engine
    return engine


def redact(url: str) -> str:
    """A URL safe to print: the password never leaves the process."""
    return make_url(url).render_as_string(hide_password=True)

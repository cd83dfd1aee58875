"""Engine factory for the shared SQL store: SQLite in the data directory by default, any SQLAlchemy URL
(PostgreSQL on a cluster) by configuration."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DatabaseError, InterfaceError, OperationalError

from roomsight.errors import UserError, first_line
from roomsight.tables import metadata

_engines: dict[str, Engine] = {}


class DatabaseUnavailable(UserError, ConnectionError):
    """The database cannot be reached, opened or driven; the message names the URL without its password."""


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
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
    else:
        try:
            engine = create_engine(url, pool_pre_ping=True)
        except ModuleNotFoundError as exc:
            extra = " (pip install 'roomsight[postgres]')" if parsed.get_backend_name() == "postgresql" else ""
            raise DatabaseUnavailable(f"the driver for {parsed.drivername} (the `database_url` setting) is not installed: "
                                      f"{exc.name}{extra}") from None
    try:
        metadata.create_all(engine)
    except (DatabaseError, InterfaceError) as exc:
        engine.dispose()
        reason = first_line(exc.orig or exc)
        # OperationalError: down, refused, wrong password; its DatabaseError siblings: a file that is not a database.
        problem = "cannot reach" if isinstance(exc, (OperationalError, InterfaceError)) else "cannot use"
        raise DatabaseUnavailable(f"{problem} the database at {redact(url)} (the `database_url` setting): {reason}") from None
    _engines[url] = engine
    return engine


def redact(url: str) -> str:
    """A URL safe to print: the password never leaves the process."""
    return make_url(url).render_as_string(hide_password=True)

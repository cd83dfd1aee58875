"""Counts of each rollout's logged requests, kept by the database itself: per minute and region (the
`traffic_minutes` table, with latency totals) and over the rollout's whole life (`traffic_totals`).

Triggers on `predictions` add every inserted row to its (rollout, minute, region) counts and to its
rollout's totals, move every updated one (a shadow result arriving changes `disagreement`,
`shadow_status`, `candidate_ms`) and subtract every deleted one, inside the writer's own transaction. So
the counts are exact whoever writes: the ingress, a journal replay after a crash, a retried batch, a test.
A rollout's counts now are one row (`counts`); up to a past moment (`as_of`), a sum over its whole
minutes plus the last partial minute from the log; never a scan of its requests. Those counts hold every
shadow answer as it is now, however late it landed: what was known at a past moment (a replay) is those
counts less the answers of its last moments that landed after it (`known_counts`). The report's traffic
over time reads the per-minute rows (rollout.report.series).

SQLite runs a row trigger per request; PostgreSQL a statement trigger over the statement's transition
tables (one upsert per batch, keys in order so concurrent writers lock them in the same order).
`install` creates the triggers on a database that lacks them (a log written before they existed) and
backfills the counts from the rows already there, while writers wait (roomsight.db.writers_excluded).
"""

from __future__ import annotations

import math
from dataclasses import astuple, dataclass, fields

from sqlalchemy import Connection, func, select, text

from roomsight.tables import (
    ROLLUP_COUNTERS,
    ROLLUP_MAXES,
    ROLLUP_SUMS,
    answers_known,
    candidate_ran,
    shadow_known,
    traffic_minutes,
    traffic_totals,
)

VERSION = 1  # bump when a counter's definition changes: install() then drops the old triggers and backfills
PREFIX = "traffic_minutes_"
TRIGGERS = tuple(f"{PREFIX}v{VERSION}_{op}" for op in ("insert", "update", "delete"))
# The rollup's earlier names, by trigger prefix: their triggers are replaced as an older version's are (or
# every write would keep their table too), and their table is dropped (it held counts the log still has).
RETIRED = {"prediction_minutes_": "prediction_minutes"}
_FUNCTION = f"{PREFIX}v{VERSION}"  # PostgreSQL's trigger function
MINUTE_S = 60


def minute_sql(dialect: str, row: str = "") -> str:
    """floor(ts / 60) in SQL, as the triggers compute it (PostgreSQL's CAST rounds, SQLite's truncates)."""
    if dialect == "postgresql":
        return f"CAST(floor({row}ts / {MINUTE_S}) AS BIGINT)"
    return f"CAST({row}ts / {MINUTE_S} AS INTEGER)"


def counter_sql(dialect: str, row: str = "") -> dict[str, str]:
    """Each counter's contribution of one row (0 or 1), in SQL over the columns qualified by `row`."""
    ran = candidate_ran(row)
    if dialect == "postgresql":
        flags = f"{row}ood -> 'flags'"
        flagged = (f"CASE WHEN json_typeof({flags}) = 'array' THEN "
                   f"(CASE WHEN json_array_length({flags}) > 0 THEN 1 ELSE 0 END) ELSE 0 END")
    else:
        # json_valid first: a trigger that raised on a malformed value would lose the writer's whole batch.
        flagged = (f"CASE WHEN json_valid({row}ood) THEN (CASE WHEN json_type({row}ood, '$.flags') = 'array' "
                   f"AND json_array_length({row}ood, '$.flags') > 0 THEN 1 ELSE 0 END) ELSE 0 END")
    out = {
        "requests": "1",
        "compared": f"CASE WHEN {row}disagreement IS NOT NULL THEN 1 ELSE 0 END",
        "disagreements": f"CASE WHEN {row}disagreement THEN 1 ELSE 0 END",
        "candidate_served": f"CASE WHEN {row}served_by = 'candidate' THEN 1 ELSE 0 END",
        "candidate_calls": f"CASE WHEN {ran} THEN 1 ELSE 0 END",
        "candidate_errors": f"CASE WHEN {ran} AND {row}candidate_error IS NOT NULL THEN 1 ELSE 0 END",
        "candidate_timed": f"CASE WHEN {ran} AND {row}candidate_ms IS NOT NULL THEN 1 ELSE 0 END",
        "champion_timed": f"CASE WHEN {row}champion_ms IS NOT NULL THEN 1 ELSE 0 END",
        "ood_flagged": flagged,
    }
    assert tuple(out) == ROLLUP_COUNTERS
    return out


def latency_sql(row: str = "") -> dict[str, str]:
    """Each latency column's contribution of one row: the totals add the latency of a timed call (as the
    `*_timed` counters count them), the maxima take it."""
    cand = f"CASE WHEN {candidate_ran(row)} AND {row}candidate_ms IS NOT NULL THEN {row}candidate_ms END"
    champ = f"{row}champion_ms"
    return {"candidate_ms_sum": f"coalesce({cand}, 0)", "champion_ms_sum": f"coalesce({champ}, 0)",
            "candidate_ms_max": cand, "champion_ms_max": champ}


_KEY = ("rollout_id", "minute", "region")
_ADDED = (*ROLLUP_COUNTERS, *ROLLUP_SUMS)  # signed: an update moves them, a delete takes them back
_COLUMNS = ", ".join((*_KEY, *_ADDED, *ROLLUP_MAXES))
_CONFLICT = f"ON CONFLICT ({', '.join(_KEY)}) DO UPDATE SET "


def _merge(dialect: str) -> str:
    added = [f"{c} = traffic_minutes.{c} + excluded.{c}" for c in _ADDED]
    if dialect == "postgresql":  # GREATEST ignores NULLs
        top = [f"{c} = GREATEST(traffic_minutes.{c}, excluded.{c})" for c in ROLLUP_MAXES]
    else:  # SQLite's max() of a NULL is NULL
        top = [f"{c} = max(coalesce(traffic_minutes.{c}, excluded.{c}), coalesce(excluded.{c}, traffic_minutes.{c}))"
               for c in ROLLUP_MAXES]
    return _CONFLICT + ", ".join(added + top)


def _row_values(dialect: str, row: str, sign: str) -> list[str]:
    """One row's contribution in _COLUMNS order after the key; a row taken back leaves the maxima as they are."""
    lat = latency_sql(row)
    signed = [f"{sign}({e})" for e in counter_sql(dialect, row).values()] + [f"{sign}({lat[c]})" for c in ROLLUP_SUMS]
    return signed + [lat[c] if sign == "+" else "CAST(NULL AS FLOAT)" for c in ROLLUP_MAXES]


_TOTALS = ", ".join(("rollout_id", *ROLLUP_COUNTERS))
_ADD_TOTALS = "ON CONFLICT (rollout_id) DO UPDATE SET " + ", ".join(f"{c} = traffic_totals.{c} + excluded.{c}"
                                                                    for c in ROLLUP_COUNTERS)


def _sqlite_upsert(row: str, sign: str) -> str:
    values = ", ".join(_row_values("sqlite", row, sign))
    counters = ", ".join(f"{sign}({e})" for e in counter_sql("sqlite", row).values())
    # SELECT ... WHERE (not VALUES): the trigger skips requests outside a rollout; SQLite's upsert after a
    # SELECT needs the WHERE to parse.
    return (f"INSERT INTO traffic_minutes ({_COLUMNS}) SELECT {row}rollout_id, {minute_sql('sqlite', row)}, "
            f"{row}region, {values} WHERE {row}rollout_id IS NOT NULL {_merge('sqlite')}; "
            f"INSERT INTO traffic_totals ({_TOTALS}) SELECT {row}rollout_id, {counters} "
            f"WHERE {row}rollout_id IS NOT NULL {_ADD_TOTALS};")


def _postgres_delta(source: str, sign: str) -> str:
    names = (*_ADDED, *ROLLUP_MAXES)
    values = ", ".join(f"{v} AS {c}" for c, v in zip(names, _row_values("postgresql", "r.", sign)))
    return (f"SELECT r.rollout_id, {minute_sql('postgresql', 'r.')} AS minute, r.region, {values} FROM {source} r "
            f"WHERE r.rollout_id IS NOT NULL")


def _aggregates() -> str:
    return ", ".join([f"sum({c})" for c in _ADDED] + [f"max({c})" for c in ROLLUP_MAXES])


def install_sql(dialect: str) -> list[str]:
    """The DDL of the triggers (and PostgreSQL's trigger function)."""
    ins, upd, dele = TRIGGERS
    if dialect == "sqlite":
        return [
            f"CREATE TRIGGER {ins} AFTER INSERT ON predictions BEGIN {_sqlite_upsert('NEW.', '+')} END",
            f"CREATE TRIGGER {upd} AFTER UPDATE ON predictions BEGIN {_sqlite_upsert('OLD.', '-')} "
            f"{_sqlite_upsert('NEW.', '+')} END",
            f"CREATE TRIGGER {dele} AFTER DELETE ON predictions BEGIN {_sqlite_upsert('OLD.', '-')} END",
        ]
    if dialect != "postgresql":
        raise NotImplementedError(f"no rollup triggers for the {dialect} dialect")

    def upsert(deltas: str) -> str:
        counters = ", ".join(f"sum({c})" for c in ROLLUP_COUNTERS)
        return (f"INSERT INTO traffic_minutes ({_COLUMNS}) SELECT rollout_id, minute, region, {_aggregates()} "
                f"FROM ({deltas}) d GROUP BY 1, 2, 3 ORDER BY 1, 2, 3 {_merge('postgresql')}; "
                f"INSERT INTO traffic_totals ({_TOTALS}) SELECT rollout_id, {counters} "
                f"FROM ({deltas}) d GROUP BY 1 ORDER BY 1 {_ADD_TOTALS};")

    body = (f"IF TG_OP = 'INSERT' THEN {upsert(_postgres_delta('new_rows', '+'))} "
            f"ELSIF TG_OP = 'UPDATE' THEN {upsert(_postgres_delta('old_rows', '-') + ' UNION ALL ' + _postgres_delta('new_rows', '+'))} "
            f"ELSE {upsert(_postgres_delta('old_rows', '-'))} END IF; RETURN NULL;")
    return [
        f"CREATE OR REPLACE FUNCTION {_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $fn$ BEGIN {body} END $fn$",
        f"CREATE TRIGGER {ins} AFTER INSERT ON predictions REFERENCING NEW TABLE AS new_rows "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {_FUNCTION}()",
        f"CREATE TRIGGER {upd} AFTER UPDATE ON predictions REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {_FUNCTION}()",
        f"CREATE TRIGGER {dele} AFTER DELETE ON predictions REFERENCING OLD TABLE AS old_rows "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {_FUNCTION}()",
    ]


def installed(conn: Connection) -> set[str]:
    """Names of the rollup triggers (any version, under any earlier name) on `predictions`."""
    if conn.dialect.name == "postgresql":
        q = text("SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass('predictions') AND NOT tgisinternal")
    else:
        q = text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'predictions'")
    return {name for name in conn.execute(q).scalars() if name.startswith((PREFIX, *RETIRED))}


def install(conn: Connection) -> int | None:
    """Create this version's triggers if they are missing, replacing older ones and recounting every
    rollout from the log. Call with writers excluded (roomsight.db.writers_excluded): a row written
    between the recount and the triggers would be counted by neither. Returns how many logged requests
    were counted, or None if the triggers were there already."""
    have = installed(conn)
    if have == set(TRIGGERS):
        return None
    dialect = conn.dialect.name
    for name in sorted(have):
        conn.exec_driver_sql(f"DROP TRIGGER {name}" + (" ON predictions" if dialect == "postgresql" else ""))
    if dialect == "postgresql":  # each version's trigger function is named for it (`_FUNCTION`)
        for function in sorted({name.rsplit("_", 1)[0] for name in have}):
            conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS {function}()")
    for table in RETIRED.values():
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
    conn.execute(traffic_minutes.delete())
    conn.execute(traffic_totals.delete())
    lat = latency_sql()
    per_row = [*counter_sql(dialect).values(), *(lat[c] for c in ROLLUP_SUMS), *(lat[c] for c in ROLLUP_MAXES)]
    aggregates = ", ".join([f"sum({e})" for e in per_row[:len(_ADDED)]] + [f"max({e})" for e in per_row[len(_ADDED):]])
    conn.exec_driver_sql(f"INSERT INTO traffic_minutes ({_COLUMNS}) SELECT rollout_id, {minute_sql(dialect)}, region, "
                         f"{aggregates} FROM predictions WHERE rollout_id IS NOT NULL GROUP BY 1, 2, 3")
    totals = ", ".join(f"sum({e})" for e in counter_sql(dialect).values())
    conn.exec_driver_sql(f"INSERT INTO traffic_totals ({_TOTALS}) SELECT rollout_id, {totals} FROM predictions "
                         f"WHERE rollout_id IS NOT NULL GROUP BY 1")
    for ddl in install_sql(dialect):
        conn.exec_driver_sql(ddl)
    return int(conn.execute(select(func.coalesce(func.sum(traffic_totals.c.requests), 0))).scalar_one())


@dataclass(frozen=True)
class Counts:
    """One rollout's request counts (see roomsight.tables.ROLLUP_COUNTERS for what each counts)."""

    requests: int = 0
    compared: int = 0
    disagreements: int = 0
    candidate_served: int = 0
    candidate_calls: int = 0
    candidate_errors: int = 0
    candidate_timed: int = 0
    champion_timed: int = 0
    ood_flagged: int = 0

    def since(self, before: Counts) -> Counts:
        """What was counted after `before` (a step's counts: now less at its start), each counter floored at 0."""
        return Counts(*(max(0, a - b) for a, b in zip(astuple(self), astuple(before))))


assert tuple(f.name for f in fields(Counts)) == ROLLUP_COUNTERS


def minute_of(ts: float) -> int:
    return math.floor(ts / MINUTE_S)


def counts(conn: Connection, rollout_id: str, as_of: float | None = None) -> Counts:
    """A rollout's counts over its requests logged up to `as_of` (unix seconds; default: all, from
    `traffic_totals`). At a moment, the whole minutes before it come from `traffic_minutes` and the minute
    `as_of` falls in from the log's rows of that minute (an index range on rollout and time)."""
    if as_of is None:
        t = traffic_totals.c
        now = conn.execute(select(*(t[c] for c in ROLLUP_COUNTERS)).where(t.rollout_id == rollout_id)).first()
        return Counts() if now is None else Counts(*(int(v) for v in now))
    m = traffic_minutes.c
    q = select(*(func.coalesce(func.sum(m[c]), 0) for c in ROLLUP_COUNTERS)).where(m.rollout_id == rollout_id)
    minute = minute_of(as_of)
    whole = conn.execute(q.where(m.minute < minute)).one()
    dialect = conn.dialect.name
    sums = ", ".join(f"coalesce(sum({e}), 0)" for e in counter_sql(dialect).values())
    # The lower bound lets the index range start a little early; the minute expression (the triggers') decides.
    part = conn.execute(text(f"SELECT {sums} FROM predictions WHERE rollout_id = :rid AND ts >= :lo AND ts <= :as_of "
                             f"AND {minute_sql(dialect)} >= :minute"),
                        {"rid": rollout_id, "lo": minute * MINUTE_S - 1.0, "as_of": as_of, "minute": minute}).one()
    return Counts(*(int(a) + int(b) for a, b in zip(whole, part)))


def known_counts(conn: Connection, rollout_id: str, upto: float, known_at: float, lag_s: float) -> Counts:
    """A rollout's counts over its requests logged up to `upto`, as they stood at `known_at` (>= `upto`,
    a replay's moment): a shadow answer had after `known_at` is not counted (the row not compared, the
    shadow model not yet run, as the guard saw it then). The rollup holds every answer as it is now, filed
    under its request's minute; a shadow answer lands at most `lag_s` after its request (review.settle_s,
    which the settings keep above the ingress's wait and timeout), so only the requests of the last `lag_s`
    before `known_at` can differ, and they are counted twice from the log, as they are and as they stood,
    and the difference taken off: an index range of that much traffic, whatever the log holds."""
    now = counts(conn, rollout_id, upto)
    lo = known_at - lag_s
    if upto <= lo:
        return now
    dialect = conn.dialect.name
    known = {role: shadow_known(role, ":known_at") for role in ("champion", "candidate")}
    # The row as it stood: what the shadow wrote (status, disagreement, the shadowing model's columns)
    # unwritten yet if it landed later.
    both = answers_known(":known_at")
    then = (f"SELECT served_by, shadow, ood, CASE WHEN {both} THEN shadow_status END AS shadow_status, "
            f"CASE WHEN {both} THEN disagreement END AS disagreement, "
            f"CASE WHEN {known['candidate']} THEN candidate_error END AS candidate_error, "
            f"CASE WHEN {known['candidate']} THEN candidate_ms END AS candidate_ms, "
            f"CASE WHEN {known['champion']} THEN champion_ms END AS champion_ms ")
    late = "FROM predictions WHERE rollout_id = :rid AND ts > :lo AND ts <= :upto AND shadow_at > :known_at"
    sums = ", ".join(f"coalesce(sum({e}), 0)" for e in counter_sql(dialect).values())
    params = {"rid": rollout_id, "lo": lo, "upto": upto, "known_at": known_at}
    as_now = conn.execute(text(f"SELECT {sums} {late}"), params).one()
    as_then = conn.execute(text(f"SELECT {sums} FROM ({then}{late}) AS known"), params).one()
    return Counts(*(int(c) - int(a) + int(b) for c, a, b in zip(astuple(now), as_now, as_then)))

"""The log's gate evidence in SQL (rollout.evidence over the rollup and the rollout indexes) against the
computation it replaced, kept here as the oracle: on the same rows, on SQLite and on a real PostgreSQL
server, for the whole rollout, the guard's last N calls and at past moments (`as_of`), after shadow results
arrived as UPDATEs through the real log writer and after rows were deleted."""

from __future__ import annotations

import math
from collections import namedtuple

import numpy as np
import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.engine import Connection

from benchmarks import synthlog
from monitoring.drift_checks import evidence as drift_evidence
from roomsight import rollup
from roomsight.config import Settings
from roomsight.db import engine_for
from roomsight.tables import ROLLUP_COUNTERS, ROLLUP_MAXES, ROLLUP_SUMS, predictions, traffic_minutes, traffic_totals
from rollout.evidence import STEP_METRICS, candidate_window, log_evidence
from serving.predlog import LogWriter, ShadowUpdate
from tests.conftest import settings_for

# The replay's corrections reach back review.settle_s (rollout.evidence): the default's.
SETTINGS = Settings()
T0 = 1_700_000_017.25  # not on a minute boundary
MAIN, OTHER = "r-main", "r-other"


# -- the oracle: rollout/evidence.py and monitoring/drift.py's ood_share before issue #33 ---------------
def records(conn: Connection, query) -> list:  # noqa: ANN001
    result = conn.execute(query)
    record = namedtuple("record", list(result.keys()))
    return [record(*r) for r in result]


def as_known(rows: list, known_at: float | None) -> list:
    """The rows as they stood at `known_at`: a shadow answer had later (its shadow_at, else its ts) not
    written on them yet."""
    if known_at is None:
        return rows
    out = []
    for r in rows:
        if r.shadow is not None and (r.shadow_at if r.shadow_at is not None else r.ts) > known_at:
            shadowed = ("candidate_ms", "candidate_error") if r.shadow == "candidate" else ("champion_ms",)
            r = r._replace(shadow_status=None, disagreement=None, **{c: None for c in shadowed})
        out.append(r)
    return out


def old_log_evidence(engine, rollout_id, last=None, as_of=None, known=True):  # noqa: ANN001, ANN201
    """Every row of the rollout into Python, sliced afterwards (restricted to ts <= as_of, and, with
    `known`, as they stood at as_of)."""
    p = predictions.c
    query = (select(p.served_by, p.shadow, p.shadow_status, p.disagreement, p.candidate_ms, p.champion_ms,
                    p.candidate_error, p.candidate_version, p.ts, p.shadow_at, p.routing_reason)
             .where(p.rollout_id == rollout_id).order_by(p.ts.desc()))
    if as_of is not None:
        query = query.where(p.ts <= as_of)
    with engine.connect() as conn:
        rows = as_known(records(conn, query), as_of if known else None)
    ran = [r for r in rows if _candidate_ran(r)]
    if last is not None:  # the budget's window: of the last N calls, those made once the candidate answered users
        ran = [r for r in ran[:last] if r.routing_reason != "shadow"]
    compared = [r for r in rows if r.disagreement is not None]
    cand_errors = sum(1 for r in ran if r.candidate_error is not None)
    cand_ms = [r.candidate_ms for r in ran if r.candidate_ms is not None]
    champ_ms = [r.champion_ms for r in rows if r.champion_ms is not None]
    return {
        "requests": float(len(rows)),
        "compared": float(len(compared)),
        "agreement": (1.0 - sum(bool(r.disagreement) for r in compared) / len(compared)) if compared else None,
        "candidate_served": float(sum(1 for r in rows if r.served_by == "candidate")),
        "candidate_requests": float(len(ran)),
        "candidate_errors": float(cand_errors),
        "candidate_error_rate": cand_errors / len(ran) if ran else None,
        "candidate_p99_ms": float(np.percentile(cand_ms, 99)) if cand_ms else None,
        "champion_p99_ms": float(np.percentile(champ_ms, 99)) if champ_ms else None,
        "champion_requests": float(len(champ_ms)),
        **{name: None for name in STEP_METRICS},
    }


def old_step_evidence(engine, rollout_id, as_of, since):  # noqa: ANN001, ANN201
    """The step_ numbers from the rows logged after `since` (up to `as_of`), one by one."""
    p = predictions.c
    query = select(p.served_by, p.shadow, p.shadow_status, p.disagreement, p.candidate_error, p.candidate_ms,
                   p.champion_ms, p.ts, p.shadow_at, p.ood).where(p.rollout_id == rollout_id, p.ts > since)
    if as_of is not None:
        query = query.where(p.ts <= as_of)
    with engine.connect() as conn:
        rows = as_known(records(conn, query), as_of)
    ran = [r for r in rows if _candidate_ran(r)]
    compared = [r for r in rows if r.disagreement is not None]
    errors = sum(1 for r in ran if r.candidate_error is not None)
    return {
        "step_requests": float(len(rows)),
        "step_compared": float(len(compared)),
        "step_agreement": (1.0 - sum(bool(r.disagreement) for r in compared) / len(compared)) if compared else None,
        "step_candidate_served": float(sum(1 for r in rows if r.served_by == "candidate")),
        "step_candidate_requests": float(len(ran)),
        "step_candidate_error_rate": errors / len(ran) if ran else None,
        "step_ood_share": sum(1 for r in rows if _flagged(r.ood)) / len(rows) if rows else None,
    }


def _candidate_ran(r) -> bool:  # noqa: ANN001
    if r.served_by == "candidate" or r.candidate_error is not None:
        return True
    return r.shadow == "candidate" and r.shadow_status in ("ok", "error", "timeout")


def _flagged(ood) -> bool:  # noqa: ANN001
    return bool(ood and ood.get("flags"))


def old_ood_share(engine, rollout_id, as_of=None):  # noqa: ANN001, ANN201
    p = predictions.c
    q = select(p.ood).where(p.rollout_id == rollout_id)
    if as_of is not None:
        q = q.where(p.ts <= as_of)
    with engine.connect() as conn:
        oods = [r.ood for r in conn.execute(q)]
    return sum(1 for o in oods if _flagged(o)) / len(oods) if oods else None


# -- the log ---------------------------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'log.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_database")
    return engine_for(url)


@pytest.fixture
def log(engine):
    """Three rollouts' worth of every stage, then late shadow results through the real writer, odd OOD
    values and a few deletions: every path the triggers take."""
    main = list(synthlog.rows(2500, MAIN, T0, seed=1, rate_hz=12))  # about 3.5 minutes
    other = list(synthlog.rows(800, OTHER, T0 + 30, seed=2, rate_hz=5))
    stable = list(synthlog.rows(150, None, T0, seed=3))
    for i, row in enumerate(main[:40]):  # OOD values older ingresses or none at all left in the log
        row["ood"] = [None, {}, {"flags": None}, {"flags": []}, {"flags": ["night_time", "novelty"]}, {"scores": {}}][i % 6]
    pending = [r for r in main if r["shadow"] and r["shadow_status"] is None]
    synthlog.insert(engine, main + other + stable, chunk=700)
    writer = LogWriter(engine, flush_interval_s=0.05)
    for k, r in enumerate(pending):  # the shadow results arrive: UPDATEs of rows already written
        at = r["ts"] + 9.0 * (k % 7)  # had up to a minute after the row: some moments fall between the two
        if r["shadow"] == "candidate" and k % 3 == 0:
            writer.submit_shadow(ShadowUpdate(r["request_id"], "timeout", {"candidate_error": "shadow call timed out"}, at))
        elif r["shadow"] == "candidate":
            writer.submit_shadow(ShadowUpdate(r["request_id"], "ok", {"candidate_version": "2", "candidate_label": "kitchen",
                                                                        "candidate_ms": 30.0 + k, "disagreement": k % 2 == 0}, at))
        else:
            writer.submit_shadow(ShadowUpdate(r["request_id"], "ok", {"champion_version": "1", "champion_ms": 9.0 + k,
                                                                       "disagreement": False}, at))
    assert writer.flush()
    writer.close()
    p = predictions.c
    with engine.begin() as conn:
        conn.execute(delete(predictions).where(p.request_id.in_([r["request_id"] for r in main[100:2500:97]])))
        # a row moved between rollouts (never done by roomsight, but the counts must follow)
        conn.execute(update(predictions).where(p.request_id == other[5]["request_id"]).values(rollout_id=MAIN))
    assert len(pending) > 15
    return engine


def moments() -> list[float | None]:
    """None, before the first row, inside and at the edges of minutes, after the last row."""
    first_minute = math.floor(T0 / 60) * 60
    edges = [first_minute + 60 * k for k in range(1, 5)]
    return [None, T0 - 5, T0 + 0.5, T0 + 61.3, *edges, *(e - 1e-6 for e in edges), T0 + 199.9, T0 + 10_000]


def same(new: dict, old: dict) -> None:
    assert new.keys() == old.keys()
    for key, want in old.items():
        got = new[key]
        assert (got is None) == (want is None), (key, got, want)
        if want is not None:
            assert got == pytest.approx(want, rel=1e-12, abs=1e-12), (key, got, want)


@pytest.mark.parametrize("last", [None, 1, 20, 200, 100_000])
def test_log_evidence_equals_the_old_computation(log, last):
    for rollout in (MAIN, OTHER, "never-logged"):
        for as_of in moments():
            old = old_log_evidence(log, rollout, last, as_of)
            same(log_evidence(log, SETTINGS, rollout, last=last, as_of=as_of), old)
            if last is not None:  # the guard's own question: the same numbers, nothing else read
                w = candidate_window(log, rollout, last, as_of)
                same({"candidate_requests": float(w.calls), "candidate_errors": float(w.errors),
                      "candidate_error_rate": w.error_rate, "candidate_p99_ms": w.p99_ms},
                     {k: old[k] for k in ("candidate_requests", "candidate_errors", "candidate_error_rate", "candidate_p99_ms")})


def test_step_evidence_counts_the_rows_after_the_step_began(log):
    """A later step's exit read the rollout's counts, the earlier steps' included: `candidate_served >= 20`
    at 25% had passed at 10% already. The step_ numbers are those of the rows after `since` alone."""
    for since in [m for m in moments() if m is not None]:
        for as_of in moments():
            if as_of is not None and as_of < since:
                continue
            got = log_evidence(log, SETTINGS, MAIN, as_of=as_of, since=since)
            same({k: got[k] for k in STEP_METRICS}, old_step_evidence(log, MAIN, as_of, since))
    whole = log_evidence(log, None, MAIN)
    assert log_evidence(log, None, MAIN, since=T0 - 5)["step_candidate_served"] == whole["candidate_served"] > 0
    assert log_evidence(log, None, MAIN, since=T0 + 100)["step_candidate_served"] < whole["candidate_served"]


def test_counts_follow_updates_and_deletes_and_ood_share_equals_the_old(log, tmp_path):
    settings = settings_for(tmp_path)
    for as_of in moments():
        with log.connect() as conn:
            c = rollup.counts(conn, MAIN, as_of)
        old = old_log_evidence(log, MAIN, None, as_of, known=False)  # the rollup holds every answer as it is now
        assert (c.requests, c.compared, c.candidate_served) == (old["requests"], old["compared"], old["candidate_served"])
        assert drift_evidence(log, settings, MAIN, as_of=as_of)["ood_share"] == old_ood_share(log, MAIN, as_of)
    # Rebuilt from scratch (as on an upgraded database), the counts are the same as the triggers kept them.
    def rows(conn) -> dict[tuple, dict]:  # noqa: ANN001
        q = select(traffic_minutes).order_by(traffic_minutes.c.rollout_id, traffic_minutes.c.minute, traffic_minutes.c.region)
        return {(r.rollout_id, r.minute, r.region): r._asdict() for r in conn.execute(q)}

    def totals(conn) -> dict[str, dict]:  # noqa: ANN001
        return {r.rollout_id: r._asdict() for r in conn.execute(select(traffic_totals))}

    with log.connect() as conn:
        kept, kept_totals = rows(conn), totals(conn)
    with log.begin() as conn:
        logged = conn.execute(select(func.count()).where(predictions.c.rollout_id.is_not(None))).scalar_one()
        for name in sorted(rollup.installed(conn)):
            conn.exec_driver_sql(f"DROP TRIGGER {name}" + (" ON predictions" if conn.dialect.name == "postgresql" else ""))
        assert rollup.install(conn) == logged
        rebuilt, rebuilt_totals = rows(conn), totals(conn)
    assert set(rebuilt) == {k for k, r in kept.items() if any(r[c] for c in ROLLUP_COUNTERS)}
    # The totals the triggers kept are what a rebuild counts, and the sums of the minutes.
    assert kept_totals == rebuilt_totals and MAIN in kept_totals
    for rid, total in kept_totals.items():
        assert all(total[c] == sum(r[c] for k, r in rebuilt.items() if k[0] == rid) for c in ROLLUP_COUNTERS), rid
    for key, r in rebuilt.items():
        assert all(r[c] == kept[key][c] for c in ROLLUP_COUNTERS), key
        assert all(r[c] == pytest.approx(kept[key][c], abs=1e-6) for c in ROLLUP_SUMS), key
        # A maximum is never lowered: a deleted row's latency may still stand in the kept one.
        assert all(r[c] is None or r[c] <= kept[key][c] for c in ROLLUP_MAXES), key


def _plan(engine, query: str, params: dict) -> str:  # noqa: ANN001
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            return " ".join(r[-1] for r in conn.execute(text("EXPLAIN QUERY PLAN " + query), params))
        # A small table, where scanning and sorting would be cheaper: ask whether an index can answer in order.
        for kind in ("seqscan", "bitmapscan", "sort"):
            conn.exec_driver_sql(f"SET enable_{kind} = off")
        return " ".join(r[0] for r in conn.execute(text("EXPLAIN " + query), params))


def test_the_guard_window_and_the_p99_walk_are_index_ranges(log):
    """The queries behind the guard's last-N window and the p99 order statistics read ranges of the
    partial indexes, not the rollout's rows (a plan that scans `predictions` would fail this)."""
    from sqlalchemy.dialects import postgresql, sqlite

    from rollout import evidence

    dialect = postgresql.dialect() if log.dialect.name == "postgresql" else sqlite.dialect()
    captured: list[tuple[str, dict]] = []
    real_execute = Connection.execute

    def spy(conn, stmt, params=None, *args, **kwargs):  # noqa: ANN001, ANN202
        if hasattr(stmt, "selected_columns") and not hasattr(stmt, "text"):
            captured.append((str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True})), {}))
        elif hasattr(stmt, "text"):
            captured.append((stmt.text, dict(params or {})))
        return real_execute(conn, stmt, params, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Connection, "execute", spy)
        evidence.log_evidence(log, SETTINGS, MAIN, last=50, as_of=T0 + 100)
        evidence.log_evidence(log, None, MAIN)
    walks = [(q, params) for q, params in captured if "ORDER BY" in q]
    assert len(walks) == 4, walks
    plans = [_plan(log, q, params) for q, params in walks]
    for name, n in {"candidate_calls": 1, "candidate_ms": 1, "champion_ms": 2}.items():
        assert sum(f"ix_predictions_{name}" in plan for plan in plans) == n, (name, plans)
    assert not [plan for plan in plans if "SCAN predictions" in plan or "Seq Scan" in plan], plans


def test_every_metric_a_provider_returns_is_a_plan_metric_and_back(tmp_path):
    from rollout.evidence import collect
    from rollout.metrics import METRICS, SOURCES

    settings = settings_for(tmp_path)
    engine = engine_for(settings.db_url)
    synthlog.insert(engine, synthlog.rows(50, MAIN, T0, seed=9))
    for as_of in (None, T0 + 2):
        assert set(collect(engine, settings, MAIN, as_of=as_of).values) == set(METRICS)
    # ... and each provider computes exactly the metrics SOURCES says, so a judgement may ask only some.
    for source, names in SOURCES.items():
        assert set(collect(engine, settings, MAIN, needed=frozenset({next(iter(names))})).values) == names, source


def test_the_step_is_read_from_the_rollup_only_when_a_step_metric_is_asked_for(tmp_path, monkeypatch):
    """The guard asks for the metrics its conditions name: the log provider read the rollup at the step's start
    at every tick, for `step_` numbers no condition used."""
    from rollout import evidence

    engine = engine_for(f"sqlite:///{tmp_path / 'log.db'}")
    read_at: list[float | None] = []
    real = rollup.counts
    monkeypatch.setattr(rollup, "counts", lambda conn, rid, as_of=None: read_at.append(as_of) or real(conn, rid, as_of))
    since = T0 + 60
    assert evidence.collect(engine, None, MAIN, needed=frozenset({"agreement"}), since=since).get("step_requests") is None
    assert read_at == [None]
    read_at.clear()
    assert evidence.collect(engine, None, MAIN, needed=frozenset({"step_agreement"}), since=since).get("step_requests") == 0
    assert read_at == [None, since]
    read_at.clear()
    evidence.collect(engine, None, MAIN, needed=None, since=since)  # every metric: status, the report, a promotion
    assert since in read_at


def test_a_step_s_counts_are_every_counter_now_less_at_its_start_never_below_zero():
    """A step's counts are the rollout's counts now less those at the step's start, counter by counter (the
    counters named once, in ROLLUP_COUNTERS); a counter a deleted row took back since counts none."""
    now = rollup.Counts(*range(10, 10 + len(ROLLUP_COUNTERS)))
    before = rollup.Counts(*range(len(ROLLUP_COUNTERS)))
    assert now.since(before) == rollup.Counts(*[10] * len(ROLLUP_COUNTERS))
    assert before.since(now) == rollup.Counts()

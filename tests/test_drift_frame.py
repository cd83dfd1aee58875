"""monitoring.drift.current_frame over a real SQLite prediction log: one row per logged prediction with
the columns the report compares, and the cycle collector (paused while a window is read) left exactly
as the caller had it, also when the read fails."""

from __future__ import annotations

import gc
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import insert, text

from monitoring import drift
from roomsight.db import engine_for
from roomsight.tables import predictions


def _row(ts: float, served_by: str, flags: list[str], reason: str) -> dict:
    return {"request_id": str(uuid.uuid4()), "ts": ts, "stage": "canary", "listing_id": "L", "region": "eu-west",
            "served_by": served_by, "label": "kitchen", "score": 0.8, "latency_ms": 10.0,
            "champion_version": "1", "candidate_version": "2",
            "champion_scores": {"kitchen": 0.8, "bedroom": 0.2}, "candidate_scores": {"kitchen": 0.3, "bedroom": 0.7},
            "ood": {"flags": flags, "scores": {}, **({"held": flags} if reason == "ood-held" else {})},
            "descriptors": {"brightness": 0.5, "contrast": 0.2}, "routing_reason": reason}


@pytest.fixture
def engine(tmp_path: Path):
    engine = engine_for(f"sqlite:///{tmp_path / 'log.db'}")
    now = time.time()
    with engine.begin() as conn:
        conn.execute(insert(predictions), [_row(now - 1, "champion", [], "stable"),
                                           _row(now - 2, "candidate", [], "canary"),
                                           _row(now - 3, "champion", ["night_time"], "ood-held")])
    return engine


def test_frame_has_one_row_per_prediction_with_the_served_models_answer(engine) -> None:
    frame = drift.current_frame(engine, drift.Window(since=time.time() - 60))
    rows = sorted(zip(frame["_version"], frame[drift.PREDICTED], frame[drift.OOD], map(tuple, frame["_held"])))
    assert rows == [("1", "kitchen", "no", ()), ("1", "kitchen", "yes", ("night_time",)),
                    ("2", "bedroom", "no", ())]  # the candidate's own answer, not the champion's
    assert frame["brightness"].tolist() == [0.5, 0.5, 0.5]


@pytest.mark.parametrize("enabled", [True, False])
def test_cycle_collector_is_paused_while_rows_decode_and_left_as_found(engine, monkeypatch, enabled: bool) -> None:
    from monitoring import drift_window

    during: list[bool] = []
    build = drift_window._records_frame
    monkeypatch.setattr(drift_window, "_records_frame", lambda rows: during.append(gc.isenabled()) or build(rows))
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        drift.current_frame(engine, drift.Window())
        assert during == [False] and gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


def test_cycle_collector_resumes_when_the_read_fails(engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE predictions"))
    assert gc.isenabled()
    with pytest.raises(Exception, match="no such table"):
        drift.current_frame(engine, drift.Window())
    assert gc.isenabled()


def test_a_window_larger_than_the_sample_is_read_as_a_seeded_uniform_sample(tmp_path: Path) -> None:
    """10,000 predictions over 20 minutes, sampled to 1,000: the sample has that size, lies in the window,
    is the same for the same seed and another for another seed, and spreads over the window's time as the
    window does (chi-square over its deciles, at this fixed seed)."""
    from scipy.stats import chisquare

    from benchmarks import synthlog

    engine = engine_for(f"sqlite:///{tmp_path / 'big.db'}")
    t0 = 1_700_000_000.0
    synthlog.insert(engine, synthlog.rows(10_000, "r", t0, seed=11, rate_hz=8))
    window = drift.Window(rollout_id="r", since=t0 + 60)
    a = drift.window_frame(engine, window, sample=1000, seed=1)
    b = drift.window_frame(engine, window, sample=1000, seed=1)
    c = drift.window_frame(engine, window, sample=1000, seed=2)
    full = drift.window_frame(engine, window, sample=None)
    assert len(a.rows) == 1000 and a.n_window == len(full.rows) > 9000 and a.seed == 1
    assert a.rows.equals(b.rows) and not a.rows.equals(c.rows)
    small = drift.window_frame(engine, window, sample=20_000, seed=1)
    assert small.seed is None and len(small.rows) == small.n_window == a.n_window, "a small window is read whole"

    with engine.connect() as conn:
        ts = [r[0] for r in conn.execute(text("SELECT ts FROM predictions WHERE rollout_id = 'r' AND ts >= :s ORDER BY ts"),
                                         {"s": t0 + 60})]
    edges = [ts[len(ts) * k // 10] for k in range(1, 10)]
    sample_ts = sorted(a.rows["_ts"])
    counts = [sum(1 for t in sample_ts if lo <= t < hi) for lo, hi in zip([float("-inf"), *edges], [*edges, float("inf")])]
    assert chisquare(counts).pvalue > 0.01, counts
    assert min(sample_ts) >= t0 + 60


def test_a_window_is_half_open_so_consecutive_windows_share_no_prediction(tmp_path: Path) -> None:
    engine = engine_for(f"sqlite:///{tmp_path / 'log.db'}")
    with engine.begin() as conn:
        conn.execute(insert(predictions), [_row(ts, "champion", [], "stable") for ts in (100.0, 150.0, 200.0)])
    first = drift.current_frame(engine, drift.Window(since=100.0, until=200.0))
    second = drift.current_frame(engine, drift.Window(since=200.0, until=300.0))
    assert sorted(first["_ts"]) == [100.0, 150.0] and list(second["_ts"]) == [200.0]


def test_a_model_versions_window_holds_only_what_that_version_answered(engine) -> None:
    # Every row logs both versions; the one that answered is the one whose photos the report is about.
    candidate = drift.current_frame(engine, drift.Window(model_version="2"))
    champion = drift.current_frame(engine, drift.Window(model_version="1"))
    assert list(candidate["_version"]) == ["2"] and list(champion["_version"]) == ["1", "1"]


def test_the_last_n_are_the_newest_predictions(engine) -> None:
    frame = drift.current_frame(engine, drift.Window(last=2))
    assert sorted(frame["_version"]) == ["1", "2"] and list(frame[drift.OOD]) == ["no", "no"]


def test_a_photo_flagged_but_not_held_is_out_of_domain_in_the_frame(tmp_path: Path) -> None:
    # Novelty is read after routing and never holds a photo: it still counts as out of domain.
    engine = engine_for(f"sqlite:///{tmp_path / 'log.db'}")
    with engine.begin() as conn:
        conn.execute(insert(predictions), [_row(1.0, "candidate", ["novelty"], "slice")])
    frame = drift.current_frame(engine, drift.Window())
    assert list(frame[drift.OOD]) == ["yes"] and list(frame["_held"]) == [[]]


def test_a_window_exactly_the_sample_size_is_read_whole_not_sampled(engine) -> None:
    frame = drift.window_frame(engine, drift.Window(), sample=3, seed=1)
    assert frame.seed is None and len(frame.rows) == frame.n_window == 3


@pytest.mark.parametrize("last", [None, 2])
def test_the_frame_says_when_its_window_s_newest_prediction_was_logged_sampled_or_whole(engine, last) -> None:
    """Drift checks are ordered by it (monitoring.drift_checks.latest). A window of the `last` N sampled
    (monitoring.drift_check_window above drift_sample) is ordered newest first before (ts, request_id):
    its last key is the oldest prediction, which the frame gave as the newest."""
    with engine.connect() as conn:
        newest = conn.execute(text("SELECT max(ts) FROM predictions")).scalar_one()
    window = drift.Window(last=last)
    sampled = drift.window_frame(engine, window, sample=1, seed=1)
    whole = drift.window_frame(engine, window, sample=None)
    assert sampled.seed == 1 and sampled.newest == whole.newest == newest

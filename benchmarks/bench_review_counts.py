"""The review sample's counts (`monitoring.review.cell_counts`): what a reading costs as the review backlog grows.

The guard reads the counts at every tick. Each reading groups only what moved since the last one: rows
logged past the kept final rows, and the rows each frontier (the analysis frontier and the common frontier
of every stratum) moved over. So its cost should follow what reviewers did since, not how many sampled
photos still wait for them. Here one SQLite log of synthetic rows (`benchmarks.synthlog`) is read with the
common frontier at several distances behind the frontier (the backlog), the readings of every backlog
interleaved so the machine's load falls on each alike.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.run import Target

ROLLOUT, T0, LOW = "bench-counts", 1_700_000_000.0, 0.5
STEP = 10  # logged rows the common frontier moves per reading, as reviewers clear the oldest photos

NOTES = """
**Reading.** A reading is `CellCounts.now` on a warm process that finds the counts another reading kept,
with the fill's watermark 50 rows from the log's end and the frontier 1,000 rows from it. `steady` is a
reading where no frontier moved; `moving` one where the common frontier moved 10 logged rows since the
last. The backlog is the logged rows between the common frontier and the frontier. Before the counts up to
the common frontier were kept, a reading grouped the whole backlog each time: on 200,000 rows with a
100,000-row backlog, 392 ms a reading against 9 ms for the new code, nothing moved (2026-12-07, the two
readings interleaved in one process by a throwaway script, since the old code is gone from the tree).
"""


def _median_ms(times: list[float]) -> float:
    return round(statistics.median(times) * 1000, 2)


def run(quick: bool, out_dir: Path | None = None) -> dict:
    """`out_dir` is accepted for `benchmarks.run`; this benchmark draws no plots."""
    from sqlalchemy import create_engine, select

    from benchmarks import synthlog
    from monitoring.review.cell_counts import CellCounts
    from roomsight.tables import metadata, predictions, review_counts

    n_rows = 20_000 if quick else 200_000
    backlogs = (100, n_rows // 20, n_rows // 2)
    repeats = 5 if quick else 15
    with tempfile.TemporaryDirectory(prefix="bench-review-counts-") as tmp:
        engine = create_engine(f"sqlite:///{Path(tmp) / 'log.db'}")
        metadata.create_all(engine)
        synthlog.insert(engine, synthlog.rows(n_rows, ROLLOUT, T0, seed=3))
        with engine.connect() as conn:
            ts = conn.execute(select(predictions.c.ts).where(predictions.c.rollout_id == ROLLOUT)
                              .order_by(predictions.c.ts)).scalars().all()
        watermark, edge = ts[-50], ts[-1000]

        def reading(common: float) -> float:
            with engine.connect() as conn:
                t = time.perf_counter()
                CellCounts(conn, ROLLOUT, LOW).now(edge, watermark, watermark, common)
                return time.perf_counter() - t

        first = {}
        for b in backlogs:  # a process with nothing kept groups the whole rollout once
            with engine.begin() as conn:
                conn.execute(review_counts.delete())
            first[b] = reading(ts[-1000 - b])
        steady: dict[int, list[float]] = {b: [] for b in backlogs}
        moving: dict[int, list[float]] = {b: [] for b in backlogs}
        for i in range(repeats):
            for b in backlogs:
                reading(ts[-1000 - b])  # the kept counts at this backlog's frontier, whatever the last one was
                steady[b].append(reading(ts[-1000 - b]))
                moving[b].append(reading(ts[-1000 - b + STEP]))
        engine.dispose()
    out: dict = {"log_rows": n_rows, "readings_each": repeats, "frontier_behind_end_rows": 1000}
    for b in backlogs:
        out[f"backlog_{b}"] = {"first_reading_ms": round(first[b] * 1000, 1), "steady_ms": _median_ms(steady[b]),
                               "moving_ms": _median_ms(moving[b])}
    return out


def targets(res: dict) -> list[Target]:
    sizes = sorted(int(k.split("_")[1]) for k in res if k.startswith("backlog_"))
    least, most = res[f"backlog_{sizes[0]}"], res[f"backlog_{sizes[-1]}"]
    ratio = most["moving_ms"] / least["moving_ms"] if least["moving_ms"] else float("inf")
    return [Target(f"a reading with a {sizes[-1]:,}-row review backlog costs at most 2x one with {sizes[0]} rows "
                   f"(the common frontier moving {STEP} rows a reading)",
                   f"{most['moving_ms']} ms vs {least['moving_ms']} ms ({ratio:.2f}x)", ratio <= 2.0)]

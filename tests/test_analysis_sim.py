"""A reduced version of the "analysis" benchmark, seeded: simulated rollouts with a known truth reviewed
verdict by verdict, the paired analysis read after every verdict. Asserts the benchmark's rates with a
margin for the small number of rollouts (the figures themselves are in BENCHMARKS.md, section analysis).
The whole-traffic analysis is read for the overall conditions (fast); the per-segment one for the segment
condition. No Ray, no SQL. The weighted estimates' coverage under a traffic drift is the "weighted"
benchmark's (benchmarks.bench_weighted), here reduced the same way."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from analysis.spec import AnalysisSpec
from analysis.weighted import model_estimates
from benchmarks.bench_analysis import CODES, SPEC
from benchmarks.bench_weighted import review, sample, truth, window
from benchmarks.sim_rollouts import make_world, simulate

WHOLE = SPEC.model_copy(update={"segments": ()})


def rates(condition: str, spec: AnalysisSpec, n: int, horizon: int) -> tuple[float, float, list[int]]:
    promoted, refused, at = 0, 0, []
    for seed in range(n):
        rng = np.random.default_rng([CODES[condition], 5000 + seed, CODES["held_out"]])
        r = simulate(make_world(rng, condition, "held_out"), spec, rng, horizon, old_gates=False)
        promoted += r.analysis == "pass"
        refused += r.analysis == "fail"
        if r.analysis == "pass":
            at.append(r.analysis_at)
    return promoted / n, refused / n, at


def test_worse_candidates_are_refused() -> None:
    worse, worse_refused, _ = rates("worse", WHOLE, 30, 500)
    assert worse == 0 and worse_refused >= 0.8  # target: promoted <= 5%
    segment, _, _ = rates("worse_segment", SPEC, 12, 500)
    assert segment == 0


def test_good_candidates_are_promoted() -> None:
    equal, equal_refused, _ = rates("equal", WHOLE, 30, 400)
    # An equal candidate sits on the boundary of "not worse", so it is refused in up to alpha (5%) of
    # rollouts: 3 of 30 allows for the binomial spread of so few.
    assert equal >= 0.6 and equal_refused <= 3 / 30
    better, _, at = rates("better", WHOLE, 30, 300)
    assert better >= 0.8 and np.median(at) < 150  # target: >= 90% within 300


def test_weighted_intervals_cover_the_window_they_claim_when_the_traffic_drifts() -> None:
    """Night photos go from none to all over the window and the agreements' verdicts fall behind (one
    verdict per 4.5 photos, served oldest first): read over every photo logged, the oldest verdicts stood
    for all of them and most intervals missed; up to the common frontier they cover what they claim."""
    rows, hits = 4000, {"common_frontier": 0, "whole_log": 0}
    for seed in range(10):
        w = window(np.random.default_rng([73, seed]), (0.0, 1.0), rows)
        resolved, edge = review(w, 4.5)
        now = sample(w, resolved, edge)
        before = replace(now, counts=tuple(replace(r, common=True) for r in now.counts), common_frontier=math.inf)
        for reading, smp, upto in (("common_frontier", now, edge), ("whole_log", before, rows)):
            true = truth(w, upto)
            hits[reading] += sum(getattr(e, m).lower <= true[name][m] <= getattr(e, m).upper
                                 for name, e in model_estimates(smp).items() for m in ("accuracy", "precision"))
    # Of 40 intervals each; the second shows the world is one where reading the whole log fails.
    assert hits["common_frontier"] >= 36 and hits["whole_log"] <= 28

"""A reduced version of the "analysis" benchmark, seeded: simulated rollouts with a known truth reviewed
verdict by verdict, the paired analysis read after every verdict. Asserts the benchmark's rates with a
margin for the small number of rollouts (the figures themselves are in BENCHMARKS.md, section analysis).
The whole-traffic analysis is read for the overall conditions (fast); the per-segment one for the segment
condition. No Ray, no SQL."""

from __future__ import annotations

import numpy as np

from analysis.spec import AnalysisSpec
from benchmarks.bench_analysis import CODES, SPEC
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

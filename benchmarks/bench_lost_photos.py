"""Lost photos: simulated rollouts in which a share of the photos sampled for review was never kept (a
photo store that dropped them, or one per node), the paired analysis reading each as the worst case for its
decision (the code) and as a tie between the models (the code before `ReviewSample.unseen`), on the same
seeds (benchmarks.sim_rollouts)."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from benchmarks.bench_analysis import CODES, HORIZON, SPEC
from benchmarks.run import Target

CONDITIONS = ("worse", "equal")
LOST = (0.0, 0.1, 0.3)
READINGS = ("worst_case", "ties")

NOTES = """
How to read this section. The worlds, traffic, sampling and review order are the analysis section's
held-out family (the same seeds: numpy default_rng([condition code, rollout, 30]), rollouts 0..N-1), and the
plan is its plan (margin 0.05, segments region and ood). Each sampled photo is then lost with the stated
probability, independently of everything else, and never reaches the queue; each rollout is read once
with the lost disagreements as the worst case for the decision at hand (a loss for the candidate where
a pass is shown, a win where a fail is shown: `analysis.paired`) and once as ties, which is how the
counts read them before. No tuning: nothing in the analysis was chosen on these runs.

What it shows: read as ties, lost photos pull the estimate toward no difference by the share lost, so a
candidate worse by the margin looks better than it is and is promoted more often than alpha allows. Read
as the worst case, the stated error rates hold whatever the lost photos' truth, at a price: a lost
photo can count against a pass and against a fail, so rollouts that lose many photos stay inconclusive
(refused and equally good in the table), and the analysis's summary says how many were lost. Losses at
random are the kindest case: a node whose photos are not shared loses a region's photos together.
"""


def _chunk(args: tuple[str, float, str, int, int]) -> list[dict[str, object]]:
    from benchmarks.sim_rollouts import make_world, simulate

    condition, lost, reading, start, stop = args
    out = []
    for seed in range(start, stop):
        rng = np.random.default_rng([CODES[condition], seed, CODES["held_out"]])
        world = make_world(rng, condition, "held_out")
        r = simulate(world, SPEC, rng, HORIZON, old_gates=False, lost=lost, unseen_as_ties=reading == "ties")
        out.append({"analysis": r.analysis, "at": r.analysis_at})
    return out


def _figures(runs: list[dict[str, object]]) -> dict[str, float | int]:
    n = len(runs)
    promoted = [r for r in runs if r["analysis"] == "pass"]
    return {"rollouts": n, "promoted": len(promoted) / n,
            "promoted_within_400": sum(r["at"] <= 400 for r in promoted) / n,  # type: ignore[operator]
            "refused": sum(r["analysis"] == "fail" for r in runs) / n,
            "inconclusive_at_horizon": sum(r["analysis"] == "inconclusive" for r in runs) / n}


def run(quick: bool, out_dir: Path | None = None) -> dict[str, object]:
    """$ROOMSIGHT_BENCH_LOST_ROLLOUTS sets the rollouts per condition, share lost and reading."""
    n = int(os.environ.get("ROOMSIGHT_BENCH_LOST_ROLLOUTS", 20 if quick else 300))
    configs = [(c, lost, reading) for c in CONDITIONS for lost in LOST for reading in READINGS
               if lost or reading == "worst_case"]  # with nothing lost the two readings are one
    jobs = [(*cfg, s, min(s + 25, n)) for cfg in configs for s in range(0, n, 25)]
    with ProcessPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        chunks = list(pool.map(_chunk, jobs))
    results: dict[str, object] = {"spec": SPEC.model_dump(), "horizon_verdicts": HORIZON, "rollouts": n}
    for cfg in configs:
        runs = [r for job, chunk in zip(jobs, chunks) if job[:3] == cfg for r in chunk]
        results[f"{cfg[0]}.lost_{cfg[1]:g}.{cfg[2]}"] = _figures(runs)
    return results


def targets(res: dict[str, object]) -> list[Target]:
    out = []
    for lost in LOST[1:]:
        worst, ties = (res[f"worse.lost_{lost:g}.{reading}"] for reading in READINGS)
        equal = res[f"equal.lost_{lost:g}.worst_case"]
        out.append(Target(f"worse by 0.05, {lost:.0%} of sampled photos lost: promoted <= 5%",
                          f"{worst['promoted']:.1%}, refused {worst['refused']:.1%} (read as ties: promoted "  # type: ignore[index]
                          f"{ties['promoted']:.1%}); equally good promoted within 400 verdicts "  # type: ignore[index]
                          f"{equal['promoted_within_400']:.1%}", worst["promoted"] <= 0.05))  # type: ignore[index]
    return out

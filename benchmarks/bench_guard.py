"""The guard on real photos: the demo's last step (shell.demo.Demo.swapped) on ../shared/data/rooms, over
real HTTP with real review verdicts through the reviewer page's API: a candidate that learnt bedroom and
living_room the wrong way round is forced into limited, and the guard must take it off by itself. Reported:
how many requests it answered and how many verdicts the quality analysis read before the rollback, and
whether `rollout plan replay` over the recorded rollout takes the decision the guard took live. --quick
runs the synthetic photos at a third of the traffic. (The whole story, the night-time shift caught during
gradual included, is `tests/test_demo.py` on the synthetic photos: on real photos two honest candidates
differ on too few photos for the shadow step's analysis to pass within a demo's traffic; see the analysis
section for how many verdicts that takes.)"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.run import Target

ROOMS = Path(os.environ.get("ROOMSIGHT_REAL_DATA", Path(__file__).resolve().parents[2] / "shared" / "data" / "rooms"))
PORT = 8795

NOTES = """
**What this measures and on what.** One run on the real photos: a champion and a candidate with bedroom and
living_room swapped, each trained by the demo's real-photo recipe (head-only on the cached backbone) on the
photos' train split; the traffic is the folder's photos in an order fixed by a hash, three regions, 30 to
warm up and then batches of 30 until the guard acts, so the models answer photos they trained on as well as
ones they did not. The reviewers answer with each photo's label. Nothing here was tuned on this run: the plan is the shipped one and its analysis margins come from the analysis
benchmark's tuning family. How often the quality analysis passes, fails or waits over many rollouts is the
analysis section's figure (a healthy candidate is failed by it, and so rolled back by the guard, which reads
the same analysis however often, at most at the fail test's stated 5%). One run, one seed: a figure, not a
rate.

**Before and after the disagreement fix** (2026-12-06). Until then the shadow comparison counted `unsure`
against a class as agreeing, so those photos were not queued as disagreements and the analysis read them as
ties; the same run took 240 requests, 84 answered by the candidate and 137 verdicts, to roll it back.
"""


def run(quick: bool = False, out_dir: Path | None = None) -> dict:
    from rich.console import Console

    from rollout.control import ControlPlane
    from rollout.plan import load_plan
    from rollout.replay import replay
    from shell.demo import STORY, Demo, run_demo
    from shell.demo_parts import demo_settings

    data = None if quick or not ROOMS.exists() else ROOMS
    photos = str(data) if data else ("synthetic (--quick)" if quick else f"synthetic ({ROOMS} not found)")
    folder = Path(tempfile.mkdtemp(prefix="roomsight-bench-guard-"))
    t0 = time.time()
    with open(folder / "demo.log", "w") as log:
        summary = run_demo(data=data, run_dir=folder / "run", port=PORT, console=Console(file=log, width=160),
                           scale=0.3 if quick else 1.0,
                           story=tuple(s for s in STORY if s[1] in (Demo.warm_up, Demo.swapped)))
    settings = demo_settings(folder / "run" / "home", PORT)
    cp = ControlPlane(settings, load_plan(settings.plan), actor="bench")
    r = replay(cp, summary["swapped_rollout"])
    replays = {"recorded": [a for _, a, _ in r.recorded], "replayed": [a for _, a, _ in r.decisions], "matches": r.matches}
    shutil.rmtree(folder, ignore_errors=True)
    return {"photos": photos, "demo_s": round(time.time() - t0, 1),
            "swapped": summary.get("swapped"), "replay": replays,
            "final_champion": summary["final_state"]["champion"]["version"]}


def targets(r: dict) -> list[Target]:
    bad = r.get("swapped") or {}
    return [
        Target("a candidate worse on two classes, forced into limited, is taken off automatically",
               f"{bad.get('action', 'not taken off')} after {bad.get('requests', '?')} requests, "
               f"{bad.get('candidate_served') or 0:.0f} answered by it, {bad.get('verdicts') or 0:.0f} verdicts",
               bad.get("action") == "auto-rollback"),
        Target("replay over the recorded rollout takes the guard's live decision",
               f"live {r['replay']['recorded']}, replay {r['replay']['replayed']}", r["replay"]["matches"]),
    ]

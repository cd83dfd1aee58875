"""`make bench`: run the benchmarks side by side in one session and write BENCHMARKS.md (with PNG plots
next to it). Options: --quick (small sizes, a smoke run), --only NAME[,NAME] (store, review, review_counts,
analysis, weighted, lost_photos, serving, monitoring, drift, training, soak, scale, guard, guard_soak,
class_gate), --out DIR.

Each benchmark module has `run(quick, out_dir) -> dict` and may have `targets(results) -> list[Target]`:
the claims it checks, each with the measured figure and whether it was met, and `NOTES`, what a reader
needs to weigh the figures (why a target is missed, what was tried). A missed target is reported
as missed, never dropped. Sections are kept in BENCHMARKS.json next to the page, so `--only` re-runs one
section and keeps the others, each labelled with the command and date that produced it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

MODULES = ("store", "review", "review_counts", "analysis", "weighted", "lost_photos", "serving", "monitoring", "drift",
           "training", "soak", "scale", "guard", "guard_soak", "class_gate")


@dataclass(frozen=True)
class Target:
    claim: str
    measured: str
    met: bool


def machine() -> str:
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {mem_gib:.0f} GiB RAM, {platform.processor() or platform.machine()}, Python {platform.python_version()}"


def render(sections: dict[str, dict]) -> str:
    lines = ["# Benchmarks", "", "Produced by `make bench` (`python -m benchmarks.run`); each section names the command, machine",
             "and date of its run. All figures of a section come from one run, side by side; ratios compare figures",
             "measured together. A missed target says so.", ""]
    for name in [m for m in MODULES if m in sections]:
        sec = dict(sections[name])
        meta = sec.pop("_meta", {})
        lines += [f"## {name}", "", f"Command: `{meta.get('command', '?')}`  ", f"Date: {meta.get('date', '?')}  ",
                  f"Machine: {meta.get('machine', '?')}", ""]
        if "error" in sec:
            lines += ["Benchmark failed:", "", "```", sec["error"], "```", ""]
            continue
        targets = sec.pop("_targets", [])
        if targets:
            lines += ["| claim | measured | met |", "|---|---|---|"]
            lines += [f"| {t['claim']} | {t['measured']} | {'yes' if t['met'] else '**no (missed)**'} |" for t in targets]
            lines.append("")
        notes = getattr(importlib.import_module(f"benchmarks.bench_{name}"), "NOTES", "")
        if notes:
            lines += [notes.strip(), ""]
        for key, value in sec.items():
            if isinstance(value, str) and value.endswith(".png"):
                lines += [f"![{key}]({value})", ""]
        lines += ["<details><summary>all figures</summary>", "", "```json",
                  json.dumps({k: v for k, v in sec.items()}, indent=1, default=str), "```", "", "</details>", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="make bench", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke run, figures not representative")
    ap.add_argument("--only", default=",".join(MODULES), help=f"comma-separated subset of {', '.join(MODULES)}")
    ap.add_argument("--out", type=Path, default=Path("."), help="where BENCHMARKS.md and the plots go")
    args = ap.parse_args(argv)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    args.out.mkdir(parents=True, exist_ok=True)
    command = "make bench" + (f" BENCH_ARGS='{' '.join(argv or sys.argv[1:])}'" if (argv or sys.argv[1:]) else "")
    store = args.out / "BENCHMARKS.json"
    sections: dict[str, dict] = json.loads(store.read_text()) if store.exists() else {}
    for name in [m.strip() for m in args.only.split(",") if m.strip()]:
        if name not in MODULES:
            ap.error(f"unknown benchmark {name!r}; choose from {', '.join(MODULES)}")
        print(f"== {name}", flush=True)
        t0 = time.time()
        try:
            mod = importlib.import_module(f"benchmarks.bench_{name}")
            res = mod.run(quick=args.quick, out_dir=args.out)
            if hasattr(mod, "targets"):
                res["_targets"] = [asdict(t) for t in mod.targets(res)]
            res["benchmark_seconds"] = round(time.time() - t0, 1)
        except Exception:
            res = {"error": traceback.format_exc(limit=5)}
        finally:
            _stop_local_ray()
        res["_meta"] = {"command": command, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine()}
        sections[name] = json.loads(json.dumps(res, default=str))
        print(json.dumps({k: v for k, v in res.items() if not k.startswith("_")}, default=str)[:2000], flush=True)
        store.write_text(json.dumps(sections, indent=1))
    (args.out / "BENCHMARKS.md").write_text(render(sections))
    print(f"wrote {args.out / 'BENCHMARKS.md'}")
    return 0


def _stop_local_ray() -> None:
    """A section that served on a local Ray leaves it up in this process, with Serve bound to that section's
    port: the next section's Serve would join it and keep the old port (Serve ignores new HTTP options), so
    its clients would find nothing on theirs. Each section starts from no Ray."""
    if "ray" in sys.modules and sys.modules["ray"].is_initialized():
        sys.modules["ray"].shutdown()


if __name__ == "__main__":
    raise SystemExit(main())

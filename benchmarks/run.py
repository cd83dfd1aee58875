"""`make bench`: run the benchmarks side by side in one session and write BENCHMARKS.md (with PNG plots
next to it). Options: --quick (small sizes, a smoke run), --only NAME[,NAME] (store, review, serving,
monitoring, training), --out DIR.

Each benchmark module has `run(quick, out_dir) -> dict` and may have `targets(results) -> list[Target]`:
the claims it checks, each with the measured figure and whether it was met. A missed target is reported
as missed, never dropped.
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
from dataclasses import dataclass
from pathlib import Path

MODULES = ("store", "review", "serving", "monitoring", "training")


@dataclass(frozen=True)
class Target:
    claim: str
    measured: str
    met: bool


def machine() -> str:
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {mem_gib:.0f} GiB RAM, {platform.processor() or platform.machine()}, Python {platform.python_version()}"


def render(sections: dict[str, dict], command: str) -> str:
    lines = ["# Benchmarks", "", f"Command: `{command}`  ", f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  ",
             f"Machine: {machine()}  ",
             "All figures of a section come from one run, side by side; ratios compare figures measured together.", ""]
    for name, sec in sections.items():
        lines += [f"## {name}", ""]
        if "error" in sec:
            lines += ["Benchmark failed:", "", "```", sec["error"], "```", ""]
            continue
        targets = sec.pop("_targets", [])
        if targets:
            lines += ["| claim | measured | met |", "|---|---|---|"]
            lines += [f"| {t.claim} | {t.measured} | {'yes' if t.met else '**no (missed)**'} |" for t in targets]
            lines.append("")
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
    sections: dict[str, dict] = {}
    for name in [m.strip() for m in args.only.split(",") if m.strip()]:
        if name not in MODULES:
            ap.error(f"unknown benchmark {name!r}; choose from {', '.join(MODULES)}")
        print(f"== {name}", flush=True)
        t0 = time.time()
        try:
            mod = importlib.import_module(f"benchmarks.bench_{name}")
            res = mod.run(quick=args.quick, out_dir=args.out)
            if hasattr(mod, "targets"):
                res["_targets"] = mod.targets(res)
            res["benchmark_seconds"] = round(time.time() - t0, 1)
            sections[name] = res
        except Exception:
            sections[name] = {"error": traceback.format_exc(limit=5)}
        print(json.dumps({k: v for k, v in sections[name].items() if k != "_targets"}, default=str)[:2000], flush=True)
    (args.out / "BENCHMARKS.md").write_text(render(sections, command))
    print(f"wrote {args.out / 'BENCHMARKS.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

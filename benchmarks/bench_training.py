"""Training figures on the real photos (../shared/data/rooms, or $ROOMSIGHT_REAL_DATA) with the default
backbone: wall time, held-out accuracy, and per-class recall at the 0.95-precision thresholds, for the
default command (last stages fine-tuned on cached activations), head-only, and a full fine-tune.

    .venv/bin/python -m benchmarks.bench_training [--quick]

`--quick` skips the full fine-tune (the slow one). Each variant registers into its own scratch registry.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REAL = Path(os.environ.get("ROOMSIGHT_REAL_DATA", Path(__file__).resolve().parents[2] / "shared" / "data" / "rooms"))
TARGETS = {"minutes": 10.0, "accuracy": 0.90, "recall_all": 0.50,
           "recall_key": {"bedroom": 0.80, "bathroom": 0.80, "kitchen": 0.80, "exterior": 0.80}}


def _log(event: str, info: dict[str, Any]) -> None:
    if event in ("split", "fit-start", "epoch", "evaluated"):
        print(f"[{time.strftime('%H:%M:%S')}] {event} {info}", file=sys.stderr, flush=True)


def _one(name: str, **overrides: Any) -> dict[str, Any]:
    from roomsight.config import load_settings
    from training.pipeline import TrainConfig, train

    with tempfile.TemporaryDirectory(prefix=f"bench-train-{name}-") as home:
        settings = load_settings(environ={"ROOMSIGHT_HOME": home})
        t0, c0 = time.perf_counter(), time.process_time()
        result = train(settings, TrainConfig(data=REAL, **overrides), progress=_log)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    m = result.metrics
    recall = {c: round(m[f"test_recall_at_thresholds.{c}"], 3) for c in result.classes}
    key_ok = all(recall.get(c, 0) >= r for c, r in TARGETS["recall_key"].items())
    return {"variant": name, "seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1), "test_accuracy": round(m["test_accuracy"], 3),
            "valid_accuracy": round(m["valid_accuracy"], 3), "epochs_run": int(m["epochs_run"]),
            "coverage_at_thresholds": round(m["test_coverage_at_thresholds"], 3),
            "precision_at_thresholds": round(m["test_precision_at_thresholds"], 3),
            "recall_at_thresholds": recall,
            "meets": {"time": seconds <= TARGETS["minutes"] * 60, "accuracy": m["test_accuracy"] >= TARGETS["accuracy"],
                      "recall_all": min(recall.values()) >= TARGETS["recall_all"], "recall_key": key_ok},
            "skipped_images": len(result.skipped)}


def run(quick: bool = False) -> dict[str, Any]:
    if not REAL.exists():
        return {"skipped": f"{REAL} not found"}
    out = {"data": str(REAL), "cores": os.cpu_count(), "targets": TARGETS, "variants": []}
    variants: list[tuple[str, dict[str, Any]]] = [("default (last stages, cached)", {}), ("head-only (cached)", {"tune": "head"})]
    if not quick:
        # Two epochs: at about 0.15 s per image per epoch on two cores a longer full run exceeds the budget.
        variants.append(("full fine-tune, 2 epochs", {"tune": "full", "epochs": 2}))
    for name, overrides in variants:
        res = _one(name, **overrides)
        print(json.dumps(res), flush=True)
        out["variants"].append(res)
    return out


def main() -> None:
    print(json.dumps(run(quick="--quick" in sys.argv), indent=1))


if __name__ == "__main__":
    main()

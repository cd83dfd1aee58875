"""The out-of-domain flags on shifted real photos (monitoring.shifts), for the monitoring section of
BENCHMARKS.md: how each flag's margin is tuned, and what it catches and falsely flags on the part no
tuning touched.

The photos are split three ways: a third are the reference (a model's training photos, which calibrate
the flags' quantiles); the rest are sources of shifted photos, half of them held out by file name. The
tuning part is the shifts of the other half, of kinds and strength bands not held out; the held-out part
is every shift (every kind and strength) of the held-out sources, with their untouched photos.

Each split and draw of shifts is a `Draw`; several are made (other reference thirds, other shifts; the
held-out sources stay the same half). A flag's margin is tuned as the smallest one (on a 0.05 grid, beyond
each draw's reference quantile) at which every ordinary kind of the draws' tuning parts, pooled, is flagged
at most FALSE_MAX with CONFIDENCE: the one-sided Clopper-Pearson upper bound on the share it flags. The
false-flag target is what binds, and the catch rate is then as high as the statistic allows. A bound, not
the share itself: a margin cut where a kind's share just touches 2% leaves its true share near 2%, as likely
over the target on new photos as under it. Pooled draws, not one: the bound is as tight as its count
allows, and the margin has to hold for references that differ as each model's training photos do.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from monitoring.descriptors import describe
from monitoring.ood import RULES, Calibration
from monitoring.shifts import SHIFTS, shift
from monitoring.shifts.cases import Case, cases, held_out_source
from roomsight.binomial import clopper_pearson_upper
from roomsight.images import SERVE_MAX_SIDE, DecodedImage, decode_image

FALSE_MAX = 0.02  # ordinary photos flagged, at most
CONFIDENCE = 0.9  # with which the tuning part must show FALSE_MAX holds for each ordinary kind
CATCH_MIN = 0.95  # shifted photos of the flag's kinds flagged, at least
PER_SOURCE = 32  # shifted versions of each source photo, per draw
DRAWS = (0, 1, 2, 3, 4)  # the seeds of the draws tuned on together and read together
FLAGS = ("night_time", "low_resolution")
# Margins at which the held-out part is also read, to show the trade-off; no margin is chosen from them.
MARGINS_READ = np.round(np.arange(0.3, 1.21, 0.05), 2)


def uploaded(im: Image.Image) -> DecodedImage:
    """As the ingress sees an upload: JPEG bytes, decoded back as serving decodes them (noise and sizes are
    what a client sends; a photo over serving's cap is shrunk to it, as the model and descriptors see it)."""
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    return decode_image(buf.getvalue(), max_side=SERVE_MAX_SIDE)


def described(im: Image.Image) -> dict[str, float]:
    """The descriptors serving logs for `im` uploaded: of the decoded photo, with the upload's own size."""
    d = uploaded(im)
    return describe(d.image, d.width, d.height, d.n_bytes)


@dataclass
class Shifted:
    case: Case
    descriptors: dict[str, float]


def auroc(negatives: list[float], positives: list[float]) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    neg, pos = np.asarray(negatives), np.asarray(positives)
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def shifted_photos(drawn: list[Case]) -> list[Shifted]:
    return [Shifted(c, described(shift(Image.open(c.source).convert("RGB"), c.kind, c.strength, c.seed))) for c in drawn]


def _count(flag: str, threshold: float, rows: list[dict[str, float]]) -> int:
    stat = RULES[flag].statistic
    return sum((s := stat(d)) is not None and s >= threshold for d in rows)


def _by_kind(rows: list[Shifted]) -> dict[str, list[dict[str, float]]]:
    out: dict[str, list[dict[str, float]]] = {}
    for r in rows:
        out.setdefault(r.case.kind, []).append(r.descriptors)
    return out


@dataclass
class Draw:
    """One split of the photos and one draw of the shifts: the reference third (its descriptors set the
    flags' quantiles), the untouched held-out sources, and the shifted photos of each part."""

    seed: int
    reference: list[dict[str, float]]
    clean: list[dict[str, float]]
    tuning: list[Shifted]
    held: list[Shifted]
    per_source: int = PER_SOURCE

    def high(self, flag: str) -> float:
        """The reference's quantile of the flag's statistic, which its margin is counted from."""
        stat = RULES[flag].statistic
        return float(np.percentile([stat(d) for d in self.reference], RULES[flag].quantile))


def draw(paths: list[str], per_source: int, seed: int = 0) -> Draw:
    """A third of `paths` (shuffled by `seed`) as the reference, the rest as sources of shifts; the
    held-out sources are the same half by file name in every draw."""
    rng = np.random.default_rng(seed)
    paths = [paths[i] for i in rng.permutation(len(paths))]
    third = len(paths) // 3
    sources = paths[third:]
    # A shift of a tuning source is drawn in a held-out kind or strength band too; it is in neither part.
    drawn = [c for c in cases(sources, per_source, seed + 1) if not c.held_out or held_out_source(c.source)]
    rows = shifted_photos(drawn)
    return Draw(seed, reference=[described(Image.open(p).convert("RGB")) for p in paths[:third]],
                clean=[described(Image.open(p).convert("RGB")) for p in sources if held_out_source(p)],
                tuning=[r for r in rows if not r.case.held_out],
                held=[r for r in rows if held_out_source(r.case.source)], per_source=per_source)


def tune_margin(flag: str, draws: list[Draw]) -> dict:
    """The smallest margin at which every ordinary kind of the draws' tuning parts, pooled, is shown with
    CONFIDENCE to be flagged at most FALSE_MAX; each draw's threshold is its own reference's quantile plus
    the margin, as each model's is."""
    parts = [(d.high(flag), _by_kind(d.tuning)) for d in draws]
    kinds = sorted({k for _, by in parts for k in by})
    ordinary = [k for k in kinds if not SHIFTS[k].expect]
    caught = [k for k in kinds if flag in SHIFTS[k].expect]

    def count(kind: str, margin: float) -> tuple[int, int]:
        return (sum(_count(flag, high + margin, by.get(kind, [])) for high, by in parts),
                sum(len(by.get(kind, [])) for _, by in parts))

    out = {"rule": f"each ordinary kind's {CONFIDENCE:.0%} upper bound on its flagged share <= {FALSE_MAX:.0%}",
           "shipped_margin": RULES[flag].margin, "draws": [d.seed for d in draws],
           "reference_high": [round(high, 4) for high, _ in parts],
           "tuning_cases": sum(len(d.tuning) for d in draws),
           "ordinary_cases": {k: count(k, 0.0)[1] for k in ordinary}}
    for margin in np.round(np.arange(-0.5, 2.0, 0.05), 2):
        if all(clopper_pearson_upper(*count(k, margin), CONFIDENCE) <= FALSE_MAX for k in ordinary):
            shares = {k: count(k, margin) for k in ordinary + caught}
            return {"margin": float(margin), **out,
                    "tuning_flagged": {k: round(f / max(1, n), 4) for k, (f, n) in shares.items()}}
    return {"margin": None, **out}


def held_out_figures(flag: str, draws: list[Draw], margin: float) -> dict:
    """Per kind, the share flagged over the draws' held-out parts (a catch rate for the flag's kinds, a
    false-flag rate for the others), each draw at its reference's quantile plus `margin`."""
    flagged: dict[str, list[int]] = {}
    clean = [0, 0]
    for d in draws:
        threshold = d.high(flag) + margin
        for kind, rows in _by_kind(d.held).items():
            f = flagged.setdefault(kind, [0, 0])
            f[0] += _count(flag, threshold, rows)
            f[1] += len(rows)
        clean[0] += _count(flag, threshold, d.clean)
        clean[1] += len(d.clean)

    def share(kinds: list[str]) -> float:
        return round(sum(flagged[k][0] for k in kinds) / max(1, sum(flagged[k][1] for k in kinds)), 4)

    return {
        "margin": margin, "draws": [d.seed for d in draws],
        "caught": share([k for k in flagged if flag in SHIFTS[k].expect]),
        "clean_flagged": round(clean[0] / max(1, clean[1]), 4),
        "ordinary_flagged": share([k for k in flagged if not SHIFTS[k].expect]),
        "per_kind": {k: {"flagged": round(f / max(1, n), 3), "n": n,
                         "should": "flag" if flag in SHIFTS[k].expect else ("-" if SHIFTS[k].expect else "not flag"),
                         "kind_held_out": SHIFTS[k].held_out}
                     for k, (f, n) in sorted(flagged.items())},
    }


def auroc_vs_clean(flag: str, draws: list[Draw]) -> float:
    """How well the flag's statistic alone tells the held-out shifts of its kinds from untouched photos,
    whatever the margin."""
    stat = RULES[flag].statistic
    mine = [stat(r.descriptors) for d in draws for r in d.held if flag in SHIFTS[r.case.kind].expect]
    return round(auroc([stat(x) for d in draws for x in d.clean], mine), 4)


def in_brief(held: dict) -> dict:
    """The catch, and the untouched photos' and worst ordinary kind's false-flag rates, of held_out_figures."""
    ordinary = {k: v["flagged"] for k, v in held["per_kind"].items() if v["should"] == "not flag"}
    worst = max(ordinary, key=ordinary.__getitem__)
    return {"caught": held["caught"], "clean_flagged": held["clean_flagged"], "worst_ordinary_kind": worst,
            "worst_ordinary_flagged": ordinary[worst]}


def flag_figures(draws: list[Draw]) -> dict:
    """Each flag's margin tuned on the draws' tuning parts pooled, the held-out figures at the shipped
    margin over all draws, in brief per draw (with the margin the rule would tune on that draw alone), and
    in brief at other margins: how catches trade against false flags on the held-out part, read only."""
    figures = {"draws": [d.seed for d in draws], "photos_reference": len(draws[0].reference),
               "photos_held_out_sources": len(draws[0].clean), "per_source": draws[0].per_source,
               "shifted_tuning": sum(len(d.tuning) for d in draws), "shifted_held_out": sum(len(d.held) for d in draws)}
    for flag in FLAGS:
        shipped = RULES[flag].margin
        figures[flag] = {
            "tuning": tune_margin(flag, draws),
            "held_out": {**held_out_figures(flag, draws, shipped), "auroc_vs_clean": auroc_vs_clean(flag, draws)},
            "per_draw": {d.seed: {"tuned_margin_alone": tune_margin(flag, [d])["margin"],
                                  **in_brief(held_out_figures(flag, [d], shipped))} for d in draws},
            "held_out_by_margin": {f"{m:.2f}": in_brief(held_out_figures(flag, draws, float(m)))
                                   for m in MARGINS_READ},
        }
    cal = [Calibration.from_reference({"images": {"descriptors": {k: [r[k] for r in d.reference]
                                                                  for k in d.reference[0]}}})
           for d in draws]
    both = sum(bool(c.assess(x, 0.5, FLAGS).flags) for c, d in zip(cal, draws) for x in d.clean)
    figures["clean_flagged_any"] = round(both / max(1, sum(len(d.clean) for d in draws)), 4)
    return figures


def novelty_figures(reference_paths: list[str], clean_paths: list[str], held: list[Shifted], per_family: int = 60,
                    seed: int = 0) -> dict:
    """AUROC of the novelty statistic (distance of the embedding to the reference's centre) between untouched
    held-out photos and shifted ones, per family of shift, for the default backbone's ImageNet embedding (the
    embedding a head-only model exports), and the same for a Mahalanobis distance in the reference's
    principal components, the usual stronger choice."""
    import torch

    from roomsight.preprocess import Preprocessing, batch_tensor
    from training.backbones import create
    from training.pipeline import REAL_BACKBONE

    bb = create(REAL_BACKBONE)
    bb.module.eval()
    prep = Preprocessing(size=bb.input_size, mean=bb.mean, std=bb.std)

    def embed(images: list[Image.Image]) -> np.ndarray:
        with torch.inference_mode():
            return np.concatenate([bb.module(batch_tensor(images[i:i + 32], prep)).numpy() for i in range(0, len(images), 32)])

    def load(paths: list[str]) -> list[Image.Image]:
        return [uploaded(Image.open(p).convert("RGB")).image for p in paths]

    ref = embed(load(reference_paths))
    mean = ref.mean(0)
    scale = float(np.median(np.linalg.norm(ref - mean, axis=1)))
    _, s, vt = np.linalg.svd(ref - mean, full_matrices=False)
    k = 32
    comps, var = vt[:k], (s[:k] ** 2) / len(ref)

    def euclid(e: np.ndarray) -> np.ndarray:
        return np.linalg.norm(e - mean, axis=1) / scale

    def mahalanobis(e: np.ndarray) -> np.ndarray:
        """In the top principal components, each scaled to unit variance on the reference."""
        z = (e - mean) @ comps.T
        return np.sqrt((z ** 2 / var).sum(1))

    clean = embed(load(clean_paths))
    rng = np.random.default_rng(seed)
    families = {"night_time": lambda k: "night_time" in SHIFTS[k].expect,
                "low_resolution": lambda k: "low_resolution" in SHIFTS[k].expect,
                "ordinary": lambda k: not SHIFTS[k].expect}
    out: dict = {"embedding": f"{REAL_BACKBONE} ImageNet features ({ref.shape[1]}-d)", "reference": len(ref),
                 "clean": len(clean), "pca_components": k}
    for family, member in families.items():
        pool = [r.case for r in held if member(r.case.kind)]
        sample = [pool[i] for i in rng.choice(len(pool), min(per_family, len(pool)), replace=False)]
        imgs = [uploaded(shift(Image.open(c.source).convert("RGB"), c.kind, c.strength, c.seed)).image for c in sample]
        e = embed(imgs)
        out[family] = {"n": len(sample), "auroc_distance_to_centre": round(auroc(list(euclid(clean)), list(euclid(e))), 4),
                       "auroc_mahalanobis_pca": round(auroc(list(mahalanobis(clean)), list(mahalanobis(e))), 4)}
    return out

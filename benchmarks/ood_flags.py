"""The out-of-domain flags on shifted real photos (monitoring.shifts), for the monitoring section of
BENCHMARKS.md: how each flag's margin is tuned, and what it catches and falsely flags on the part no
tuning touched.

The photos are split three ways: a third are the reference (a model's training photos, which calibrate
the flags' quantiles); the rest are sources of shifted photos, half of them held out by file name. The
tuning part is the shifts of the other half, of kinds and strength bands not held out; the held-out part
is every shift (every kind and strength) of the held-out sources, with their untouched photos.

A flag's margin is tuned as the smallest one (on a 0.05 grid, beyond the reference's quantile) at which
every ordinary kind of the tuning part is flagged at most FALSE_MAX with CONFIDENCE: the one-sided
Clopper-Pearson upper bound on the share it flags. The false-flag target is what binds, and the catch rate
is then as high as the statistic allows. A bound, not the share itself: a margin cut where a kind's share
just touches 2% leaves its true share near 2%, as likely over the target on new photos as under it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from monitoring.descriptors import describe
from monitoring.ood import RULES, Calibration
from monitoring.shifts.cases import Case, cases, held_out_source
from monitoring.shifts import SHIFTS, shift
from training.thresholds import lower_bound

FALSE_MAX = 0.02  # ordinary photos flagged, at most
CONFIDENCE = 0.9  # with which the tuning part must show FALSE_MAX holds for each ordinary kind
CATCH_MIN = 0.95  # shifted photos of the flag's kinds flagged, at least
PER_SOURCE = 32  # shifted versions of each source photo: enough of each ordinary kind for the bound to allow one flag
FLAGS = ("night_time", "low_resolution")


def uploaded(im: Image.Image) -> tuple[Image.Image, int]:
    """As the ingress sees an upload: JPEG bytes, decoded back (noise and sizes are what a client sends)."""
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    return Image.open(io.BytesIO(data)).convert("RGB"), len(data)


def described(im: Image.Image) -> dict[str, float]:
    decoded, n = uploaded(im)
    return describe(decoded, n_bytes=n)


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


def _flagged(flag: str, threshold: float, rows: list[dict[str, float]]) -> float:
    return _count(flag, threshold, rows) / len(rows) if rows else 0.0


def _by_kind(rows: list[Shifted]) -> dict[str, list[dict[str, float]]]:
    out: dict[str, list[dict[str, float]]] = {}
    for r in rows:
        out.setdefault(r.case.kind, []).append(r.descriptors)
    return out


def upper_bound(flagged: int, n: int, confidence: float = CONFIDENCE) -> float:
    """One-sided Clopper-Pearson upper bound on a share seen as `flagged` of `n`: one minus the thresholds'
    lower bound on the share left alone."""
    return 1.0 - float(lower_bound(n - flagged, n, confidence))


def tune_margin(flag: str, reference: list[dict[str, float]], tuning: list[Shifted]) -> dict:
    """The smallest margin at which every ordinary kind of the tuning part is shown, with CONFIDENCE, to
    be flagged at most FALSE_MAX."""
    stat = RULES[flag].statistic
    high = float(np.percentile([stat(d) for d in reference], RULES[flag].quantile))
    kinds = _by_kind(tuning)
    ordinary = {k: v for k, v in kinds.items() if not SHIFTS[k].expect}
    caught = {k: v for k, v in kinds.items() if flag in SHIFTS[k].expect}
    out = {"rule": f"each ordinary kind's {CONFIDENCE:.0%} upper bound on its flagged share <= {FALSE_MAX:.0%}",
           "shipped_margin": RULES[flag].margin, "reference_high": high, "tuning_cases": len(tuning),
           "ordinary_cases": {k: len(v) for k, v in sorted(ordinary.items())}}
    for margin in np.round(np.arange(-0.5, 2.0, 0.05), 2):
        if all(upper_bound(_count(flag, high + margin, v), len(v)) <= FALSE_MAX for v in ordinary.values()):
            return {"margin": float(margin), **out,
                    "tuning_catch": {k: round(_flagged(flag, high + margin, v), 3) for k, v in caught.items()}}
    return {"margin": None, **out}


def held_out_figures(flag: str, threshold: float, clean: list[dict[str, float]], held: list[Shifted]) -> dict:
    """Per kind, the share flagged (a catch rate for the flag's kinds, a false-flag rate for the others)."""
    kinds = _by_kind(held)
    mine = [d for k, v in kinds.items() if flag in SHIFTS[k].expect for d in v]
    ordinary = [d for k, v in kinds.items() if not SHIFTS[k].expect for d in v]
    stat = RULES[flag].statistic
    return {
        "caught": round(_flagged(flag, threshold, mine), 4),
        "clean_flagged": round(_flagged(flag, threshold, clean), 4),
        "ordinary_flagged": round(_flagged(flag, threshold, ordinary), 4),
        "auroc_vs_clean": round(auroc([stat(d) for d in clean], [stat(d) for d in mine]), 4),
        "per_kind": {k: {"flagged": round(_flagged(flag, threshold, v), 3), "n": len(v),
                         "should": "flag" if flag in SHIFTS[k].expect else ("-" if SHIFTS[k].expect else "not flag"),
                         "kind_held_out": SHIFTS[k].held_out}
                     for k, v in sorted(kinds.items())},
    }


def flag_figures(paths: list[str], per_source: int, seed: int = 0) -> tuple[dict, list[dict], list[Shifted]]:
    """(figures, clean held-out descriptors, held-out shifted photos) over `paths`."""
    rng = np.random.default_rng(seed)
    paths = [paths[i] for i in rng.permutation(len(paths))]
    third = len(paths) // 3
    reference = [described(Image.open(p).convert("RGB")) for p in paths[:third]]
    sources = paths[third:]
    held_sources = [p for p in sources if held_out_source(p)]
    clean = [described(Image.open(p).convert("RGB")) for p in held_sources]
    # A shift of a tuning source is drawn in a held-out kind or strength band too; it is in neither part.
    rows = shifted_photos([c for c in cases(sources, per_source, seed + 1) if not c.held_out or held_out_source(c.source)])
    tuning = [r for r in rows if not r.case.held_out]
    held = [r for r in rows if held_out_source(r.case.source)]
    cal = Calibration.from_reference({"images": {"descriptors": {k: [r[k] for r in reference] for k in reference[0]}}})
    figures = {"photos_reference": len(reference), "photos_held_out_sources": len(held_sources),
               "shifted_tuning": len(tuning), "shifted_held_out": len(held), "per_source": per_source}
    for flag in FLAGS:
        tuned = tune_margin(flag, reference, tuning)
        figures[flag] = {"tuning": tuned, "held_out": held_out_figures(flag, cal.centre[flag], clean, held)}
        if tuned["margin"] is not None:  # what the rule itself gives on this draw, whatever was shipped
            at_tuned = held_out_figures(flag, tuned["reference_high"] + tuned["margin"], clean, held)
            figures[flag]["held_out_at_tuned_margin"] = _brief(at_tuned)
    both = [d for d in clean if cal.assess(d, 0.5, FLAGS).flags]
    figures["clean_flagged_any"] = round(len(both) / max(1, len(clean)), 4)
    return figures, clean, held


def _brief(held: dict) -> dict:
    ordinary = {k: v["flagged"] for k, v in held["per_kind"].items() if v["should"] == "not flag"}
    worst = max(ordinary, key=ordinary.__getitem__)
    return {"caught": held["caught"], "clean_flagged": held["clean_flagged"], "worst_ordinary_kind": worst,
            "worst_ordinary_flagged": ordinary[worst]}


def in_brief(figures: dict) -> dict:
    """Per flag: the margin the rule tunes on this draw, and the held-out catch and worst false-flag rates at
    the shipped margin and at that one."""
    return {flag: {"tuned_margin": figures[flag]["tuning"]["margin"], "shipped": _brief(figures[flag]["held_out"]),
                   "at_tuned_margin": figures[flag].get("held_out_at_tuned_margin")} for flag in FLAGS}


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
        return [uploaded(Image.open(p).convert("RGB"))[0] for p in paths]

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
        imgs = [uploaded(shift(Image.open(c.source).convert("RGB"), c.kind, c.strength, c.seed))[0] for c in sample]
        e = embed(imgs)
        out[family] = {"n": len(sample), "auroc_distance_to_centre": round(auroc(list(euclid(clean)), list(euclid(e))), 4),
                       "auroc_mahalanobis_pca": round(auroc(list(mahalanobis(clean)), list(mahalanobis(e))), 4)}
    return out

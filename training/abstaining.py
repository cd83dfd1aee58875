"""Refusing a model that would answer only `unsure`: no one trains a model for that. Before any fitting
where the outcome is certain (too few photos a class for the lower bound), and after the thresholds are cut
otherwise. Each refusal says why no threshold could be cut and what would let one be."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, NoReturn

from roomsight.errors import DataError
from training.thresholds import ClassThreshold

if TYPE_CHECKING:
    from training.pipeline import TrainConfig


def check_answers(chosen: dict[str, ClassThreshold], cfg: TrainConfig, method: str, cut_on: str,
                  cross_fits: bool) -> None:
    """Refuse a model whose every class abstains under the thresholds cut. `cross_fits`: whether more folds
    would change what the thresholds are cut on."""
    if cfg.allow_always_unsure or any(t.reached for t in chosen.values()):
        return
    refuse_always_unsure(sorted(t.support for t in chosen.values()), cfg, method, cut_on, cross_fits, "reaches")


def check_answerable(photos: Mapping[str, int], cfg: TrainConfig, method: str, cut_on: str, cross_fits: bool) -> None:
    """The same refusal before any fitting, where it is certain: under the lower bound a class answers only
    after some number of right answers in a row, and a class with fewer photos to cut on cannot have them."""
    if cfg.allow_always_unsure or method != "lcb":
        return
    needed = right_answers_needed(cfg.target_precision, cfg.threshold_confidence)
    if needed is not None and max(photos.values()) >= needed:
        return
    refuse_always_unsure(sorted(photos.values()), cfg, method, cut_on, cross_fits, "can reach")


def refuse_always_unsure(sizes: list[int], cfg: TrainConfig, method: str, cut_on: str, cross_fits: bool,
                         verb: str) -> NoReturn:
    """The refusal, saying why no threshold could be cut and what would let one be."""
    why = (f"no class {verb} {cfg.target_precision:g} precision on {cut_on} "
           f"({sizes[0]}{'' if sizes[0] == sizes[-1] else f' to {sizes[-1]}'} photos a class)")
    remedies = ["more photos", "a lower --target-precision"]
    if method == "lcb":
        needed = right_answers_needed(cfg.target_precision, cfg.threshold_confidence)
        why += (f"; the {cfg.threshold_confidence * 100:g}% lower bound claims {cfg.target_precision:g} only "
                + (f"after {needed} right answers in a row" if needed else "when no answer can be wrong"))
        remedies[1:1] = ["--threshold-method point", "a lower --threshold-confidence"]
    if cross_fits and cfg.folds == 1:
        remedies.insert(0, "--folds 5 (the default: thresholds cut on out-of-fold predictions of the training "
                           "and validation photos)")
    raise DataError(f"not registered: the model would answer only 'unsure': {why}. Try " + ", ".join(remedies)
                    + "; or --allow-always-unsure to register it anyway")


def right_answers_needed(target: float, confidence: float) -> int | None:
    """The fewest right answers in a row (none wrong) whose lower bound reaches `target`: k with
    target**k <= 1 - confidence. None when no number does (a target of 1)."""
    if target >= 1.0:
        return None
    return math.ceil(math.log(1.0 - confidence) / math.log(target) - 1e-9)

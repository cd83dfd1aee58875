"""The registry of shift kinds: what a kind is (`ShiftKind`), how one is registered (`kind`) and applied
(`shift`). The kinds themselves live in the family modules beside this one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from monitoring.shifts.ops import Rng
from roomsight.registries import Registry

Apply = Callable[[Image.Image, float, Rng], Image.Image]
NIGHT, LOW_RES = ("night_time",), ("low_resolution",)


@dataclass(frozen=True)
class ShiftKind:
    apply: Apply  # (photo, strength in [0, 1], rng) -> shifted photo
    expect: tuple[str, ...]  # the flags it must raise; () for an ordinary photo that must raise none
    held_out: bool = False  # never used for tuning: figures on it show whether the flags generalise
    about: str = ""


SHIFTS: Registry[ShiftKind] = Registry("shift kind")


def kind(name: str, expect: tuple[str, ...] = (), held_out: bool = False, about: str = "") -> Callable[[Apply], Apply]:
    """Register `apply` as the kind `name`, with every fact about it."""
    def add(apply: Apply) -> Apply:
        SHIFTS.add(name, ShiftKind(apply, expect, held_out, about))
        return apply
    return add


def shift(image: Image.Image, name: str, strength: float, seed: int | Sequence[int]) -> Image.Image:
    """`image` shifted by the kind `name` at `strength` (0..1); the same arguments give the same pixels."""
    return SHIFTS[name].apply(image, float(np.clip(strength, 0.0, 1.0)), np.random.default_rng(seed))

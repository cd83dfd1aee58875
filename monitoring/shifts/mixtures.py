"""Mixtures: a kind, then one or two ordinary shifts on top (a night shot re-compressed, an upscaled photo
with noise). They expect what their base kind expects, and all are held out of tuning."""

from __future__ import annotations

from PIL import Image

from monitoring.shifts import low_resolution, night, ordinary  # noqa: F401 - the bases must be registered
from monitoring.shifts.kinds import SHIFTS, Apply, kind
from monitoring.shifts.ops import Rng

ON_TOP = ("jpeg", "noise", "exposure", "colour_cast")


def mixture(base: str) -> Apply:
    def apply(image: Image.Image, s: float, rng: Rng) -> Image.Image:
        out = SHIFTS[base].apply(image, s, rng)
        for name in rng.choice(ON_TOP, size=int(rng.integers(1, 3)), replace=False):
            out = SHIFTS[str(name)].apply(out, float(rng.uniform(0, 1)), rng)
        return out
    return apply


for _base in ("night_street", "night_lamp", "dim", "upscaled", "small"):
    kind(f"{_base}+", SHIFTS[_base].expect, held_out=True,
         about=f"{_base}, then one or two of {', '.join(ON_TOP)}")(mixture(_base))

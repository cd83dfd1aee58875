"""Out-of-domain versions of a photo, made on purpose: night-time shots (dark, tinted, noisy) and
low-resolution uploads (small thumbnails, optionally blown up again). Tests, the benchmark and the
demo use them to check that the flags fire and that drift is reported."""

from __future__ import annotations

import numpy as np
from PIL import Image

# Tints of night light: sodium street light (orange), moonlight / screen glow (blue), neutral.
NIGHT_TINTS: tuple[tuple[float, float, float], ...] = ((1.0, 0.75, 0.45), (0.55, 0.7, 1.0), (1.0, 1.0, 1.0))


def night_time(image: Image.Image, rng: np.random.Generator, darkness: float | None = None,
               tint: tuple[float, float, float] | None = None, noise: float | None = None) -> Image.Image:
    """A night-time version: light scaled down to `darkness` (0.04-0.25 when not given) with a gamma
    that crushes the shadows, a colour cast, and sensor noise (std `noise`, 0.01-0.04 of full scale)."""
    darkness = float(rng.uniform(0.04, 0.25)) if darkness is None else darkness
    tint = NIGHT_TINTS[int(rng.integers(len(NIGHT_TINTS)))] if tint is None else tint
    noise = float(rng.uniform(0.01, 0.04)) if noise is None else noise
    x = np.asarray(image.convert("RGB"), dtype=np.float32) / 255
    x = darkness * x ** 1.4 * np.asarray(tint, dtype=np.float32)
    x = x + rng.normal(0.0, noise, x.shape).astype(np.float32)
    return Image.fromarray((np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8))


def low_resolution(image: Image.Image, rng: np.random.Generator, short_side: int | None = None,
                   upscale: bool = False) -> Image.Image:
    """A low-resolution version: shrunk to `short_side` pixels (24-96 when not given); with `upscale`,
    blown back up to the original size, as a screenshot of a thumbnail would be."""
    short_side = int(rng.integers(24, 97)) if short_side is None else short_side
    w, h = image.size
    scale = short_side / min(w, h)
    small = image.convert("RGB").resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BILINEAR)
    return small.resize((w, h), Image.Resampling.BICUBIC) if upscale else small

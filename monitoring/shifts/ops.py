"""The pixel operations monitoring.shifts builds its kinds from: light, tint, sensor noise, lamps, JPEG,
exposure, blur and resizing, on photos as H x W x 3 float32 arrays in [0, 1] or PIL images."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

Rng = np.random.Generator
Array = np.ndarray  # H x W x 3 float32 in [0, 1]

SODIUM = (1.0, 0.72, 0.42)  # street light
MOON = (0.55, 0.7, 1.0)  # moonlight, screens, blue hour
LAMP = (1.0, 0.8, 0.55)  # tungsten lamp


def to_array(image: Image.Image) -> Array:
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255


def to_image(x: Array) -> Image.Image:
    return Image.fromarray((np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8))


def lerp_log(lo: float, hi: float, t: float) -> float:
    """From `lo` at t=0 to `hi` at t=1, evenly in the logarithm (exposures and sizes are multiplicative)."""
    return math.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * t)


def tint(base: Sequence[float], rng: Rng, jitter: float = 0.06) -> np.ndarray:
    return np.clip(np.asarray(base, dtype=np.float32) + rng.uniform(-jitter, jitter, 3).astype(np.float32), 0.2, 1.0)


def sensor_noise(x: Array, rng: Rng, sigma: float) -> Array:
    """Sensor noise: a signal-dependent (shot) part and a constant (read) part, partly shared by the channels."""
    grain = rng.normal(0.0, 1.0, x.shape[:2] + (1,)).astype(np.float32) * 0.7
    grain = grain + rng.normal(0.0, 0.5, x.shape).astype(np.float32)
    return x + sigma * grain * (0.5 + np.sqrt(np.clip(x, 0, 1)))


def glows(shape: tuple[int, ...], rng: Rng, count: int) -> np.ndarray:
    """A light map with `count` soft round light sources (lamps), peak 1, on a zero background."""
    h, w = shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.zeros((h, w), dtype=np.float32)
    for _ in range(count):
        cy, cx = rng.uniform(0.1, 0.7) * h, rng.uniform(0.1, 0.9) * w
        r = rng.uniform(0.08, 0.22) * min(h, w)
        out = np.maximum(out, np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r)))
    return out[..., None]


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, "JPEG", quality=int(quality))
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def exposure(image: Image.Image, brightness: float, contrast: float) -> Image.Image:
    """Brightness and contrast scaled as two cameras differ (1.0: unchanged; PIL's ImageEnhance)."""
    return ImageEnhance.Contrast(ImageEnhance.Brightness(image.convert("RGB")).enhance(brightness)).enhance(contrast)


def resized(image: Image.Image, short_side: float,
             method: Image.Resampling = Image.Resampling.BILINEAR) -> Image.Image:
    w, h = image.size
    scale = short_side / min(w, h)
    return image.convert("RGB").resize((max(1, round(w * scale)), max(1, round(h * scale))), method)


def blurred(image: Image.Image, px: float) -> Image.Image:
    """Gaussian blur of `px` pixels as seen at 256 px a side, scaled to the photo's size."""
    return image.convert("RGB").filter(ImageFilter.GaussianBlur(px * min(image.size) / 256))

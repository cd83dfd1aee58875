"""Per-image descriptors: cheap numbers about a photo that say what it looks like (light, colour, size,
sharpness, compression), computed in the serving path before routing.

A descriptor is one small function of a `Prepared` image, registered by name:

    @descriptor("brightness")
    def brightness(p: Prepared) -> float:
        return float(p.luma.mean())

Pixel descriptors see the photo downscaled once to at most `ANALYSIS_SIDE` pixels, so their cost does
not grow with the upload (budget: about 1 ms per image); size descriptors use the size as uploaded.
The model-side numbers (max softmax, energy, embedding distance) come from the model replica
(serving.models._model_scores) and join these in the log under MODEL_DESCRIPTORS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

ANALYSIS_SIDE = 128  # pixel descriptors are measured at this longest side (or the upload's, if smaller)

# Filled by the model replica after it answers; listed here so reports and references know the columns.
MODEL_DESCRIPTORS: tuple[str, ...] = ("max_softmax", "energy", "embedding_distance")


@dataclass(frozen=True)
class Prepared:
    """One image, ready for descriptors: float arrays in [0, 1] at analysis size plus upload facts."""

    rgb: np.ndarray  # H x W x 3 float32
    luma: np.ndarray  # H x W float32 (Rec. 601)
    width: int  # as uploaded
    height: int
    n_bytes: int  # encoded size of the upload; 0 when unknown


Descriptor = Callable[[Prepared], float]
DESCRIPTORS: dict[str, Descriptor] = {}


def descriptor(name: str) -> Callable[[Descriptor], Descriptor]:
    """Register a descriptor under `name`; it then appears in the log, the reference and the reports."""

    def register(fn: Descriptor) -> Descriptor:
        if name in DESCRIPTORS:
            raise ValueError(f"descriptor {name!r} is registered twice")
        DESCRIPTORS[name] = fn
        return fn

    return register


def prepare(image: Image.Image, width: int | None = None, height: int | None = None, n_bytes: int = 0) -> Prepared:
    """Downscale once (box filter: a true average, so darkness and noise are measured fairly) and convert."""
    w0, h0 = image.size
    scale = ANALYSIS_SIDE / max(w0, h0)
    small = image if image.mode == "RGB" else image.convert("RGB")
    if scale < 1:
        small = small.resize((max(1, round(w0 * scale)), max(1, round(h0 * scale))), Image.Resampling.BOX)
    rgb = np.asarray(small, dtype=np.float32) * (1 / 255)
    luma = rgb @ np.asarray([0.299, 0.587, 0.114], dtype=np.float32)
    return Prepared(rgb=rgb, luma=luma, width=width or w0, height=height or h0, n_bytes=n_bytes)


def describe(image: Image.Image, width: int | None = None, height: int | None = None, n_bytes: int = 0) -> dict[str, float]:
    """Every registered descriptor of one image, rounded for the log."""
    p = prepare(image, width, height, n_bytes)
    return {name: round(float(fn(p)), 6) for name, fn in DESCRIPTORS.items()}


@descriptor("brightness")
def brightness(p: Prepared) -> float:
    return float(p.luma.mean())


@descriptor("highlights")
def highlights(p: Prepared) -> float:
    """Brightness of the brightest tenth: a dim room still has lit windows and lamps; a night shot does not."""
    flat = p.luma.ravel()
    k = max(1, flat.size // 10)
    return float(np.partition(flat, flat.size - k)[flat.size - k:].mean())


@descriptor("contrast")
def contrast(p: Prepared) -> float:
    return float(p.luma.std())


@descriptor("saturation")
def saturation(p: Prepared) -> float:
    """Mean HSV-style saturation; near 0 for grey (or greyed-out) photos."""
    r, g, b = p.rgb[..., 0], p.rgb[..., 1], p.rgb[..., 2]
    # Pairwise maximum/minimum: numpy's max over a length-3 last axis is ~20x slower.
    mx = np.maximum(np.maximum(r, g), b)
    mn = np.minimum(np.minimum(r, g), b)
    return float(((mx - mn) / np.maximum(mx, 1e-3)).mean())


@descriptor("width")
def width(p: Prepared) -> float:
    return float(p.width)


@descriptor("height")
def height(p: Prepared) -> float:
    return float(p.height)


@descriptor("short_side")
def short_side(p: Prepared) -> float:
    return float(min(p.width, p.height))


@descriptor("megapixels")
def megapixels(p: Prepared) -> float:
    return p.width * p.height / 1e6


@descriptor("sharpness")
def sharpness(p: Prepared) -> float:
    """Variance of the 4-neighbour Laplacian at analysis size: low for blurred or upscaled photos."""
    y = p.luma
    if min(y.shape) < 3:
        return 0.0
    lap = y[1:-1, :-2] + y[1:-1, 2:] + y[:-2, 1:-1] + y[2:, 1:-1] - 4 * y[1:-1, 1:-1]
    return float(lap.var())


@descriptor("bytes_per_pixel")
def bytes_per_pixel(p: Prepared) -> float:
    return p.n_bytes / max(1, p.width * p.height)

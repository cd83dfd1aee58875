"""Per-image descriptors: cheap numbers about a photo that say what it looks like (light, colour, size,
sharpness, compression), computed in the serving path before routing.

A descriptor is one small function of a `Prepared` image, registered by name:

    @descriptor("brightness")
    def brightness(p: Prepared) -> float:
        return float(p.luma.mean())

Pixel descriptors see the photo downscaled once to at most `ANALYSIS_SIDE` pixels, so their cost does
not grow with the upload; the detail descriptors see its luma at the scale it was decoded at (at most
`detail_side`), since detail is what downscaling removes; size descriptors use the size as uploaded. Their
cost per image is measured in the monitoring benchmark (BENCHMARKS.md).
The model-side numbers (max softmax, energy, embedding distance) come from the model replica
(serving.models._model_scores) and join these in the log under MODEL_DESCRIPTORS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from PIL import Image

from monitoring.resolution import resolved_share, sharp_share
from roomsight.registries import Registry

ANALYSIS_SIDE = 128  # pixel descriptors are measured at this longest side (or the upload's, if smaller)
DETAIL_SIDE = 256  # detail descriptors' long side at most this: enough to see less than ~190 px of detail
# A wide photo at DETAIL_SIDE would be short on its short side, which is what `resolved_side` reads, so it is
# kept at a 3:2 photo's short side at least; the long cap only bounds what a banner costs. Serving decodes at most
# roomsight.images.SERVE_MAX_SIDE (512) a side, so there only a photo up to about 3:1 keeps DETAIL_SHORT.
DETAIL_SHORT, DETAIL_LONG = 170, 3 * DETAIL_SIDE

# Filled by the model replica after it answers; listed here so reports and references know the columns.
MODEL_DESCRIPTORS: tuple[str, ...] = ("max_softmax", "energy", "embedding_distance")


@dataclass(frozen=True)
class Prepared:
    """One image, ready for descriptors: float arrays in [0, 1] at analysis size plus upload facts."""

    rgb: np.ndarray  # H x W x 3 float32
    luma: np.ndarray  # H x W float32 (Rec. 601)
    detail: Image.Image  # luma ("F" mode, [0, 1]) at the decoded scale, at most `detail_side` a side
    width: int  # as uploaded
    height: int
    n_bytes: int  # encoded size of the upload; 0 when unknown

    @cached_property
    def pyramid(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The detail in the octaves 1-2, 2-4, 4-8 and 8-16 pixels across, each at its own scale (a Laplacian
        pyramid of `detail`: each level minus its half-size copy enlarged back)."""
        out, level = [], self.detail
        for _ in range(4):
            half = level.reduce(2) if min(level.size) >= 4 else level
            out.append(np.asarray(level) - np.asarray(half.resize(level.size, Image.Resampling.BILINEAR)))
            level = half
        return out[0], out[1], out[2], out[3]

    @cached_property
    def bands(self) -> tuple[float, float, float, float]:
        """Mean squared detail per pixel in each octave of `pyramid`."""
        e = [float(np.vdot(d, d)) / max(1, d.size) for d in self.pyramid]
        return e[0], e[1], e[2], e[3]


Descriptor = Callable[[Prepared], float]
DESCRIPTORS: Registry[Descriptor] = Registry("descriptor")


def descriptor(name: str) -> Callable[[Descriptor], Descriptor]:
    """Register a descriptor under `name`; it then appears in the log, the reference and the reports."""
    return DESCRIPTORS.register(name)


def detail_side(width: int, height: int) -> int:
    """The long side the detail descriptors see a photo at: DETAIL_SIDE, or more for a photo wider than 3:2
    so that its short side stays DETAIL_SHORT (a sharp panorama is no low-resolution photo)."""
    long, short = max(width, height), max(1, min(width, height))
    return max(DETAIL_SIDE, min(DETAIL_LONG, -(-DETAIL_SHORT * long // short)))


def prepare(image: Image.Image, width: int | None = None, height: int | None = None, n_bytes: int = 0) -> Prepared:
    """Downscale once (box filter: a true average, so darkness and noise are measured fairly) and convert."""
    w0, h0 = image.size
    scale = ANALYSIS_SIDE / max(w0, h0)
    small = image if image.mode == "RGB" else image.convert("RGB")
    if scale < 1:
        small = small.resize((max(1, round(w0 * scale)), max(1, round(h0 * scale))), Image.Resampling.BOX)
    rgb = np.asarray(small, dtype=np.float32) * (1 / 255)
    luma = rgb @ np.asarray([0.299, 0.587, 0.114], dtype=np.float32)
    grey = image.convert("L")
    side = detail_side(w0, h0)
    if max(w0, h0) > side:
        grey.thumbnail((side, side), Image.Resampling.BOX)
    detail = grey.convert("F").point(lambda v: v * (1 / 255))
    return Prepared(rgb=rgb, luma=luma, detail=detail, width=width or w0, height=height or h0, n_bytes=n_bytes)


def describe(image: Image.Image, width: int | None = None, height: int | None = None, n_bytes: int = 0) -> dict[str, float]:
    """Every registered descriptor of one image, rounded for the log."""
    p = prepare(image, width, height, n_bytes)
    return {name: round(float(fn(p)), 6) for name, fn in DESCRIPTORS.items()}


def _quantile(p: Prepared, q: float) -> float:
    flat = p.luma.ravel()
    return float(np.partition(flat, int(q * (flat.size - 1)))[int(q * (flat.size - 1))])


@descriptor("brightness")
def brightness(p: Prepared) -> float:
    return float(p.luma.mean())


@descriptor("highlights")
def highlights(p: Prepared) -> float:
    """Brightness of the brightest tenth: a dim room still has lit windows and lamps; a night shot does not."""
    flat = p.luma.ravel()
    k = max(1, flat.size // 10)
    return float(np.partition(flat, flat.size - k)[flat.size - k:].mean())


@descriptor("luma_median")
def luma_median(p: Prepared) -> float:
    """The middle brightness: a night shot is dark across most of the picture even where a lamp is lit."""
    return _quantile(p, 0.5)


@descriptor("luma_p25")
def luma_p25(p: Prepared) -> float:
    return _quantile(p, 0.25)


@descriptor("contrast")
def contrast(p: Prepared) -> float:
    return float(p.luma.std())


@descriptor("saturation")
def saturation(p: Prepared) -> float:
    """Mean HSV-style saturation; near 0 for grey (or greyed-out) photos."""
    r, g, b = p.rgb[..., 0], p.rgb[..., 1], p.rgb[..., 2]
    # Pairwise maximum/minimum: numpy's max over a length-3 last axis is far slower (BENCHMARKS.md, monitoring).
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


# About a sharp photo's fine_detail; a photo enlarged by a factor f has about SHARP_DETAIL / f**2.
SHARP_DETAIL = 0.4


@descriptor("fine_detail")
def fine_detail(p: Prepared) -> float:
    """Detail at 1-2 and 2-4 pixels across relative to detail at 8-16 (the geometric mean of the two
    ratios). Photos of real scenes carry detail at every scale in similar shares, so this hardly depends
    on what is pictured; an enlarged or out-of-focus photo has none at the finest scales, a sharp one of
    any size does."""
    e = p.bands
    if e[3] < 1e-7:  # a flat picture: no detail at any scale, so no evidence that any is missing
        return SHARP_DETAIL
    return float(np.sqrt(e[0] / e[3] * e[1] / e[3]))


@descriptor("resolved_side")
def resolved_side(p: Prepared) -> float:
    """The short side, in pixels, of the detail actually present: the short side as decoded times the
    lesser of two shares (monitoring.resolution): of the frequencies its detail reaches, and of its
    structured parts that are sharp to the pixel. A small upload has a small one because it is small; an
    upscaled or blurred one because its detail is missing, sharpened or not, or stamped on in one corner."""
    fine, _, coarse, _ = p.pyramid
    return min(p.detail.size) * min(resolved_share(np.asarray(p.detail)), sharp_share(fine, coarse))


@descriptor("bytes_per_pixel")
def bytes_per_pixel(p: Prepared) -> float:
    return p.n_bytes / max(1, p.width * p.height)

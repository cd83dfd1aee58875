"""Shifted versions of real photos, made on purpose, to check that the out-of-domain flags catch what they
should and leave the rest alone: many kinds and strengths of darkness, colour cast and noise, downscaling
with and without upscaling back, JPEG qualities, and mixtures of them.

Every kind is registered in `SHIFTS` with the flags it must raise (`expect`): night-time kinds must raise
`night_time`, low-resolution kinds `low_resolution`, and the ordinary ones (a dim room, warm lamp light, a
camera's exposure, a colour cast, sensor noise, JPEG compression, a mildly smaller photo, a grey day,
vignetting, a photo re-saved by a listing site) none. `strength` runs from 0 (the mildest version that
still counts as that kind) to 1 (the strongest).

Where one kind ends and the next begins is a definition, stated here once: a night shot has at most a
quarter of the light the photo was taken in (two stops under), unless a camera brightened it back; a dim
room at least half (one stop under); between the two is neither, and is not generated. A low-resolution
photo has at most 3/8 of the detail of its source (96 px of 256), a mildly smaller one at least 3/4.

Figures tuned on one set of shifts flatter the flags, so some kinds are held out of all tuning
(`ShiftKind.held_out`); monitoring.shift_cases draws the shifted photos and holds out the rest.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from roomsight.registries import Registry

Rng = np.random.Generator
Array = np.ndarray  # H x W x 3 float32 in [0, 1]

SODIUM = (1.0, 0.72, 0.42)  # street light
MOON = (0.55, 0.7, 1.0)  # moonlight, screens, blue hour
LAMP = (1.0, 0.8, 0.55)  # tungsten lamp


# -- primitives ------------------------------------------------------------------------------------
def to_array(image: Image.Image) -> Array:
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255


def to_image(x: Array) -> Image.Image:
    return Image.fromarray((np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8))


def _lerp_log(lo: float, hi: float, t: float) -> float:
    """From `lo` at t=0 to `hi` at t=1, evenly in the logarithm (exposures and sizes are multiplicative)."""
    return math.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * t)


def _tint(base: Sequence[float], rng: Rng, jitter: float = 0.06) -> np.ndarray:
    return np.clip(np.asarray(base, dtype=np.float32) + rng.uniform(-jitter, jitter, 3).astype(np.float32), 0.2, 1.0)


def _noise(x: Array, rng: Rng, sigma: float) -> Array:
    """Sensor noise: a signal-dependent (shot) part and a constant (read) part, partly shared by the channels."""
    grain = rng.normal(0.0, 1.0, x.shape[:2] + (1,)).astype(np.float32) * 0.7
    grain = grain + rng.normal(0.0, 0.5, x.shape).astype(np.float32)
    return x + sigma * grain * (0.5 + np.sqrt(np.clip(x, 0, 1)))


def _glows(shape: tuple[int, ...], rng: Rng, count: int) -> np.ndarray:
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


def _resized(image: Image.Image, short_side: float,
             method: Image.Resampling = Image.Resampling.BILINEAR) -> Image.Image:
    w, h = image.size
    scale = short_side / min(w, h)
    return image.convert("RGB").resize((max(1, round(w * scale)), max(1, round(h * scale))), method)


# -- kinds -----------------------------------------------------------------------------------------
Apply = Callable[[Image.Image, float, Rng], Image.Image]


@dataclass(frozen=True)
class ShiftKind:
    apply: Apply  # (photo, strength in [0, 1], rng) -> shifted photo
    expect: tuple[str, ...]  # the flags it must raise; () for an ordinary photo that must raise none
    held_out: bool = False  # never used for tuning: figures on it show whether the flags generalise
    about: str = ""


SHIFTS: Registry[ShiftKind] = Registry("shift kind")


def _night(base: Sequence[float], lo: float, hi: float, gamma: float) -> Apply:
    def apply(image: Image.Image, s: float, rng: Rng) -> Image.Image:
        x = to_array(image) ** gamma * _lerp_log(lo, hi, s) * _tint(base, rng)
        return to_image(_noise(x, rng, float(rng.uniform(0.008, 0.03))))
    return apply


def _night_lamp(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """A room at night lit by one or two lamps: dark away from them, warm and bright near them."""
    x = to_array(image) ** 1.3
    light = _lerp_log(0.1, 0.015, s) + _lerp_log(0.7, 0.35, s) * _glows(x.shape, rng, int(rng.integers(1, 3)))
    return to_image(_noise(x * light * _tint(LAMP, rng), rng, float(rng.uniform(0.008, 0.025))))


def _grey_street(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """Dark, grey and street-lit: most colour gone, what is left sodium orange."""
    x = to_array(image) ** 1.3 * _lerp_log(0.25, 0.06, s)
    grey = x.mean(axis=-1, keepdims=True)
    x = (grey + (x - grey) * float(rng.uniform(0.2, 0.6))) * _tint(SODIUM, rng)
    return to_image(_noise(x, rng, float(rng.uniform(0.005, 0.03))))


def _auto_exposed(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """A night shot the camera brightened back up: daylight brightness, but grainy, greyish and tinted."""
    x = to_array(image) ** 1.4 * _lerp_log(0.15, 0.03, s) * _tint(SODIUM if rng.random() < 0.5 else MOON, rng)
    x = _noise(x, rng, float(rng.uniform(0.005, 0.02)))
    grey = x.mean(axis=-1, keepdims=True)
    x = grey + (x - grey) * 0.6
    return to_image(x * (0.3 * float(rng.uniform(0.6, 1.0)) / max(float(x.mean()), 1e-3)))


def _dark_noisy(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """A phone's night shot pushed up in gain: dark, flat and grainy, no colour cast."""
    x = to_array(image) ** float(rng.uniform(1.0, 1.6)) * _lerp_log(0.18, 0.03, s)
    return jpeg(to_image(_noise(x, rng, float(rng.uniform(0.02, 0.05)))), int(rng.integers(60, 90)))


def _dim(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    x = to_array(image) ** float(rng.uniform(1.0, 1.15)) * _lerp_log(0.85, 0.5, s)
    return to_image(_noise(x, rng, float(rng.uniform(0.0, 0.01))))


def _warm_lamp(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """An evening interior in lamp light: warm, somewhat dimmer, lamps brighter than the rest."""
    x = to_array(image) * _lerp_log(0.95, 0.55, s) * (1 + 0.4 * _glows(image.size[::-1], rng, int(rng.integers(1, 3))))
    tint = np.asarray(LAMP, dtype=np.float32) ** (0.4 + 0.8 * s)
    return to_image(x * _tint(tint, rng, 0.03))


def _exposure(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    amount = 0.05 + 0.15 * s
    return exposure(image, 1 + amount * rng.choice((-1, 1)), 1 + amount * rng.choice((-1, 1)))


def _colour_cast(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    cast = 1 + (0.06 + 0.2 * s) * rng.normal(0, 1, 3).astype(np.float32) / math.sqrt(3)
    return to_image(to_array(image) * cast / max(1.0, float(cast.max())))


def _sensor_noise(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    return to_image(_noise(to_array(image), rng, _lerp_log(0.005, 0.04, s)))


def _jpeg(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    return jpeg(image, round(95 - 65 * s))


def _smaller(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """A photo somewhat smaller than the training photos, still plenty for the model (7/8 down to 3/4)."""
    return _resized(image, min(image.size) * (0.875 - 0.125 * s))


def _small(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    return _resized(image, min(image.size) * _lerp_log(3 / 8, 3 / 32, s))


def _upscaled(method: Image.Resampling) -> Apply:
    def apply(image: Image.Image, s: float, rng: Rng) -> Image.Image:
        return _resized(image, min(image.size) * _lerp_log(3 / 8, 3 / 32, s)).resize(image.size, method)
    return apply


def _night_mode(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """A phone's night mode: frames merged (little grain, smoothed), brightened a little (never past a
    quarter of the light) and its shadows lifted by a tone curve, so the room looks like night, not black."""
    light = _lerp_log(1 / 4, 1 / 32, s)
    gain = _lerp_log(1.0, 2.0, float(rng.uniform(0, 1)))  # within a night shot's quarter of the light
    x = to_array(image) ** float(rng.uniform(1.1, 1.4)) * min(light * gain, 0.25) * _tint(LAMP, rng, 0.1)
    x = np.clip(_noise(x, rng, float(rng.uniform(0.002, 0.008))), 0, 1) ** float(rng.uniform(0.75, 0.9))
    return to_image(x).filter(ImageFilter.GaussianBlur(float(rng.uniform(0.4, 0.9)) * min(image.size) / 256))


def _overcast(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """A room on a grey day: 0.8 down to half the light, flatter and a little cool."""
    x = to_array(image) * _lerp_log(0.8, 0.5, s)
    mean = float(x.mean())
    x = mean + (x - mean) * (1 - 0.25 * s)
    return to_image(x * _tint((0.92, 0.96, 1.0), rng, 0.03))


def _vignette(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """A wide lens's vignetting: corners up to one stop darker, the centre untouched."""
    x = to_array(image)
    h, w = x.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((yy - h / 2) / (h / 2)) ** 2 / 2 + ((xx - w / 2) / (w / 2)) ** 2 / 2
    return to_image(x * (1 - (0.15 + 0.35 * s) * r2)[..., None])


def _reuploaded(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """Saved again by a listing site: 7/8 down to 3/4 of the size (Lanczos), JPEG quality 85 down to 50."""
    small = _resized(image, min(image.size) * (0.875 - 0.125 * float(rng.uniform(0, 1))), Image.Resampling.LANCZOS)
    return jpeg(small, round(85 - 35 * s))


def _thumbnail_chain(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """A thumbnail saved, then enlarged by another site: small (3/8 down to 3/32), JPEG 75 down to 40,
    enlarged back with Lanczos, saved again at 85."""
    small = _resized(image, min(image.size) * _lerp_log(3 / 8, 3 / 32, s))
    saved = jpeg(small, round(75 - 35 * float(rng.uniform(0, 1))))
    return jpeg(saved.resize(image.size, Image.Resampling.LANCZOS), 85)


def _blurred(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """Out of focus at full size: detail gone as in an upscaled thumbnail, the pixel count intact."""
    return image.convert("RGB").filter(ImageFilter.GaussianBlur(_lerp_log(1.5, 6, s) * min(image.size) / 256))


NIGHT, LOW_RES = ("night_time",), ("low_resolution",)
for _name, _kind in {
    "night_street": ShiftKind(_night(SODIUM, 0.2, 0.02, 1.4), NIGHT, about="dark, sodium street light, noise"),
    "night_dark": ShiftKind(_dark_noisy, NIGHT, about="dark, neutral, grainy, JPEG"),
    "night_moon": ShiftKind(_night(MOON, 0.15, 0.02, 1.3), NIGHT, held_out=True, about="dark, blue cast, noise"),
    "night_lamp": ShiftKind(_night_lamp, NIGHT, held_out=True, about="dark room lit by one or two lamps"),
    "night_grey": ShiftKind(_grey_street, NIGHT, held_out=True, about="dark, grey, street-lit"),
    "night_auto_exposed": ShiftKind(_auto_exposed, NIGHT, held_out=True,
                                    about="a night shot brightened back up by the camera: grainy, greyish, tinted"),
    "night_mode": ShiftKind(_night_mode, NIGHT, held_out=True,
                            about="a phone's night mode: merged, smoothed, partly brightened, shadows lifted"),
    "dim": ShiftKind(_dim, (), about="a dim room: 0.85 down to half the light"),
    "warm_lamp": ShiftKind(_warm_lamp, (), held_out=True, about="evening lamp light: warm, a little dimmer"),
    "exposure": ShiftKind(_exposure, (), about="brightness and contrast within 20%"),
    "colour_cast": ShiftKind(_colour_cast, (), held_out=True, about="white balance off by up to about 25%"),
    "noise": ShiftKind(_sensor_noise, (), about="sensor noise at daylight exposure"),
    "jpeg": ShiftKind(_jpeg, (), about="JPEG quality 95 down to 30"),
    "smaller": ShiftKind(_smaller, (), about="7/8 down to 3/4 of the size"),
    "small": ShiftKind(_small, LOW_RES, about="a small upload: 3/8 down to 3/32 of the size (96 to 24 px of 256)"),
    "upscaled": ShiftKind(_upscaled(Image.Resampling.BICUBIC), LOW_RES, about="small, then blown up again (bicubic)"),
    "upscaled_bilinear": ShiftKind(_upscaled(Image.Resampling.BILINEAR), LOW_RES, held_out=True,
                                   about="small, then blown up again (bilinear)"),
    "blurred": ShiftKind(_blurred, LOW_RES, held_out=True, about="out of focus at full size"),
    "thumbnail_chain": ShiftKind(_thumbnail_chain, LOW_RES, held_out=True,
                                 about="a compressed thumbnail enlarged back (Lanczos) and compressed again"),
    "overcast": ShiftKind(_overcast, (), held_out=True, about="a grey day: 0.8 down to half the light, flatter"),
    "vignette": ShiftKind(_vignette, (), held_out=True, about="corners up to one stop darker"),
    "reuploaded": ShiftKind(_reuploaded, (), held_out=True, about="7/8 down to 3/4 of the size, JPEG 85 down to 50"),
}.items():
    SHIFTS.add(_name, _kind)

# Mixtures: a kind, then ordinary shifts on top (a night shot re-compressed, an upscaled photo with noise).
_ON_TOP = ("jpeg", "noise", "exposure", "colour_cast")


def mixture(base: str) -> Apply:
    def apply(image: Image.Image, s: float, rng: Rng) -> Image.Image:
        out = SHIFTS[base].apply(image, s, rng)
        for name in rng.choice(_ON_TOP, size=int(rng.integers(1, 3)), replace=False):
            out = SHIFTS[str(name)].apply(out, float(rng.uniform(0, 1)), rng)
        return out
    return apply


for _base in ("night_street", "night_lamp", "dim", "upscaled", "small"):
    SHIFTS.add(f"{_base}+", ShiftKind(mixture(_base), SHIFTS[_base].expect, held_out=True,
                                      about=f"{_base}, then one or two of {', '.join(_ON_TOP)}"))


def shift(image: Image.Image, kind: str, strength: float, seed: int | Sequence[int]) -> Image.Image:
    """`image` shifted by `kind` at `strength` (0..1); the same arguments give the same pixels."""
    return SHIFTS[kind].apply(image, float(np.clip(strength, 0.0, 1.0)), np.random.default_rng(seed))

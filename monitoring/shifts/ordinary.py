"""Ordinary kinds: photos as cameras, rooms and sites vary them, which must raise no flag. A dim room has at
least half the light (one stop under), a mildly smaller photo at least 3/4 of its source's detail."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from monitoring.shifts.kinds import kind
from monitoring.shifts.ops import (LAMP, Rng, blurred, exposure, glows, jpeg, lerp_log, resized, sensor_noise, tint,
                                   to_array, to_image)


def _dim(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    x = to_array(image) ** float(rng.uniform(1.0, 1.15)) * lerp_log(0.85, 0.5, s)
    return to_image(sensor_noise(x, rng, float(rng.uniform(0.0, 0.01))))


def _warm_lamp(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """An evening interior in lamp light: warm, somewhat dimmer, lamps brighter than the rest."""
    x = to_array(image) * lerp_log(0.95, 0.55, s) * (1 + 0.4 * glows(image.size[::-1], rng, int(rng.integers(1, 3))))
    warm = np.asarray(LAMP, dtype=np.float32) ** (0.4 + 0.8 * s)
    return to_image(x * tint(warm, rng, 0.03))


def _exposure(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    amount = 0.05 + 0.15 * s
    return exposure(image, 1 + amount * rng.choice((-1, 1)), 1 + amount * rng.choice((-1, 1)))


def _colour_cast(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    cast = 1 + (0.06 + 0.2 * s) * rng.normal(0, 1, 3).astype(np.float32) / math.sqrt(3)
    return to_image(to_array(image) * cast / max(1.0, float(cast.max())))


def _sensor_noise(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    return to_image(sensor_noise(to_array(image), rng, lerp_log(0.005, 0.04, s)))


def _jpeg(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    return jpeg(image, round(95 - 65 * s))


def _smaller(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """A photo somewhat smaller than the training photos, still plenty for the model (7/8 down to 3/4)."""
    return resized(image, min(image.size) * (0.875 - 0.125 * s))


def _overcast(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """A room on a grey day: 0.8 down to half the light, flatter and a little cool."""
    x = to_array(image) * lerp_log(0.8, 0.5, s)
    mean = float(x.mean())
    x = mean + (x - mean) * (1 - 0.25 * s)
    return to_image(x * tint((0.92, 0.96, 1.0), rng, 0.03))


def _vignette(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """A wide lens's vignetting: corners up to one stop darker, the centre untouched."""
    x = to_array(image)
    h, w = x.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((yy - h / 2) / (h / 2)) ** 2 / 2 + ((xx - w / 2) / (w / 2)) ** 2 / 2
    return to_image(x * (1 - (0.15 + 0.35 * s) * r2)[..., None])


def _reuploaded(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """Saved again by a listing site: 7/8 down to 3/4 of the size (Lanczos), JPEG quality 85 down to 50."""
    small = resized(image, min(image.size) * (0.875 - 0.125 * float(rng.uniform(0, 1))), Image.Resampling.LANCZOS)
    return jpeg(small, round(85 - 35 * s))


def _straightened(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """Levelled in an editor: turned 1 to 4 degrees, cropped to the largest frame of the same shape inside,
    and enlarged back to the original size (bicubic), which keeps at least 9/10 of the detail."""
    angle = (1 + 3 * s) * float(rng.choice((-1, 1)))
    w, h = image.size
    t = math.radians(abs(angle))
    k = 1 / (math.cos(t) + math.sin(t) * max(w, h) / min(w, h))
    cw, ch = w * k, h * k
    box = (round((w - cw) / 2), round((h - ch) / 2), round((w + cw) / 2), round((h + ch) / 2))
    turned = image.convert("RGB").rotate(angle, Image.Resampling.BICUBIC)
    return turned.crop(box).resize((w, h), Image.Resampling.BICUBIC)


def _hdr_look(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """A listing photo edited the "HDR" way: shadows lifted (gamma 0.9 down to 0.65), local contrast raised
    (a wide unsharp mask, 30 to 80%) and colour by 10 to 30%."""
    lifted = to_image(to_array(image) ** (0.9 - 0.25 * s))
    radius = float(rng.uniform(10, 25)) * min(image.size) / 256
    local = lifted.filter(ImageFilter.UnsharpMask(radius=radius, percent=round(30 + 50 * s), threshold=0))
    return ImageEnhance.Color(local).enhance(1.1 + 0.2 * s)


def _backlit(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """A room against a bright window: the room 0.85 down to half the light, a window-sized patch on one
    side (6 to 25% of the frame) burnt out towards white."""
    x = to_array(image) * lerp_log(0.85, 0.5, s)
    h, w = x.shape[:2]
    ww, wh = round(w * float(rng.uniform(0.15, 0.35))), round(h * float(rng.uniform(0.4, 0.7)))
    x0 = 0 if rng.random() < 0.5 else w - ww
    y0 = int(rng.integers(0, h - wh + 1))
    x[y0:y0 + wh, x0:x0 + ww] = np.minimum(1.0, 0.6 + 4 * x[y0:y0 + wh, x0:x0 + ww])
    return to_image(x)


def _shallow_focus(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """A wide aperture: the far part of the room (a third to 60% of the frame, from the top or one side,
    fading in) out of focus, Gaussian blur of 1.5 to 4 px at 256 px; the rest as sharp as it was."""
    x, soft = to_array(image), to_array(blurred(image, lerp_log(1.5, 4, s)))
    h, w = x.shape[:2]
    vertical = rng.random() < 0.5
    n = h if vertical else w
    edge, fade = float(rng.uniform(1 / 3, 0.6)) * n, 0.1 * n
    ramp = np.clip((edge - np.arange(n, dtype=np.float32)) / fade + 0.5, 0, 1)
    ramp = ramp if vertical or rng.random() < 0.5 else ramp[::-1]
    mask = ramp[:, None, None] if vertical else ramp[None, :, None]
    return to_image(mask * soft + (1 - mask) * x)


def _phone_processed(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """A phone's processing, done at twice the size the photo is seen at: noise reduction (a 3 px median),
    then sharpening (unsharp mask, 2 px, 40 to 120%), reduced back (Lanczos)."""
    w, h = image.size
    big = image.convert("RGB").resize((2 * w, 2 * h), Image.Resampling.BICUBIC).filter(ImageFilter.MedianFilter(3))
    big = big.filter(ImageFilter.UnsharpMask(radius=2, percent=round(40 + 80 * s), threshold=0))
    return big.resize((w, h), Image.Resampling.LANCZOS)


def _low_key(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """A dark-toned ("moody") edit: mid-tones and shadows pressed down (gamma 1.2 to 1.6), whites kept."""
    return to_image(to_array(image) ** (1.2 + 0.4 * s))


def _dusk(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """A room at dusk with a lamp on: 0.8 down to half the light, blue from the windows mixed with warm
    light around the lamp."""
    x = to_array(image) * lerp_log(0.8, 0.5, s)
    lamp = glows(x.shape, rng, 1)
    blue = tint((0.85, 0.92, 1.0), rng, 0.03)
    warm = tint(LAMP, rng, 0.03)
    return to_image(x * (blue * (1 - lamp) + warm * lamp) * (1 + 0.3 * lamp))


def _soft_view(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """The view through a window out of focus, stood in for by a window-sized patch anywhere in the frame
    (15 to 30% of it) blurred 2 to 5 px at 256 px, the room around it sharp."""
    x = to_array(image)
    h, w = x.shape[:2]
    soft = to_array(blurred(image, lerp_log(2, 5, s)))
    area = float(rng.uniform(0.15, 0.3))
    ww, wh = round(w * math.sqrt(area) * float(rng.uniform(0.8, 1.2))), round(h * math.sqrt(area))
    x0, y0 = int(rng.integers(0, max(1, w - ww))), int(rng.integers(0, max(1, h - wh)))
    x[y0:y0 + wh, x0:x0 + ww] = soft[y0:y0 + wh, x0:x0 + ww]
    return to_image(x)


def _soft_corners(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """A cheap wide-angle lens: sharp in the middle, softer towards the corners (blur up to 1 to 2.5 px at
    256 px there)."""
    x = to_array(image)
    h, w = x.shape[:2]
    soft = to_array(blurred(image, lerp_log(1, 2.5, s)))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = (((yy - h / 2) / (h / 2)) ** 2 + ((xx - w / 2) / (w / 2)) ** 2) / 2
    mask = np.clip(r2 * 1.5, 0, 1)[..., None]
    return to_image(mask * soft + (1 - mask) * x)


def _moving_curtain(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """Something moving during the exposure (a curtain, a fan): a vertical band of 20 to 40% of the width
    smeared sideways by 3 to 9 px at 256 px."""
    x = to_array(image)
    h, w = x.shape[:2]
    n = max(1, round(lerp_log(3, 9, s) * min(w, h) / 256))
    kernel = np.ones(n, dtype=np.float32) / n
    band = round(w * float(rng.uniform(0.2, 0.4)))
    x0 = int(rng.integers(0, w - band + 1))
    part = x[:, x0:x0 + band]
    smeared = np.stack([np.apply_along_axis(lambda r: np.convolve(r, kernel, mode="same"), 1, part[..., c])
                        for c in range(3)], axis=-1)
    x[:, x0 + n:x0 + band - n] = smeared[:, n:band - n]
    return to_image(x)


def _portrait_mode(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """A phone's portrait mode on a detail shot (a vase, a bed's corner): an ellipse of 25 to 45% of the frame
    kept sharp, the rest blurred 2 to 6 px at 256 px, with a soft edge."""
    x, soft = to_array(image), to_array(blurred(image, lerp_log(2, 6, s)))
    h, w = x.shape[:2]
    area = float(rng.uniform(0.25, 0.45))
    ry, rx = h * math.sqrt(area / math.pi) * 1.1, w * math.sqrt(area / math.pi) / 1.1
    cy, cx = float(rng.uniform(0.35, 0.65)) * h, float(rng.uniform(0.3, 0.7)) * w
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2)
    mask = np.clip((r - 0.9) / 0.2, 0, 1)[..., None]
    return to_image(mask * soft + (1 - mask) * x)


def _tilt_shift(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """A tilt-shift lens (or its filter): a level band through the middle (40 to 60% of the height) sharp,
    blur growing to 1.5 to 4 px at 256 px towards the top and bottom edges."""
    x, soft = to_array(image), to_array(blurred(image, lerp_log(1.5, 4, s)))
    h = x.shape[0]
    half = float(rng.uniform(0.2, 0.3)) * h
    centre = float(rng.uniform(0.4, 0.6)) * h
    mask = np.clip((np.abs(np.arange(h, dtype=np.float32) - centre) - half) / (0.15 * h), 0, 1)[:, None, None]
    return to_image(mask * soft + (1 - mask) * x)


def _through_glass(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """A room shot through a glass door: one side (40 to 60% of the width) behind the glass, a little soft
    (1 to 2 px at 256 px) and flatter under a faint veil of reflected light; the rest through the open door,
    sharp."""
    x = to_array(image)
    h, w = x.shape[:2]
    glass = to_array(blurred(image, lerp_log(1, 2, s))) * 0.85 + 0.1
    edge = round(w * float(rng.uniform(0.4, 0.6)))
    if rng.random() < 0.5:
        x[:, :edge] = glass[:, :edge]
    else:
        x[:, w - edge:] = glass[:, w - edge:]
    return to_image(x)


def _denoised(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """A camera's heavy noise reduction: a median filter 3 px wide, 5 px from strength 0.8 on a 256 px photo
    (sooner on larger ones), so fine texture is smoothed away and edges kept sharp; JPEG 80 to 92."""
    size = 3 if round(lerp_log(3, 5, s) * min(image.size) / 256) < 5 else 5
    return jpeg(image.convert("RGB").filter(ImageFilter.MedianFilter(size)), int(rng.integers(80, 93)))


def _panorama(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """A wide photo at the source's own scale, as a panorama or a wide lens gives: 16:9 (1.8:1) up to 3:1,
    the photo and its mirror images side by side, so every pixel holds the source's detail."""
    w, h = image.size
    width = round(h * lerp_log(1.8, 3.0, s))
    strip = Image.new(image.mode, (w * (width // w + 3), h))
    for i in range(width // w + 3):
        strip.paste(image if i % 2 == 0 else image.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (i * w, 0))
    left = int(rng.integers(0, strip.width - width + 1))
    return strip.crop((left, 0, left + width, h))


kind("dim", about="a dim room: 0.85 down to half the light")(_dim)
kind("warm_lamp", held_out=True, about="evening lamp light: warm, a little dimmer")(_warm_lamp)
kind("exposure", about="brightness and contrast within 20%")(_exposure)
kind("colour_cast", held_out=True, about="white balance off by up to about 25%")(_colour_cast)
kind("noise", about="sensor noise at daylight exposure")(_sensor_noise)
kind("jpeg", about="JPEG quality 95 down to 30")(_jpeg)
kind("smaller", about="7/8 down to 3/4 of the size")(_smaller)
kind("overcast", held_out=True, about="a grey day: 0.8 down to half the light, flatter")(_overcast)
kind("vignette", held_out=True, about="corners up to one stop darker")(_vignette)
kind("reuploaded", held_out=True, about="7/8 down to 3/4 of the size, JPEG 85 down to 50")(_reuploaded)
kind("straightened", held_out=True, about="turned 1 to 4 degrees, cropped and enlarged back")(_straightened)
kind("hdr_look", held_out=True, about="shadows lifted, local contrast and colour raised")(_hdr_look)
kind("backlit", held_out=True, about="the room 0.85 down to half the light, a window burnt out")(_backlit)
kind("shallow_focus", held_out=True, about="a third to 60% of the frame out of focus")(_shallow_focus)
kind("phone_processed", held_out=True, about="a phone's noise reduction and sharpening")(_phone_processed)
kind("low_key", held_out=True, about="a dark-toned edit: gamma 1.2 to 1.6, whites kept")(_low_key)
kind("dusk", held_out=True, about="0.8 down to half the light, blue windows, one lamp")(_dusk)
kind("soft_view", held_out=True, about="the view through a window out of focus")(_soft_view)
kind("soft_corners", held_out=True, about="softer towards the corners, sharp in the middle")(_soft_corners)
kind("moving_curtain", held_out=True, about="a band of the frame smeared by motion")(_moving_curtain)
kind("portrait_mode", held_out=True, about="a sharp detail, the rest of the frame out of focus")(_portrait_mode)
kind("tilt_shift", held_out=True, about="a sharp band through the middle, softer to the top and bottom")(_tilt_shift)
kind("through_glass", held_out=True, about="part of the room behind glass: a little soft and flatter")(_through_glass)
kind("denoised", held_out=True, about="a camera's heavy noise reduction: texture smoothed, edges kept")(_denoised)
kind("panorama", held_out=True, about="16:9 up to 3:1 at the source's scale, sharp throughout")(_panorama)

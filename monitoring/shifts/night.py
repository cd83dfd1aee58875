"""Night-time kinds: each must raise the `night_time` flag. A night shot has at most a quarter of the light
the photo was taken in (two stops under), unless a camera brightened it back."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from monitoring.shifts.kinds import NIGHT, Apply, kind
from monitoring.shifts.ops import (LAMP, MOON, SODIUM, Rng, blurred, glows, jpeg, lerp_log, sensor_noise, tint,
                                   to_array, to_image)


def _night(base: Sequence[float], lo: float, hi: float, gamma: float) -> Apply:
    def apply(image: Image.Image, s: float, rng: Rng) -> Image.Image:
        x = to_array(image) ** gamma * lerp_log(lo, hi, s) * tint(base, rng)
        return to_image(sensor_noise(x, rng, float(rng.uniform(0.008, 0.03))))
    return apply


def _night_lamp(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """A room at night lit by one or two lamps: dark away from them, warm and bright near them."""
    x = to_array(image) ** 1.3
    light = lerp_log(0.1, 0.015, s) + lerp_log(0.7, 0.35, s) * glows(x.shape, rng, int(rng.integers(1, 3)))
    return to_image(sensor_noise(x * light * tint(LAMP, rng), rng, float(rng.uniform(0.008, 0.025))))


def _grey_street(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """Dark, grey and street-lit: most colour gone, what is left sodium orange."""
    x = to_array(image) ** 1.3 * lerp_log(0.25, 0.06, s)
    grey = x.mean(axis=-1, keepdims=True)
    x = (grey + (x - grey) * float(rng.uniform(0.2, 0.6))) * tint(SODIUM, rng)
    return to_image(sensor_noise(x, rng, float(rng.uniform(0.005, 0.03))))


def _auto_exposed(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """A night shot the camera brightened back up: daylight brightness, but grainy, greyish and tinted."""
    x = to_array(image) ** 1.4 * lerp_log(0.15, 0.03, s) * tint(SODIUM if rng.random() < 0.5 else MOON, rng)
    x = sensor_noise(x, rng, float(rng.uniform(0.005, 0.02)))
    grey = x.mean(axis=-1, keepdims=True)
    x = grey + (x - grey) * 0.6
    return to_image(x * (0.3 * float(rng.uniform(0.6, 1.0)) / max(float(x.mean()), 1e-3)))


def _dark_noisy(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """A phone's night shot pushed up in gain: dark, flat and grainy, no colour cast."""
    x = to_array(image) ** float(rng.uniform(1.0, 1.6)) * lerp_log(0.18, 0.03, s)
    return jpeg(to_image(sensor_noise(x, rng, float(rng.uniform(0.02, 0.05)))), int(rng.integers(60, 90)))


def _night_mode(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """A phone's night mode: frames merged (little grain, smoothed), brightened a little (never past a
    quarter of the light) and its shadows lifted by a tone curve, so the room looks like night, not black."""
    light = lerp_log(1 / 4, 1 / 32, s)
    gain = lerp_log(1.0, 2.0, float(rng.uniform(0, 1)))  # within a night shot's quarter of the light
    x = to_array(image) ** float(rng.uniform(1.1, 1.4)) * min(light * gain, 0.25) * tint(LAMP, rng, 0.1)
    x = np.clip(sensor_noise(x, rng, float(rng.uniform(0.002, 0.008))), 0, 1) ** float(rng.uniform(0.75, 0.9))
    return blurred(to_image(x), float(rng.uniform(0.4, 0.9)))


def _night_lights(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """Night with its lights in the frame: 1/8 down to 1/64 of the light, and two to five small lamps or lit
    windows burnt out to white with a halo, as street lamps and windows are in real night shots."""
    x = to_array(image) ** 1.3 * lerp_log(1 / 8, 1 / 64, s) * tint(SODIUM, rng, 0.1)
    h, w = x.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    lights = np.zeros((h, w), dtype=np.float32)
    for _ in range(int(rng.integers(2, 6))):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0.01, 0.03) * min(h, w)
        d2 = (yy - cy) ** 2 + (xx - cx) ** 2
        lights = np.maximum(lights, 1.5 * np.exp(-d2 / (2 * r * r)) + 0.3 * np.exp(-d2 / (32 * r * r)))
    x = x + lights[..., None] * tint(LAMP, rng)
    return jpeg(to_image(sensor_noise(x, rng, float(rng.uniform(0.01, 0.03)))), int(rng.integers(70, 93)))


def _night_screen(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """A room at night lit by a television or a laptop: 1/8 down to 1/64 of the light, cold light from one
    side (a quarter of the light at most, there) falling off across the room."""
    x = to_array(image) ** 1.2
    w = x.shape[1]
    across = np.linspace(0.0, 1.0, w, dtype=np.float32)
    across = across if rng.random() < 0.5 else across[::-1]
    ambient = lerp_log(1 / 8, 1 / 64, s)
    light = ambient + (0.25 - ambient) * np.exp(-across / float(rng.uniform(0.15, 0.4)))
    x = x * light[None, :, None] * tint(MOON, rng)
    return jpeg(to_image(sensor_noise(x, rng, float(rng.uniform(0.008, 0.03)))), int(rng.integers(70, 93)))


kind("night_street", NIGHT, about="dark, sodium street light, noise")(_night(SODIUM, 0.2, 0.02, 1.4))
kind("night_dark", NIGHT, about="dark, neutral, grainy, JPEG")(_dark_noisy)
kind("night_moon", NIGHT, held_out=True, about="dark, blue cast, noise")(_night(MOON, 0.15, 0.02, 1.3))
kind("night_lamp", NIGHT, held_out=True, about="dark room lit by one or two lamps")(_night_lamp)
kind("night_grey", NIGHT, held_out=True, about="dark, grey, street-lit")(_grey_street)
kind("night_auto_exposed", NIGHT, held_out=True,
     about="a night shot brightened back up by the camera: grainy, greyish, tinted")(_auto_exposed)
kind("night_mode", NIGHT, held_out=True,
     about="a phone's night mode: merged, smoothed, partly brightened, shadows lifted")(_night_mode)
kind("night_lights", NIGHT, held_out=True,
     about="dark, with small lamps or lit windows burnt out in the frame")(_night_lights)
kind("night_screen", NIGHT, held_out=True,
     about="dark room lit from one side by a screen: cold, falling off")(_night_screen)

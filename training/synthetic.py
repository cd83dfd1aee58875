"""SYNTHETIC room-scene photos, drawn by code -- not real photographs.

Why this exists: roomsight has no licensed set of listing photos it may ship,
and tests and demos cannot download one. So this module draws simple but
varied scenes (a bed, a tiled bathroom, a kitchen counter, a pool, ...) with
PIL and numpy, together with host-style captions, listing ids, regions and
timestamps, so the whole pipeline (caption labelling, training, evaluation,
export) can be run end to end on data that is made here and is free to use.

The images are cartoons, not photos: a model trained on them proves the
plumbing works, not that it will recognise real rooms.

Everything is seeded: the same seed gives the same pixels and the same
manifest bytes, so a failing test or a benchmark can be reproduced exactly.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from roomsight.regions import REGIONS  # listings live in one region each, so reports have per-region parts
from roomsight.registries import Registry

__all__ = [
    "CLASSES",
    "MANIFEST_COLUMNS",
    "PAINTERS",
    "REGIONS",
    "SyntheticPhoto",
    "caption_for",
    "photos",
    "render",
    "write_dataset",
]


RGB = tuple[int, int, int]
Rng = np.random.Generator

# Drawing happens at this multiple of the requested size and is then
# downsampled, so thin lines (tile grout, chair slats) survive at 64 px as
# soft grey lines instead of appearing or vanishing by pixel rounding.
_SUPERSAMPLE = 2

# Timestamps are spread from this fixed start (not "now") so that a seed
# always gives the same manifest bytes.
_EPOCH = datetime(2026, 1, 5, tzinfo=timezone.utc)
_SPAN_DAYS = 60


# --------------------------------------------------------------------------
# Colours
# --------------------------------------------------------------------------

# Wall colour families. Every class draws from several families, and the
# families are shared between classes, so the colour of a picture alone does
# not give its class away: a classifier has to look at shapes.
_WALLS: dict[str, tuple[RGB, ...]] = {
    "warm": ((236, 226, 208), (245, 238, 225), (222, 205, 180), (240, 218, 198)),
    "cool": ((238, 240, 242), (208, 214, 220), (200, 215, 228), (214, 226, 210)),
    "bold": ((168, 78, 62), (62, 82, 112), (92, 112, 92), (122, 104, 140)),
}
_WALL_MIX: dict[str, dict[str, float]] = {
    "bedroom": {"warm": 0.5, "cool": 0.3, "bold": 0.2},
    "bathroom": {"warm": 0.3, "cool": 0.55, "bold": 0.15},
    "kitchen": {"warm": 0.4, "cool": 0.45, "bold": 0.15},
    "living_room": {"warm": 0.45, "cool": 0.3, "bold": 0.25},
    "dining_room": {"warm": 0.45, "cool": 0.3, "bold": 0.25},
}
_FLOORS: tuple[RGB, ...] = (
    (182, 140, 96),  # oak
    (140, 100, 66),  # walnut
    (110, 80, 56),  # dark wood
    (200, 198, 192),  # light tile
    (160, 156, 150),  # grey tile
    (150, 138, 124),  # carpet
    (84, 84, 90),  # slate
)
# Upholstery, cabinets, roofs... share one palette on purpose (same reason
# as the walls).
_FABRICS: tuple[RGB, ...] = (
    (120, 124, 130),
    (70, 92, 140),
    (96, 128, 96),
    (150, 104, 70),
    (196, 160, 70),
    (176, 90, 84),
    (60, 60, 66),
    (214, 206, 190),
)
_CERAMIC: RGB = (246, 246, 244)
_WOODS: tuple[RGB, ...] = ((168, 124, 82), (120, 84, 54), (196, 160, 118), (86, 60, 42))


def _jitter(rng: Rng, rgb: RGB, amount: int = 12) -> RGB:
    """Nudge a palette colour so no two pictures share exact pixel values."""
    noise = rng.integers(-amount, amount + 1, size=3)
    r, g, b = (int(np.clip(c + d, 0, 255)) for c, d in zip(rgb, noise))
    return (r, g, b)


def _pick(rng: Rng, options: Sequence[RGB], amount: int = 12) -> RGB:
    return _jitter(rng, options[int(rng.integers(len(options)))], amount)


def _shade(rgb: RGB, factor: float) -> RGB:
    """Darker (<1) or lighter (>1) version, for edges and shadows."""
    if factor <= 1:
        r, g, b = (int(c * factor) for c in rgb)
    else:
        r, g, b = (int(c + (255 - c) * (factor - 1)) for c in rgb)
    return (r, g, b)


def _wall_colour(rng: Rng, label: str) -> RGB:
    mix = _WALL_MIX[label]
    families = list(mix)
    weights = np.array([mix[f] for f in families])
    family = families[int(rng.choice(len(families), p=weights / weights.sum()))]
    return _pick(rng, _WALLS[family])


def _sky_colours(rng: Rng) -> tuple[RGB, RGB]:
    """Top and horizon colour: clear, hazy or evening sky."""
    kind = rng.choice(3, p=[0.6, 0.25, 0.15])
    if kind == 0:
        return _jitter(rng, (92, 150, 220), 18), _jitter(rng, (196, 222, 244), 12)
    if kind == 1:
        return _jitter(rng, (168, 178, 190), 14), _jitter(rng, (222, 226, 230), 10)
    return _jitter(rng, (110, 120, 180), 16), _jitter(rng, (246, 186, 130), 16)


# --------------------------------------------------------------------------
# Canvas: relative coordinates + a random camera
# --------------------------------------------------------------------------


class _Canvas:
    """Draws in relative scene coordinates (0..1 across, 0..1 down).

    Why: painters must work at any requested size (64 px for tests, 224 for a
    backbone, 640x480 for a demo), and a random camera offset/zoom has to
    apply to every shape the same way. Coordinates outside 0..1 are fine; a
    background drawn from -1 to 2 always covers the frame whatever the camera.
    """

    def __init__(self, width: int, height: int, rng: Rng) -> None:
        self.w = width * _SUPERSAMPLE
        self.h = height * _SUPERSAMPLE
        self.image = Image.new("RGB", (self.w, self.h), (128, 128, 128))
        self.draw = ImageDraw.Draw(self.image)
        # The "photographer" stands a little left/right, nearer/further.
        self.zoom = float(rng.uniform(0.86, 1.14))
        self.dx = float(rng.uniform(-0.07, 0.07))
        self.dy = float(rng.uniform(-0.06, 0.06))

    def _x(self, x: float) -> float:
        return ((x - 0.5) * self.zoom + 0.5 + self.dx) * self.w

    def _y(self, y: float) -> float:
        return ((y - 0.5) * self.zoom + 0.5 + self.dy) * self.h

    def _box(self, x0: float, y0: float, x1: float, y1: float) -> list[float]:
        a, b = sorted((self._x(x0), self._x(x1)))
        c, d = sorted((self._y(y0), self._y(y1)))
        return [a, c, max(b, a + 1), max(d, c + 1)]

    def px(self, width: float) -> int:
        """A relative stroke width in pixels, never thinner than one."""
        return max(1, round(width * min(self.w, self.h) * self.zoom))

    def rect(self, x0: float, y0: float, x1: float, y1: float, fill: RGB,
             outline: RGB | None = None, width: float = 0.006) -> None:
        self.draw.rectangle(self._box(x0, y0, x1, y1), fill=fill, outline=outline,
                            width=self.px(width) if outline else 0)

    def rounded(self, x0: float, y0: float, x1: float, y1: float, fill: RGB,
                radius: float = 0.02, outline: RGB | None = None) -> None:
        box = self._box(x0, y0, x1, y1)
        r = min(self.px(radius), int((box[2] - box[0]) / 2), int((box[3] - box[1]) / 2))
        self.draw.rounded_rectangle(box, radius=max(r, 0), fill=fill, outline=outline,
                                    width=self.px(0.005) if outline else 0)

    def ellipse(self, x0: float, y0: float, x1: float, y1: float, fill: RGB | None,
                outline: RGB | None = None, width: float = 0.006) -> None:
        self.draw.ellipse(self._box(x0, y0, x1, y1), fill=fill, outline=outline,
                          width=self.px(width) if outline else 0)

    def polygon(self, points: Sequence[tuple[float, float]], fill: RGB) -> None:
        self.draw.polygon([(self._x(x), self._y(y)) for x, y in points], fill=fill)

    def line(self, points: Sequence[tuple[float, float]], fill: RGB,
             width: float = 0.006) -> None:
        self.draw.line([(self._x(x), self._y(y)) for x, y in points], fill=fill,
                       width=self.px(width))

    def vgradient(self, y0: float, y1: float, top: RGB, bottom: RGB) -> None:
        """Full-width vertical gradient (skies, water): one line per pixel row."""
        p0 = max(0, int(self._y(y0)))
        p1 = min(self.h, int(math.ceil(self._y(y1))))
        span = max(1, p1 - p0)
        t_arr = np.asarray(top, dtype=float)
        b_arr = np.asarray(bottom, dtype=float)
        for row in range(p0, p1):
            t = (row - p0) / span
            r, g, b = (int(v) for v in t_arr * (1 - t) + b_arr * t)
            self.draw.line([(0, row), (self.w, row)], fill=(r, g, b))


# --------------------------------------------------------------------------
# Shared scenery
# --------------------------------------------------------------------------


Painter = Callable[[_Canvas, Rng], None]

# The registry: one small function per class, registered where it is defined, so adding a class is
# adding a painter (and its caption templates below).
PAINTERS: Registry[Painter] = Registry("painter")


def _room(c: _Canvas, rng: Rng, label: str, wall: RGB | None = None) -> float:
    """Back wall + floor; returns where they meet (relative y).

    The floor line moves so that furniture does not always sit at one height.
    """
    horizon = float(rng.uniform(0.55, 0.7))
    wall = wall or _wall_colour(rng, label)
    c.rect(-1, -1, 2, horizon, wall)
    floor = _pick(rng, _FLOORS)
    c.rect(-1, horizon, 2, 2, floor)
    pattern = rng.integers(3)
    if pattern == 0:  # planks
        for k in range(1, 8):
            y = horizon + k * 0.06
            c.line([(-1, y), (2, y)], _shade(floor, 0.85), 0.004)
    elif pattern == 1:  # tiles
        step = float(rng.uniform(0.08, 0.14))
        for k in range(1, 8):
            c.line([(-1, horizon + k * step * 0.6), (2, horizon + k * step * 0.6)],
                   _shade(floor, 0.88), 0.004)
        for x in np.arange(-0.2, 1.3, step):
            c.line([(float(x), horizon), (float(x) + (x - 0.5) * 0.6, 1.2)],
                   _shade(floor, 0.88), 0.004)
    # A skirting board: every room has one, so it carries no class signal.
    c.rect(-1, horizon - 0.015, 2, horizon, _shade(wall, 0.85))
    return horizon


def _window(c: _Canvas, rng: Rng, x: float, y: float, w: float, h: float) -> None:
    """A window onto a blue sky: in every room type, so 'blue' is not 'pool'."""
    frame = _pick(rng, ((245, 245, 245), (90, 70, 50), (60, 60, 60)))
    top, bottom = _sky_colours(rng)
    c.rect(x, y, x + w, y + h, frame)
    inset = 0.012
    c.rect(x + inset, y + inset, x + w - inset, y + h - inset, top)
    c.rect(x + inset, y + h * 0.55, x + w - inset, y + h - inset, bottom)
    c.line([(x + w / 2, y), (x + w / 2, y + h)], frame, 0.01)
    c.line([(x, y + h / 2), (x + w, y + h / 2)], frame, 0.01)


def _plant(c: _Canvas, rng: Rng, x: float, floor_y: float, scale: float = 1.0) -> None:
    pot = _pick(rng, ((180, 90, 60), (230, 230, 225), (70, 70, 70)))
    green = _pick(rng, ((60, 120, 60), (80, 140, 70), (40, 96, 60)))
    w = 0.06 * scale
    c.polygon([(x - w / 2, floor_y - 0.08 * scale), (x + w / 2, floor_y - 0.08 * scale),
               (x + w / 3, floor_y), (x - w / 3, floor_y)], pot)
    for _ in range(5):
        cx = x + float(rng.uniform(-0.05, 0.05)) * scale
        cy = floor_y - float(rng.uniform(0.11, 0.22)) * scale
        r = float(rng.uniform(0.025, 0.045)) * scale
        c.ellipse(cx - r, cy - r, cx + r, cy + r, green)


def _decor(c: _Canvas, rng: Rng, horizon: float) -> None:
    """Things any room may have (window, picture, plant).

    They are drawn before the class's own furniture and appear in every
    indoor class with the same odds, so they add clutter without leaking the
    label; the furniture drawn later partly hides them, as in a real room.
    """
    if rng.random() < 0.45:
        w = float(rng.uniform(0.14, 0.26))
        _window(c, rng, float(rng.uniform(0.0, 1.0 - w)), float(rng.uniform(0.06, 0.16)),
                w, float(rng.uniform(0.16, 0.26)))
    if rng.random() < 0.35:
        x = float(rng.uniform(0.05, 0.8))
        y = float(rng.uniform(0.1, 0.25))
        w, h = float(rng.uniform(0.08, 0.16)), float(rng.uniform(0.07, 0.13))
        c.rect(x, y, x + w, y + h, _pick(rng, _FABRICS, 30), outline=(40, 34, 30),
               width=0.01)
    if rng.random() < 0.3:
        _plant(c, rng, float(rng.uniform(0.05, 0.95)), horizon + float(rng.uniform(0.02, 0.1)))


def _ground_scene(c: _Canvas, rng: Rng, horizon: float) -> None:
    """Sky gradient down to the horizon, with an occasional cloud."""
    top, bottom = _sky_colours(rng)
    c.vgradient(-0.2, horizon, top, bottom)
    for _ in range(int(rng.integers(0, 4))):
        cx, cy = float(rng.uniform(0, 1)), float(rng.uniform(0.03, horizon * 0.7))
        w = float(rng.uniform(0.08, 0.2))
        c.ellipse(cx - w, cy - w * 0.25, cx + w, cy + w * 0.25, _jitter(rng, (246, 246, 248), 6))


def _trees(c: _Canvas, rng: Rng, y_base: float, n: int, x_range: tuple[float, float]) -> None:
    for _ in range(n):
        x = float(rng.uniform(*x_range))
        h = float(rng.uniform(0.12, 0.3))
        c.rect(x - 0.008, y_base - h * 0.4, x + 0.008, y_base, (92, 66, 44))
        green = _pick(rng, ((56, 110, 56), (76, 128, 60), (40, 90, 54)), 14)
        c.ellipse(x - h * 0.3, y_base - h, x + h * 0.3, y_base - h * 0.3, green)


# --------------------------------------------------------------------------
# Painters, one per class
# --------------------------------------------------------------------------


def _bedside(c: _Canvas, rng: Rng, x: float, base: float) -> None:
    """Bedside table with a lamp, its left edge at ``x``."""
    c.rect(x, base - 0.13, x + 0.1, base, _pick(rng, _WOODS))
    c.rect(x + 0.04, base - 0.2, x + 0.055, base - 0.13, (60, 60, 60))
    c.polygon([(x + 0.01, base - 0.2), (x + 0.085, base - 0.2),
               (x + 0.07, base - 0.26), (x + 0.025, base - 0.26)], _jitter(rng, (240, 226, 190)))


def _duvet_colour(rng: Rng) -> RGB:
    # Hotel-white half the time, like real listings; otherwise any fabric.
    if rng.random() < 0.5:
        return _jitter(rng, (236, 236, 232), 8)
    return _pick(rng, _FABRICS, 16)


@PAINTERS.register("bedroom")
def _paint_bedroom(c: _Canvas, rng: Rng) -> None:
    """A bed, from the foot end (most listing photos) or from the side.

    What tells a bed from a sofa at 64 px: a large pale mattress surface,
    white pillows against a headboard, and a duvet with a turned-down sheet.
    """
    horizon = _room(c, rng, "bedroom")
    _decor(c, rng, horizon)
    if rng.random() < 0.6:
        _bed_from_foot(c, rng, horizon)
    else:
        _bed_from_side(c, rng, horizon)


def _bed_from_foot(c: _Canvas, rng: Rng, horizon: float) -> None:
    cx = float(rng.uniform(0.35, 0.65))
    half = float(rng.uniform(0.2, 0.28))
    frame = _pick(rng, _WOODS + _FABRICS[:3])
    back = horizon + 0.02
    for side in (cx - half - 0.13, cx + half + 0.03):  # bedside tables both sides
        if rng.random() < 0.7:
            _bedside(c, rng, side, back + 0.03)
    # Headboard against the wall.
    c.rounded(cx - half, horizon - float(rng.uniform(0.2, 0.28)), cx + half, back + 0.02,
              frame, radius=0.02)
    # Mattress top in perspective: widens towards the camera.
    front = back + float(rng.uniform(0.24, 0.34))
    spread = half * float(rng.uniform(1.25, 1.45))
    sheet = _jitter(rng, (244, 244, 240), 6)
    c.polygon([(cx - half, back), (cx + half, back), (cx + spread, front),
               (cx - spread, front)], sheet)
    # Front face of the bed (frame), under the mattress.
    c.rect(cx - spread, front, cx + spread, front + 0.08, _shade(frame, 0.85))
    # Duvet over the front part, turned-down sheet band at its head end.
    duvet = _duvet_colour(rng)
    t = float(rng.uniform(0.3, 0.45))
    dy = back + (front - back) * t
    dh = half + (spread - half) * t
    c.polygon([(cx - dh - 0.01, dy), (cx + dh + 0.01, dy), (cx + spread + 0.02, front + 0.05),
               (cx - spread - 0.02, front + 0.05)], duvet)
    c.polygon([(cx - dh - 0.01, dy), (cx + dh + 0.01, dy), (cx + dh + 0.02, dy + 0.035),
               (cx - dh - 0.02, dy + 0.035)], _shade(sheet, 0.97))
    c.line([(cx - dh, dy + 0.035), (cx + dh, dy + 0.035)], _shade(duvet, 0.75), 0.005)
    # Two pillows side by side against the headboard.
    for k in (-1, 1):
        px = cx + k * half * 0.5
        c.rounded(px - half * 0.45, back - 0.05, px + half * 0.45, back + 0.05,
                  _jitter(rng, (250, 250, 250), 4), radius=0.025, outline=(196, 196, 196))


def _bed_from_side(c: _Canvas, rng: Rng, horizon: float) -> None:
    x0 = float(rng.uniform(0.1, 0.22))
    length = float(rng.uniform(0.62, 0.78))
    x1 = x0 + length
    base = horizon + float(rng.uniform(0.14, 0.26))
    frame = _pick(rng, _WOODS + _FABRICS[:3])
    if rng.random() < 0.6:
        _bedside(c, rng, x0 - 0.15, base)
    for lx in (x0 + 0.01, x1 - 0.03):  # legs
        c.rect(lx, base - 0.03, lx + 0.02, base, _shade(frame, 0.7))
    c.rect(x0, base - 0.1, x1, base - 0.03, frame)
    mattress_top = base - float(rng.uniform(0.2, 0.24))
    c.rect(x0, mattress_top, x1, base - 0.1, _jitter(rng, (244, 244, 240), 6))
    # Headboard: clearly taller than anything else in the scene.
    head_top = base - float(rng.uniform(0.42, 0.52))
    c.rounded(x0 - 0.06, head_top, x0 + 0.01, base, frame, radius=0.02)
    if rng.random() < 0.5:  # footboard, lower
        c.rect(x1 - 0.02, base - 0.3, x1 + 0.025, base, frame)
    # Duvet over the foot end, draping over the side; white sheet band first.
    duvet = _duvet_colour(rng)
    start = x0 + length * float(rng.uniform(0.3, 0.42))
    c.rounded(start, mattress_top - 0.025, x1 + 0.005, base - 0.045, duvet, radius=0.02)
    c.rect(start, mattress_top - 0.025, start + 0.04, base - 0.06, (246, 246, 244))
    # Pillows: one or two white lumps leaning on the headboard.
    for k in range(int(rng.integers(1, 3))):
        px0 = x0 + 0.015 + k * 0.04
        c.rounded(px0, mattress_top - 0.1 + k * 0.015, px0 + 0.16, mattress_top + 0.015,
                  _jitter(rng, (250, 250, 250), 5), radius=0.025, outline=(200, 200, 200))


@PAINTERS.register("bathroom")
def _paint_bathroom(c: _Canvas, rng: Rng) -> None:
    """Tiled wall grid + white ceramic fixtures (bath, toilet, basin)."""
    wall = _wall_colour(rng, "bathroom")
    horizon = _room(c, rng, "bathroom", wall)
    # Tiles: the grid is the bathroom's strongest cue, so it covers most of
    # the wall (full height or half height, like real bathrooms).
    tile_top = -1.0 if rng.random() < 0.6 else float(rng.uniform(0.2, 0.35))
    tile = _pick(rng, ((244, 244, 242), (206, 224, 232), (214, 214, 210), (232, 222, 204),
                       (120, 150, 170)), 10)
    c.rect(-1, tile_top, 2, horizon, tile)
    grout = _shade(tile, 0.72)
    step = float(rng.uniform(0.06, 0.1))
    y = horizon
    while y > max(tile_top, -0.3):
        c.line([(-1, y), (2, y)], grout, 0.005)
        y -= step
    for x in np.arange(-0.3, 1.3, step):
        c.line([(float(x), max(tile_top, -0.3)), (float(x), horizon)], grout, 0.005)
    _decor(c, rng, horizon)

    fixtures = ["bath", "toilet", "sink"]
    rng.shuffle(fixtures)
    chosen = fixtures[: int(rng.integers(2, 4))]
    slots = np.linspace(0.05, 0.95, len(chosen) + 1)
    for name, left, right in zip(chosen, slots[:-1], slots[1:]):
        _FIXTURES[name](c, rng, float(left), float(right), horizon)


def _bath(c: _Canvas, rng: Rng, left: float, right: float, horizon: float) -> None:
    base = horizon + float(rng.uniform(0.06, 0.14))
    top = base - float(rng.uniform(0.15, 0.2))
    c.rounded(left, top, right, base, _CERAMIC, radius=0.03, outline=(190, 190, 190))
    c.rect(left - 0.01, top - 0.015, right + 0.01, top + 0.01, _shade(_CERAMIC, 0.95),
           outline=(190, 190, 190), width=0.004)
    tap_x = left + 0.04
    c.line([(tap_x, top), (tap_x, top - 0.06), (tap_x + 0.04, top - 0.06)], (170, 170, 176), 0.01)


def _toilet(c: _Canvas, rng: Rng, left: float, right: float, horizon: float) -> None:
    mid = (left + right) / 2
    base = horizon + float(rng.uniform(0.06, 0.14))
    c.rounded(mid - 0.06, base - 0.3, mid + 0.06, base - 0.17, _CERAMIC, radius=0.01,
              outline=(190, 190, 190))  # tank
    c.ellipse(mid - 0.09, base - 0.2, mid + 0.09, base - 0.12, _CERAMIC, outline=(180, 180, 180))
    c.polygon([(mid - 0.07, base - 0.16), (mid + 0.07, base - 0.16), (mid + 0.04, base),
               (mid - 0.04, base)], _CERAMIC)


def _sink(c: _Canvas, rng: Rng, left: float, right: float, horizon: float) -> None:
    mid = (left + right) / 2
    base = horizon + float(rng.uniform(0.04, 0.12))
    # Mirror above the basin.
    c.rect(mid - 0.1, 0.08, mid + 0.1, 0.32, _jitter(rng, (196, 210, 216), 8),
           outline=(120, 120, 120), width=0.008)
    c.rect(mid - 0.03, base - 0.24, mid + 0.03, base, _CERAMIC, outline=(190, 190, 190))
    c.ellipse(mid - 0.12, base - 0.32, mid + 0.12, base - 0.22, _CERAMIC, outline=(180, 180, 180))
    c.line([(mid, base - 0.3), (mid, base - 0.36), (mid + 0.03, base - 0.36)], (170, 170, 176), 0.01)


_FIXTURES: dict[str, Callable[[_Canvas, Rng, float, float, float], None]] = {
    "bath": _bath,
    "toilet": _toilet,
    "sink": _sink,
}


@PAINTERS.register("kitchen")
def _paint_kitchen(c: _Canvas, rng: Rng) -> None:
    """A run of base cabinets with a counter, hob rings, and wall cabinets.

    Two horizontal bands of doors spanning most of the width is the cue; the
    hob rings and the hood make it unmistakable at 64 px.
    """
    horizon = _room(c, rng, "kitchen")
    _decor(c, rng, horizon)
    front = _pick(rng, _WOODS + _FABRICS + ((244, 244, 240),), 10)
    left = float(rng.uniform(-0.1, 0.15))
    right = float(rng.uniform(0.85, 1.1))
    base = horizon + float(rng.uniform(0.03, 0.1))
    counter_y = base - float(rng.uniform(0.24, 0.3))
    # Backsplash between counter and wall cabinets.
    splash = _pick(rng, ((236, 236, 232), (200, 204, 206), (180, 160, 140)))
    c.rect(left, counter_y - 0.18, right, counter_y, splash)
    # Base cabinets: doors with handles.
    n = int(rng.integers(4, 8))
    xs = np.linspace(left, right, n + 1)
    for a, b in zip(xs[:-1], xs[1:]):
        c.rect(float(a), counter_y, float(b), base, front, outline=_shade(front, 0.7), width=0.005)
        c.rect(float(a) + 0.02, counter_y + 0.04, float(a) + 0.05, counter_y + 0.05, (70, 70, 74))
    c.rect(left, base - 0.02, right, base, _shade(front, 0.5))  # toe kick
    counter = _pick(rng, ((60, 60, 64), (220, 218, 212), (160, 130, 100), (120, 124, 128)))
    c.rect(left - 0.01, counter_y - 0.025, right + 0.01, counter_y, counter)
    # Hob: dark rings on the counter top, seen slightly from above.
    hob_x = float(rng.uniform(left + 0.15, right - 0.3))
    for k in range(int(rng.integers(2, 5))):
        hx = hob_x + k * 0.065
        c.ellipse(hx, counter_y - 0.05, hx + 0.055, counter_y - 0.025, (30, 30, 32),
                  outline=(90, 90, 96), width=0.005)
    # Oven door below the hob, with its dark window.
    c.rect(hob_x, counter_y + 0.03, hob_x + 0.2, base - 0.04, (50, 50, 54))
    c.rect(hob_x + 0.02, counter_y + 0.07, hob_x + 0.18, base - 0.08, (20, 20, 22))
    # Extractor hood above the hob.
    c.polygon([(hob_x - 0.01, counter_y - 0.18), (hob_x + 0.22, counter_y - 0.18),
               (hob_x + 0.15, counter_y - 0.28), (hob_x + 0.06, counter_y - 0.28)],
              (170, 172, 176))
    # Wall cabinets, left and right of the hood.
    top = counter_y - float(rng.uniform(0.42, 0.5))
    bottom = counter_y - 0.2
    for a, b in ((left, hob_x - 0.03), (hob_x + 0.24, right)):
        if b - a < 0.08:
            continue
        m = max(1, round((b - a) / 0.14))
        for u, v in zip(np.linspace(a, b, m + 1)[:-1], np.linspace(a, b, m + 1)[1:]):
            c.rect(float(u), top, float(v), bottom, front, outline=_shade(front, 0.7), width=0.005)
            c.rect(float(u) + 0.02, bottom - 0.05, float(u) + 0.03, bottom - 0.02, (70, 70, 74))


@PAINTERS.register("living_room")
def _paint_living_room(c: _Canvas, rng: Rng) -> None:
    """Sofa (low back, two arms, cushions) on a rug, coffee table, maybe TV."""
    horizon = _room(c, rng, "living_room")
    _decor(c, rng, horizon)
    x0 = float(rng.uniform(0.05, 0.3))
    width = float(rng.uniform(0.5, 0.66))
    x1 = x0 + width
    base = horizon + float(rng.uniform(0.06, 0.14))
    # Rug first: it lies under everything.
    rug = _pick(rng, _FABRICS, 20)
    rug_y = base + float(rng.uniform(0.02, 0.06))
    if rng.random() < 0.5:
        c.ellipse(x0 - 0.05, rug_y, x1 + 0.05, rug_y + 0.24, rug)
    else:
        c.rect(x0 - 0.05, rug_y, x1 + 0.05, rug_y + 0.22, rug, outline=_shade(rug, 0.7),
               width=0.01)
    # TV on the wall or a low cabinet, on the free side, some of the time.
    if rng.random() < 0.45:
        tx = 0.02 if x0 > 0.25 else min(x1 + 0.04, 0.8)
        c.rect(tx, horizon - 0.36, tx + 0.2, horizon - 0.22, (22, 22, 26), outline=(60, 60, 60))
    sofa = _pick(rng, _FABRICS, 14)
    dark = _shade(sofa, 0.75)
    seat_top = base - 0.14
    back_top = base - float(rng.uniform(0.27, 0.31))
    c.rounded(x0, back_top, x1, seat_top + 0.02, dark, radius=0.02)  # back
    c.rect(x0, seat_top, x1, base - 0.03, sofa)  # seat
    for lx in (x0 + 0.02, x1 - 0.04):
        c.rect(lx, base - 0.03, lx + 0.02, base, (50, 40, 30))  # legs
    # Seat cushions with seams, and back cushions.
    n = int(rng.integers(2, 4))
    xs = np.linspace(x0 + 0.05, x1 - 0.05, n + 1)
    for a, b in zip(xs[:-1], xs[1:]):
        c.rounded(float(a), seat_top - 0.03, float(b), seat_top + 0.04, sofa,
                  radius=0.015, outline=dark)
        c.rounded(float(a) + 0.01, back_top + 0.02, float(b) - 0.01, seat_top - 0.02,
                  _shade(sofa, 0.9), radius=0.02, outline=dark)
    # Arms at both ends, a bit higher than the seat.
    for ax in (x0 - 0.01, x1 - 0.05):
        c.rounded(ax, seat_top - 0.07, ax + 0.06, base - 0.03, _shade(sofa, 0.85), radius=0.02)
    # Throw pillows in a contrasting colour.
    for _ in range(int(rng.integers(0, 3))):
        px = float(rng.uniform(x0 + 0.07, x1 - 0.15))
        c.rounded(px, seat_top - 0.1, px + 0.08, seat_top - 0.02, _pick(rng, _FABRICS, 20),
                  radius=0.015)
    # Coffee table in front.
    tx0 = x0 + width * float(rng.uniform(0.15, 0.35))
    ty = base + float(rng.uniform(0.07, 0.12))
    wood = _pick(rng, _WOODS)
    c.rect(tx0, ty, tx0 + 0.28, ty + 0.025, wood)
    for lx in (tx0 + 0.02, tx0 + 0.245):
        c.rect(lx, ty + 0.025, lx + 0.015, ty + 0.1, _shade(wood, 0.7))


def _chair_back(c: _Canvas, x: float, seat_y: float, top_y: float, colour: RGB) -> None:
    """A chair seen from behind the table: two posts, a top rail and slats."""
    c.rect(x, top_y, x + 0.02, seat_y, colour)
    c.rect(x + 0.08, top_y, x + 0.1, seat_y, colour)
    c.rect(x, top_y, x + 0.1, top_y + 0.03, colour)
    for k in (1, 2):
        sx = x + 0.02 + k * 0.02
        c.rect(sx - 0.005, top_y, sx + 0.005, seat_y, colour)


@PAINTERS.register("dining_room")
def _paint_dining_room(c: _Canvas, rng: Rng) -> None:
    """A table with a row of chair backs behind it, end chairs, pendant lamp.

    The chair backs (vertical posts above a horizontal table top) and the lamp
    hanging on a cord are the cues; a tablecloth sometimes hides the legs.
    """
    horizon = _room(c, rng, "dining_room")
    _decor(c, rng, horizon)
    x0 = float(rng.uniform(0.14, 0.26))
    x1 = x0 + float(rng.uniform(0.5, 0.62))
    top = horizon + float(rng.uniform(0.03, 0.1))
    wood = _pick(rng, _WOODS + ((240, 240, 236), (50, 50, 52)))
    chair = _pick(rng, _WOODS + _FABRICS[:4], 14)
    # Chairs behind the table: their backs stick up above the table top.
    n = int(rng.integers(3, 5))
    slots = [x0 + 0.03 + (x1 - x0 - 0.16) * (k / (n - 1)) for k in range(n)]
    for cx in slots:
        _chair_back(c, cx, top, top - float(rng.uniform(0.17, 0.2)), chair)
    # Table: thick top and legs, or a tablecloth hanging over the edge.
    c.rect(x0, top, x1, top + 0.04, wood)
    for lx in (x0 + 0.02, x1 - 0.05):
        c.rect(lx, top + 0.04, lx + 0.03, top + 0.24, _shade(wood, 0.75))
    if rng.random() < 0.4:
        cloth = _pick(rng, ((246, 246, 244), (200, 60, 60), (220, 210, 180), (90, 110, 150)), 8)
        c.rect(x0 - 0.02, top - 0.005, x1 + 0.02, top + 0.12, cloth)
    # Plates in front of each chair, and a vase.
    for cx in slots:
        c.ellipse(cx - 0.005, top - 0.016, cx + 0.105, top + 0.006, (250, 250, 250))
    if rng.random() < 0.6:
        vx = (x0 + x1) / 2
        c.rect(vx - 0.02, top - 0.08, vx + 0.02, top, _pick(rng, _FABRICS, 20))
    # Chairs at both ends, in profile: L-shape with legs.
    seat = top + 0.08
    for end, facing in ((x0 - 0.12, 1), (x1 + 0.02, -1)):
        c.rect(end, seat, end + 0.1, seat + 0.03, chair)
        post = end if facing == 1 else end + 0.08
        c.rect(post, seat - 0.2, post + 0.02, seat + 0.16, chair)
        leg = end + 0.08 if facing == 1 else end
        c.rect(leg, seat + 0.03, leg + 0.02, seat + 0.16, chair)
    # Pendant lamp hanging from the ceiling over the table.
    lx = (x0 + x1) / 2 + float(rng.uniform(-0.05, 0.05))
    ly = float(rng.uniform(0.12, 0.26))
    c.line([(lx, -0.5), (lx, ly)], (40, 40, 40), 0.008)
    shade = _pick(rng, ((40, 40, 44), (230, 230, 226), (200, 150, 60), (60, 90, 80)))
    w = float(rng.uniform(0.09, 0.14))
    c.polygon([(lx - 0.025, ly), (lx + 0.025, ly), (lx + w, ly + 0.1), (lx - w, ly + 0.1)], shade)
    c.ellipse(lx - 0.03, ly + 0.08, lx + 0.03, ly + 0.125, (255, 240, 190))


@PAINTERS.register("swimming_pool")
def _paint_swimming_pool(c: _Canvas, rng: Rng) -> None:
    """Sky, hedge or trees, stone deck, and a trapezoid of rippled blue water."""
    horizon = float(rng.uniform(0.22, 0.4))
    _ground_scene(c, rng, horizon)
    backdrop = rng.integers(3)
    if backdrop == 0:
        c.rect(-1, horizon - 0.08, 2, horizon, _pick(rng, ((60, 110, 60), (50, 90, 50))))
        _trees(c, rng, horizon - 0.05, int(rng.integers(2, 6)), (-0.05, 1.05))
    elif backdrop == 1:  # house wall behind the pool
        c.rect(-1, horizon - 0.2, 2, horizon, _pick(rng, ((240, 234, 220), (220, 200, 180), (200, 204, 208))))
    else:  # sea behind the pool
        c.rect(-1, horizon - 0.04, 2, horizon, _jitter(rng, (70, 120, 170), 12))
    deck = _pick(rng, ((222, 212, 190), (200, 196, 188), (168, 130, 96), (236, 230, 220)))
    c.rect(-1, horizon, 2, 2, deck)
    step = float(rng.uniform(0.07, 0.12))
    for k in range(12):
        y = horizon + k * step * 0.7
        c.line([(-1, y), (2, y)], _shade(deck, 0.85), 0.004)
    # Pool in perspective: the far edge is narrower.
    far, near = horizon + float(rng.uniform(0.08, 0.16)), float(rng.uniform(0.86, 1.05))
    cx = float(rng.uniform(0.4, 0.6))
    half_far = float(rng.uniform(0.2, 0.32))
    half_near = half_far + float(rng.uniform(0.12, 0.25))
    coping = _jitter(rng, (236, 234, 228), 6)
    c.polygon([(cx - half_far - 0.025, far - 0.02), (cx + half_far + 0.025, far - 0.02),
               (cx + half_near + 0.04, near + 0.03), (cx - half_near - 0.04, near + 0.03)], coping)
    water_far = _pick(rng, ((40, 140, 190), (50, 170, 200), (30, 110, 170), (70, 180, 190)), 14)
    water_near = _shade(water_far, 1.35)
    rows = 24
    for k in range(rows):
        t0, t1 = k / rows, (k + 1) / rows
        y0, y1 = far + (near - far) * t0, far + (near - far) * t1
        h0, h1 = half_far + (half_near - half_far) * t0, half_far + (half_near - half_far) * t1
        col = tuple(int(a + (b - a) * t0) for a, b in zip(water_far, water_near))
        c.polygon([(cx - h0, y0), (cx + h0, y0), (cx + h1, y1), (cx - h1, y1)], col)  # type: ignore[arg-type]
    # Ripples: light wavy lines across the water.
    phase = float(rng.uniform(0, 2 * math.pi))
    for k in range(int(rng.integers(5, 10))):
        t = float(rng.uniform(0.05, 0.95))
        y = far + (near - far) * t
        h = half_far + (half_near - half_far) * t
        xs = np.linspace(cx - h * 0.9, cx + h * 0.9, 16)
        pts = [(float(x), y + 0.008 * math.sin(phase + k + 18 * float(x))) for x in xs]
        c.line(pts, _shade(water_near, 1.5), 0.005)
    if rng.random() < 0.5:  # ladder rails
        lx = cx + half_far * 0.6
        for off in (0.0, 0.04):
            c.line([(lx + off, far + 0.06), (lx + off, far - 0.05), (lx + off - 0.02, far - 0.07)],
                   (200, 200, 206), 0.007)
    if rng.random() < 0.6:  # sun lounger on the deck
        side = cx + half_near + 0.05 if cx < 0.5 else cx - half_near - 0.25
        y = float(rng.uniform(far + 0.1, near - 0.05))
        col = _pick(rng, ((245, 245, 245), (168, 124, 82), (70, 92, 140)))
        c.polygon([(side, y), (side + 0.17, y), (side + 0.22, y - 0.07), (side + 0.2, y - 0.08),
                   (side + 0.16, y - 0.02), (side, y - 0.02)], col)


@PAINTERS.register("view")
def _paint_view(c: _Canvas, rng: Rng) -> None:
    """Big sky, a horizon and landscape (mountains, sea or hills): no room.

    Sometimes seen through a balcony railing, which is how hosts take them.
    """
    horizon = float(rng.uniform(0.4, 0.65))
    _ground_scene(c, rng, horizon)
    if rng.random() < 0.35:  # sun
        sx, sy = float(rng.uniform(0.1, 0.9)), float(rng.uniform(0.08, horizon - 0.1))
        c.ellipse(sx - 0.04, sy - 0.04, sx + 0.04, sy + 0.04, (255, 244, 200))
    kind = rng.integers(3)
    if kind == 0:  # mountain ranges, paler with distance
        far = _pick(rng, ((150, 160, 190), (160, 170, 180), (140, 150, 170)))
        for layer, shade in enumerate((1.0, 0.8, 0.62)):
            base = horizon + layer * 0.1
            xs = np.linspace(-0.3, 1.3, int(rng.integers(5, 9)))
            peaks = [(float(x), base - float(rng.uniform(0.08, 0.3)) / (1 + layer * 0.3)) for x in xs]
            c.polygon([(-0.3, 1.5)] + peaks + [(1.3, 1.5)], _shade(far, shade))
            if layer == 0 and rng.random() < 0.5:  # snow caps
                for x, y in peaks:
                    c.polygon([(x - 0.03, y + 0.03), (x, y), (x + 0.03, y + 0.03)], (244, 246, 250))
    elif kind == 1:  # sea with glints and maybe a far coast
        sea = _pick(rng, ((40, 100, 160), (50, 120, 150), (30, 80, 130)))
        c.vgradient(horizon, 1.5, sea, _shade(sea, 1.3))
        if rng.random() < 0.5:
            c.polygon([(-0.3, horizon), (0.2, horizon - 0.05), (0.4, horizon)], (110, 120, 130))
        for _ in range(int(rng.integers(6, 14))):
            gx, gy = float(rng.uniform(0, 1)), float(rng.uniform(horizon + 0.03, 1))
            c.line([(gx, gy), (gx + 0.06, gy)], _shade(sea, 1.6), 0.004)
    else:  # rolling hills and fields
        for layer in range(3):
            green = _pick(rng, ((110, 150, 80), (80, 130, 70), (150, 160, 90)), 14)
            base = horizon + layer * 0.12
            xs = np.linspace(-0.3, 1.3, 24)
            phase = float(rng.uniform(0, 6))
            amp = float(rng.uniform(0.02, 0.06))
            pts = [(float(x), base - amp * math.sin(phase + 4 * float(x))) for x in xs]
            c.polygon([(-0.3, 1.5)] + pts + [(1.3, 1.5)], green)
    if rng.random() < 0.25:  # balcony railing in the foreground
        rail = _pick(rng, ((40, 40, 44), (230, 230, 230)))
        top = float(rng.uniform(0.72, 0.85))
        c.rect(-1, top, 2, top + 0.02, rail)
        for x in np.arange(-0.2, 1.2, 0.06):
            c.rect(float(x), top, float(x) + 0.01, 1.5, rail)


@PAINTERS.register("exterior")
def _paint_exterior(c: _Canvas, rng: Rng) -> None:
    """House facade: walls, roof triangle, rows of windows, a door, a lawn."""
    ground = float(rng.uniform(0.7, 0.84))
    _ground_scene(c, rng, ground)
    lawn = _pick(rng, ((90, 150, 70), (110, 160, 80), (80, 130, 64)), 12)
    c.rect(-1, ground, 2, 2, lawn)
    _trees(c, rng, ground, int(rng.integers(0, 3)), (-0.05, 1.05))
    x0 = float(rng.uniform(0.1, 0.25))
    x1 = float(rng.uniform(0.75, 0.9))
    floors = int(rng.integers(1, 3))
    storey = float(rng.uniform(0.17, 0.22))
    eaves = ground - floors * storey - 0.04
    wall = _pick(rng, ((244, 240, 230), (226, 210, 180), (170, 84, 64), (200, 204, 208), (150, 120, 90)))
    c.rect(x0, eaves, x1, ground, wall)
    roof = _pick(rng, ((150, 60, 44), (70, 70, 76), (110, 80, 60), (60, 70, 90)))
    peak = eaves - float(rng.uniform(0.14, 0.24))
    c.polygon([(x0 - 0.04, eaves), (x1 + 0.04, eaves), ((x0 + x1) / 2, peak)], roof)
    if rng.random() < 0.5:  # chimney
        chx = float(rng.uniform(x0 + 0.1, x1 - 0.15))
        c.rect(chx, peak + 0.02, chx + 0.04, eaves - 0.04, _shade(wall, 0.7))
        c.polygon([(x0 - 0.04, eaves), (x1 + 0.04, eaves), ((x0 + x1) / 2, peak)], roof)
    # Windows on each storey; the door replaces one on the ground floor.
    cols = int(rng.integers(2, 5))
    frame = (246, 246, 246)
    pane = _jitter(rng, (120, 150, 180), 14)
    door_col = int(rng.integers(cols))
    door = _pick(rng, ((110, 60, 40), (40, 60, 90), (60, 100, 70), (170, 40, 40)))
    for f in range(floors):
        top = ground - (f + 1) * storey + 0.02
        for k in range(cols):
            cx = x0 + (x1 - x0) * (k + 0.5) / cols
            if f == 0 and k == door_col:
                c.rect(cx - 0.04, ground - 0.15, cx + 0.04, ground, door, outline=frame, width=0.006)
                c.ellipse(cx + 0.015, ground - 0.08, cx + 0.025, ground - 0.07, (220, 200, 80))
                continue
            c.rect(cx - 0.05, top + 0.03, cx + 0.05, top + 0.12, pane, outline=frame, width=0.01)
            c.line([(cx, top + 0.03), (cx, top + 0.12)], frame, 0.006)
    # Path from the door to the front of the picture.
    dx = x0 + (x1 - x0) * (door_col + 0.5) / cols
    c.polygon([(dx - 0.04, ground), (dx + 0.04, ground), (dx + 0.1, 1.5), (dx - 0.1, 1.5)],
              _jitter(rng, (196, 190, 176), 8))
    if rng.random() < 0.4:  # low fence along the front
        fence = _pick(rng, ((245, 245, 245), (120, 90, 60)))
        fy = ground + 0.08
        c.rect(-1, fy, 2, fy + 0.012, fence)
        for x in np.arange(-0.1, 1.1, 0.04):
            c.rect(float(x), fy - 0.04, float(x) + 0.012, fy + 0.06, fence)


# The classes, in the order they were registered above: bedroom, bathroom, kitchen, living_room,
# dining_room, swimming_pool, view, exterior.
CLASSES: tuple[str, ...] = PAINTERS.names()


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------


def _check_label(label: str, classes: Sequence[str] = CLASSES) -> None:
    if label not in classes:
        raise ValueError(f"unknown label {label!r}; valid labels: {', '.join(classes)}")


def _size(size: int | tuple[int, int]) -> tuple[int, int]:
    width, height = (size, size) if isinstance(size, (int, np.integer)) else size
    if width < 8 or height < 8:
        raise ValueError(f"size must be at least 8x8 pixels, got {width}x{height}")
    return int(width), int(height)


def _camera_effects(image: Image.Image, rng: Rng) -> Image.Image:
    """What a phone camera adds: exposure, white balance, blur, sensor noise.

    Without it every picture of a class would have the same flat colours and
    a model could memorise pixel values instead of shapes.
    """
    width, height = image.size
    # Blur grows with size, but slower than size: a 640 px phone photo is
    # sharper per pixel than a 64 px thumbnail of it.
    radius = float(rng.uniform(0.0, 0.7)) * math.sqrt(max(1.0, min(width, height) / 64))
    if radius > 0.05:
        image = image.filter(ImageFilter.GaussianBlur(radius))
    pixels = np.asarray(image, dtype=np.float32)
    brightness = float(rng.uniform(0.72, 1.18))  # daylight: dim evening to bright noon
    warmth = float(rng.uniform(-0.06, 0.06))  # white balance drift
    pixels = pixels * brightness * np.array([1 + warmth, 1.0, 1 - warmth], dtype=np.float32)
    pixels += rng.normal(0.0, float(rng.uniform(2.0, 7.0)), size=pixels.shape).astype(np.float32)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def render(label: str, rng: np.random.Generator,
           size: int | tuple[int, int] = 64) -> Image.Image:
    """Draw one synthetic photo of ``label`` as an RGB image.

    ``size`` is an int for a square or ``(width, height)``. Shapes are drawn
    at that size (relative coordinates, 2x supersampled), not drawn at 64 px
    and upscaled, so large renders stay crisp. All randomness comes from
    ``rng``, so callers control reproducibility.
    """
    _check_label(label)
    width, height = _size(size)
    canvas = _Canvas(width, height, rng)
    PAINTERS[label](canvas, rng)
    image = canvas.image.resize((width, height), Image.Resampling.BOX)
    # Rooms are photographed from either side; mirroring doubles the layouts.
    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return _camera_effects(image, rng)


# --------------------------------------------------------------------------
# Captions
# --------------------------------------------------------------------------

# Clean captions name the pictured room and nothing else.
_CLEAN: dict[str, tuple[str, ...]] = {
    "bedroom": ("Cosy double bedroom", "Master bedroom with king size bed",
                "Bright bedroom with wardrobe", "Second bedroom, twin beds",
                "Quiet bedroom at the back", "Bedroom"),
    "bathroom": ("Modern bathroom with walk-in shower", "Bathroom with bathtub",
                 "Family bathroom", "Newly renovated bathroom", "Shower room",
                 "Bathroom"),
    "kitchen": ("Bright kitchen with new appliances", "Fully equipped kitchen",
                "Modern kitchen with dishwasher", "Kitchen with gas hob", "Kitchen",
                "Compact kitchen, everything you need"),
    "living_room": ("Spacious living room", "Cosy lounge with sofa bed",
                    "Living room with smart TV", "Sunny living room", "Lounge area",
                    "Living room"),
    "dining_room": ("Dining room seats 6", "Dining table for eight", "Elegant dining room",
                    "Dining area", "Bright dining room", "Dining room"),
    "swimming_pool": ("Private swimming pool", "Heated pool", "Pool with sun loungers",
                      "Outdoor pool", "Saltwater pool", "Pool"),
    "view": ("Stunning mountain view", "Sea view at sunset", "Panoramic views",
             "Amazing view", "View over the valley", "The view"),
    "exterior": ("Front of the house", "Our charming house", "House exterior",
                 "Exterior of the house", "The house from the street", "Facade"),
}

# Misleading captions as real hosts write them: the photo is of the class,
# but the text names other rooms (where it was taken from, what is next
# door, or the whole listing). A keyword labeller must get some of these
# wrong; that is what it will be judged on.
_MISLEADING: dict[str, tuple[str, ...]] = {
    "bedroom": ("bedroom 2, bathroom ensuite", "stairs to the bedroom, kitchen downstairs",
                "bedroom with pool view", "bedroom next to the living room",
                "sleeps 2, bathroom across the hall"),
    "bathroom": ("ensuite for the master bedroom", "bathroom next to the kitchen",
                 "shower room by the pool", "off the second bedroom",
                 "downstairs, next to the living room"),
    "kitchen": ("stairs to bedroom and kitchen", "kitchen opens onto the dining room",
                "open plan living room", "kitchen with view of the garden",
                "ground floor, bathroom to the left"),
    "living_room": ("view of the living room from the kitchen", "lounge with sea view",
                    "living and dining room", "sofa bed in the living room, sleeps 2 more, pool outside",
                    "living room, bedroom upstairs"),
    "dining_room": ("dining area off the kitchen", "dining with view over the garden",
                    "living room and dining", "eat by the pool", "open plan kitchen"),
    "swimming_pool": ("view from the pool", "pool, house behind", "garden and house",
                      "pool next to the kitchen terrace", "view of the pool from the bedroom"),
    "view": ("view from the bedroom balcony", "view from the living room",
             "sea view from the pool terrace", "kitchen window view", "from the house"),
    "exterior": ("our house, 3 bedrooms, 2 bathrooms, pool", "house with pool and garden view",
                 "the house: kitchen on the ground floor", "4 bedroom villa",
                 "front of the house, living room on the left"),
}
for _table in (_CLEAN, _MISLEADING):
    assert tuple(_table) == CLASSES, "caption templates must cover every class"

# Shares chosen to look like real listings: hosts leave some photos without
# a caption, and roughly one in six captions names the wrong room(s).
_P_EMPTY = 0.08
_P_MISLEADING = 0.17

_EXTRAS = ("", "", "", "!", " :)", ", lots of light", " - newly renovated", ", just painted")


def caption_for(label: str, rng: np.random.Generator) -> str:
    """A host-style caption for a photo of ``label``: clean, empty or misleading.

    Captions are the weak labels the project starts from, so they must be as
    unreliable as real ones (see ``_P_EMPTY`` / ``_P_MISLEADING``).
    """
    _check_label(label)
    roll = rng.random()
    if roll < _P_EMPTY:
        return ""
    if roll < _P_EMPTY + _P_MISLEADING:
        options = _MISLEADING[label]
        return options[int(rng.integers(len(options)))]
    options = _CLEAN[label]
    text = options[int(rng.integers(len(options)))]
    text += _EXTRAS[int(rng.integers(len(_EXTRAS)))]
    # Hosts type in every case; a labeller must not rely on capitalisation.
    style = rng.random()
    if style < 0.15:
        text = text.lower()
    elif style < 0.2:
        text = text.upper()
    return text


# --------------------------------------------------------------------------
# Listings and datasets
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticPhoto:
    """One synthetic photo with the metadata a real listing photo would carry.

    ``label`` is the true class (what the painter drew); ``caption`` is what a
    host might have typed, which is often not the same thing.
    """

    image: Image.Image  # RGB
    label: str
    caption: str
    listing_id: str
    region: str
    taken_at: str  # ISO-8601 UTC, e.g. "2026-03-01T14:05:00+00:00"


@dataclass(frozen=True)
class _Slot:
    listing_id: str
    region: str
    taken_at: str


def _listings(items: Sequence[tuple[str, int]], seed: int,
              regions: Sequence[str]) -> dict[tuple[str, int], _Slot]:
    """Group photos into listings of 3-8, each with one region and date.

    Why: real data has several photos per listing, and regions and dates let
    per-region and time-based reports be tested. Nothing splits by listing
    (training.data.split stratifies by label only), so one listing's photos
    may land in training and test alike; here that leaks nothing, since each
    photo is drawn on its own (see `photos`).
    """
    rng = np.random.default_rng([seed, 0x715])
    order = rng.permutation(len(items))
    first_id = int(rng.integers(100, 900_000))
    region_offset = int(rng.integers(len(regions)))
    slots: dict[tuple[str, int], _Slot] = {}
    pos, k = 0, 0
    while pos < len(order):
        chunk = order[pos: pos + int(rng.integers(3, 9))]
        pos += len(chunk)
        listing_id = f"L{first_id + k:06d}"
        # Round-robin keeps every region populated even for tiny datasets.
        region = regions[(k + region_offset) % len(regions)]
        shot = _EPOCH + timedelta(days=int(rng.integers(_SPAN_DAYS)),
                                  hours=int(rng.integers(8, 18)),
                                  minutes=int(rng.integers(60)))
        for j in chunk:
            slots[items[int(j)]] = _Slot(listing_id, region, shot.isoformat(timespec="seconds"))
            shot += timedelta(minutes=int(rng.integers(1, 6)))
        k += 1
    return slots


def photos(n_per_class: int, *, size: int | tuple[int, int] = 64, seed: int = 0,
           regions: Sequence[str] = REGIONS,
           classes: Sequence[str] = CLASSES) -> Iterator[SyntheticPhoto]:
    """Yield ``n_per_class`` photos per class, class by class, rendered lazily.

    Each photo's pixels and caption have their own random stream keyed by
    (seed, class, index), so they are the same whatever ``n_per_class`` or
    ``classes`` is. Its listing, region and date are not: `_listings` groups
    all the items at once, so growing a dataset regroups them.
    """
    if n_per_class < 0:
        raise ValueError(f"n_per_class must be >= 0, got {n_per_class}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if not regions:
        raise ValueError("regions must not be empty")
    for label in classes:
        _check_label(label)
    items = [(label, i) for label in classes for i in range(n_per_class)]
    slots = _listings(items, seed, tuple(regions))
    size = _size(size)
    for label, i in items:
        class_index = CLASSES.index(label)
        image = render(label, np.random.default_rng([seed, class_index, i, 0]), size)
        caption = caption_for(label, np.random.default_rng([seed, class_index, i, 1]))
        slot = slots[(label, i)]
        yield SyntheticPhoto(image=image, label=label, caption=caption,
                             listing_id=slot.listing_id, region=slot.region,
                             taken_at=slot.taken_at)


# Column order is part of the contract: training.data reads these by name.
MANIFEST_COLUMNS: tuple[str, ...] = ("path", "label", "caption", "region", "listing_id", "taken_at")

_README = """\
SYNTHETIC DATA - these are not photographs.

Every image in this folder was drawn by code (roomsight training/synthetic.py,
PIL + numpy) from simple shapes: beds, tiled walls, kitchen counters, sofas,
dining tables, pools, landscapes and house facades. Captions, listing ids,
regions and timestamps are made up too; about 1 in 6 captions deliberately
names the wrong room, as real host captions often do.

Use it to test the pipeline end to end. A model trained on it says nothing
about how well it would do on real listing photos.

seed={seed}  n_per_class={n}  size={size}  classes={classes}
manifest.csv columns: {columns} (path is relative to this folder)
"""


def write_dataset(out_dir: Path, n_per_class: int, *, size: int | tuple[int, int] = 64,
                  seed: int = 0, regions: Sequence[str] = REGIONS,
                  classes: Sequence[str] = CLASSES, quality: int = 90) -> Path:
    """Write JPEGs, a README.txt and manifest.csv under ``out_dir``; return the manifest.

    The layout (``<label>/<label>_<i>.jpg``) is the usual image-folder shape,
    so generic loaders work, while the manifest carries what the folder name
    cannot: caption, listing and region. Rows are written in a fixed order
    with ``\\n`` line endings so the same seed gives the same manifest bytes.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    width, height = _size(size)
    (out_dir / "README.txt").write_text(
        _README.format(seed=seed, n=n_per_class, size=f"{width}x{height}",
                       classes=",".join(classes), columns=",".join(MANIFEST_COLUMNS)),
        encoding="utf-8")
    manifest = out_dir / "manifest.csv"
    # Written under a temporary name and renamed at the end, so an
    # interrupted run never leaves a partial manifest that callers caching
    # on "manifest exists" would take for a finished dataset.
    partial = out_dir / "manifest.csv.partial"
    counters: dict[str, int] = {}
    with partial.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(MANIFEST_COLUMNS)
        for photo in photos(n_per_class, size=size, seed=seed, regions=regions, classes=classes):
            i = counters.get(photo.label, 0)
            counters[photo.label] = i + 1
            rel = Path(photo.label) / f"{photo.label}_{i}.jpg"
            (out_dir / photo.label).mkdir(exist_ok=True)
            photo.image.save(out_dir / rel, "JPEG", quality=quality)
            writer.writerow([rel.as_posix(), photo.label, photo.caption, photo.region,
                             photo.listing_id, photo.taken_at])
    partial.replace(manifest)
    return manifest

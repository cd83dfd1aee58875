"""Shifted versions of real photos, made on purpose, to check that the out-of-domain flags catch what they
should and leave the rest alone: many kinds and strengths of darkness, colour cast and noise, downscaling
with and without upscaling back, JPEG qualities, and mixtures of them.

Every kind is registered in `SHIFTS` (`kinds`) with the flags it must raise (`expect`), in a module per
family: `night` kinds must raise `night_time`, `low_resolution` kinds `low_resolution`, and the `ordinary`
ones (a dim room, warm lamp light, a camera's exposure, a colour cast, sensor noise, JPEG compression, a
mildly smaller photo, a grey day, vignetting, a photo re-saved by a listing site, ...) none; `mixtures`
puts ordinary shifts on top of a kind. They are built from the pixel operations in `ops`. `strength` runs
from 0 (the mildest version that still counts as that kind) to 1 (the strongest).

Where one kind ends and the next begins is a definition, stated here once: a night shot has at most a
quarter of the light the photo was taken in (two stops under), unless a camera brightened it back; a dim
room at least half (one stop under); between the two is neither, and is not generated. A low-resolution
photo has at most 3/8 of the detail of its source (96 px of 256), a mildly smaller one at least 3/4.

Figures tuned on one set of shifts flatter the flags, so some kinds are held out of all tuning
(`ShiftKind.held_out`); `cases` draws the shifted photos and holds out the rest.
"""

from monitoring.shifts import mixtures  # noqa: F401 - registers every kind, the mixtures last
from monitoring.shifts.kinds import SHIFTS, ShiftKind, shift

__all__ = ["SHIFTS", "ShiftKind", "shift"]

"""How much detail a photo resolves, read from its power spectrum: the share of the highest frequency its
pixels can hold below which most of its detail lies.

A photo enlarged from a smaller one, or out of focus, has no detail above the frequency its source (or
lens) could hold, however many pixels it has. Linear sharpening, which photo apps and listing sites apply
to such photos, raises the detail that is there but cannot put back what is gone, so a cutoff read from
the spectrum moves little where an energy ratio of fine to coarse detail (monitoring.descriptors'
`fine_detail`) is fooled. Grain added on top is white, so its level is read from the highest frequencies
and taken off before the cutoff is read; in a sharp photo that band holds detail too, so every photo's
cutoff reads somewhat lower, which the reference quantile the flag counts from absorbs.

The constants below were chosen on shifted versions of the half of the photos no held-out figure is read
on; BENCHMARKS.md (monitoring) says which kinds, and what the statistic was read on afresh.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import fft

DETAIL_SHARE = 0.9  # the cutoff is where this share of the detail (above the coarsest scales) lies below
FLOOR_BAND = 0.9  # frequencies above this share of the highest carry the noise floor's level ...
FLOOR_TIMES = 2.0  # ... and this many times their median power is taken off every frequency as noise
COARSE = 0.02  # frequencies below this share (the photo's layout, not its detail) are left out
BINS = 256  # radial bins over the frequencies kept


@lru_cache(maxsize=16)
def _geometry(h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For an h x w photo: its window, which rfft2 coefficients are kept, their radial bin, their
    frequency (the bin's centre, as a share of the highest along an axis) and which are in the floor band."""
    window = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :]
    rho = np.sqrt(fx**2 + fy**2) / 0.5
    keep = (rho > COARSE) & (rho <= 1.0)
    edges = np.linspace(COARSE, 1.0, BINS + 1)
    index = np.clip(np.searchsorted(edges, rho[keep]) - 1, 0, BINS - 1)
    freq = ((edges[:-1] + edges[1:]) / 2)[index]
    return window, keep, index, freq, freq >= FLOOR_BAND


def resolved_share(luma: np.ndarray) -> float:
    """The cutoff of `luma` (H x W, float in [0, 1]) as a share of the highest frequency it can hold:
    highest for a photo sharp to its last pixel, about 1/f of that for one enlarged f times. A flat
    picture holds no detail, so no evidence that any is missing: 1."""
    h, w = luma.shape
    if min(h, w) < 8:
        return 1.0
    window, keep, index, freq, top = _geometry(h, w)
    coef = fft.rfft2((luma - luma.mean()).astype(np.float32, copy=False) * window)[keep]
    power = coef.real**2 + coef.imag**2
    floor = float(np.median(power[top])) if top.any() else 0.0
    # Power per coefficient times its frequency: a natural scene's spectrum (power ~ 1/f^2) spreads evenly
    # over the frequencies, so where the weight runs out is where the detail does.
    weight = np.cumsum(np.bincount(index, np.maximum(power - FLOOR_TIMES * floor, 0.0) * freq, BINS))
    if weight[-1] <= 1e-12:
        return 1.0
    return COARSE + (1.0 - COARSE) * (int(np.searchsorted(weight, DETAIL_SHARE * weight[-1])) + 0.5) / BINS

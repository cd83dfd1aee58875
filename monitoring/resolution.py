"""How much detail a photo resolves, read two ways: from its power spectrum, the share of the highest
frequency its pixels can hold below which most of its detail lies (`resolved_share`); and block by block,
the share of its structured parts that are sharp to the pixel (`sharp_share`).

A photo enlarged from a smaller one, or out of focus, has no detail above the frequency its source (or
lens) could hold, however many pixels it has. Linear sharpening, which photo apps and listing sites apply
to such photos, raises the detail that is there but cannot put back what is gone, so a cutoff read from
the spectrum moves little where an energy ratio of fine to coarse detail (monitoring.descriptors'
`fine_detail`) is fooled. Grain added on top is white, so its level is read from the highest frequencies
and taken off before the cutoff is read; in a sharp photo that band holds detail too, so every photo's
cutoff reads somewhat lower, which the reference quantile the flag counts from absorbs.

The spectrum is of the whole photo, so sharp letters or a badge stamped on an enlargement put back the fine
detail it looks for, though they cover a corner. Block by block they are a few blocks among many soft ones;
in a photo sharp to the pixel most blocks with structure are sharp. The two shares fail on different
photos, which is why monitoring.descriptors' `resolved_side` takes the lesser.

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

BLOCK = 16  # sharp_share's blocks, in pixels of the finest octave
# Grain is fine detail without coarse; texture everywhere has both. The noise level is twice this low quantile, over
# the blocks, of fine less coarse detail, so grain is taken off and texture is not taken for it.
NOISE_SHARE, NOISE_TIMES = 0.1, 2.0
STRUCTURED = 0.5  # blocks at or above this quantile of coarse detail have structure whose edges can be sharp
SHARP_RATIO = 0.1  # a block is sharp when its finest detail, less noise, is this share of its coarse detail
SHARP_FLOOR = 0.05  # no sharp block at all reads as this share: past any enlargement the flag must catch


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


def _block_means(x: np.ndarray, n: int, rows: int, cols: int) -> np.ndarray:
    # Summed along rows, then along the last axis: contiguous reductions, which numpy does faster than one over two.
    sums = x[:rows * n, :cols * n].reshape(rows, n, cols * n).sum(axis=1).reshape(rows, cols, n).sum(axis=2)
    return sums.ravel() * (1 / (n * n))


def _quantile(x: np.ndarray, q: float) -> float:
    """numpy's default (linear) quantile of a 1-d array, by a partial sort: np.quantile's own overhead is most
    of its cost on a few hundred blocks."""
    pos = q * (x.size - 1)
    lo, hi = int(pos), min(int(pos) + 1, x.size - 1)
    part = np.partition(x, (lo, hi))
    return float(part[lo] + (pos - lo) * (part[hi] - part[lo]))


def sharp_share(fine: np.ndarray, coarse: np.ndarray) -> float:
    """The share of a photo's structured blocks that are sharp to the pixel, from two octaves of its Laplacian
    pyramid: `fine` (detail 1-2 pixels across, full size) and `coarse` (4-8 pixels across, a quarter size).
    A block is structured when it holds some coarse detail and at least the median block's, and sharp when its fine
    detail, less the noise level, is at least SHARP_RATIO of its coarse detail: an edge in a photo sharp to
    the pixel carries both, an enlarged edge only the coarse. Too few blocks, or none with structure, are
    no evidence that detail is missing: 1. No sharp block reads as SHARP_FLOOR, which keeps the flag's
    log statistic finite."""
    step = BLOCK // 4
    rows = min(fine.shape[0] // BLOCK, coarse.shape[0] // step)
    cols = min(fine.shape[1] // BLOCK, coarse.shape[1] // step)
    if rows * cols < 4:
        return 1.0
    f = _block_means(fine * fine, BLOCK, rows, cols)
    c = _block_means(coarse * coarse, step, rows, cols)
    if float(c.max()) <= 1e-12:
        return 1.0
    noise = NOISE_TIMES * max(_quantile(f - c, NOISE_SHARE), 0.0)
    # A block with no coarse detail at all (a clipped window, a flat border) has no edge to be sharp:
    # where such blocks are most of the photo the median is 0 and would count them as structured.
    structured = (c >= _quantile(c, STRUCTURED)) & (c > 1e-12)
    sharp = np.maximum(f[structured] - noise, 0.0) > SHARP_RATIO * c[structured]
    return max(float(sharp.mean()), SHARP_FLOOR)

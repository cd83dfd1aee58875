"""Which shifted photos are drawn, and which of them tuning may see (the kinds make them).

Figures tuned on one set of shifts flatter the flags, so a held-out part stays out of all tuning, by kind,
by strength and by source photo: whole kinds (`ShiftKind.held_out`), every other tenth of the strength
range, and half the source photos. BENCHMARKS.md (monitoring) reports the held-out part.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from monitoring.shifts.kinds import SHIFTS


@dataclass(frozen=True)
class Case:
    source: str  # the photo's path
    kind: str
    strength: float
    seed: int
    held_out: bool  # the source photo, the kind or the strength band is held out of tuning


def held_out_source(path: str, share: float = 0.5) -> bool:
    """Half the source photos (by a hash of the file name, so the same photo is always on the same side)."""
    digest = hashlib.sha256(path.rsplit("/", 1)[-1].encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < share


def held_out_strength(strength: float) -> bool:
    """Every other tenth of the strength range: tuning sees 0-0.1, 0.2-0.3, ...; the rest is held out."""
    return int(strength * 10) % 2 == 1


def cases(sources: Sequence[str], per_source: int, seed: int = 0, kinds: Sequence[str] | None = None) -> list[Case]:
    """`per_source` shifted versions of each source photo, kinds in turn and strengths drawn evenly."""
    names = list(kinds or SHIFTS.names())
    rng = np.random.default_rng(seed)
    out = []
    for i, src in enumerate(sources):
        for j in range(per_source):
            kind = names[(i * per_source + j) % len(names)]
            s = float(rng.uniform(0, 1))
            out.append(Case(src, kind, s, int(rng.integers(2**31)),
                            SHIFTS[kind].held_out or held_out_source(src) or held_out_strength(s)))
    return out

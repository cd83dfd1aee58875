"""Durations as people write them in plans, settings and options: '90s', '30m', '24h', '7d', '2w'."""

from __future__ import annotations

import re

from roomsight.errors import DurationError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """Seconds in `text` (a plain number is seconds); DurationError naming the text if it is not a positive duration."""
    m = _DURATION.match(str(text))
    if not m or float(m[1]) <= 0:
        raise DurationError(f"not a duration: {text!r} (use e.g. 90s, 30m, 24h, 7d)")
    return float(m[1]) * _UNIT_S[m[2]]


def format_duration(seconds: float) -> str:
    """`seconds` in the largest unit parse_duration reads that divides it exactly ('2w', '90m', '90s', '1.5s')."""
    for unit in ("w", "d", "h", "m"):
        if seconds >= _UNIT_S[unit] and seconds % _UNIT_S[unit] == 0:
            return f"{seconds / _UNIT_S[unit]:g}{unit}"
    return f"{seconds:g}s"

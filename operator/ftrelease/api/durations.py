"""Durations as users write them in YAML: `30s`, `5m`, `1h`, or combined like `1h30m`."""

from __future__ import annotations

import re
from datetime import timedelta

# Anchored, RE2-compatible: the same pattern goes into the CRD schema.
DURATION_PATTERN = r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?$"
_DURATION = re.compile(DURATION_PATTERN)
DURATION_HELP = "a duration such as 30s, 5m, 1h or 1h30m"


def parse_duration(text: str) -> timedelta:
    """`1h30m` -> timedelta(hours=1, minutes=30). Raises ValueError naming what is allowed."""
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        raise ValueError(f"{text!r} is not {DURATION_HELP}")
    hours, minutes, seconds = (int(g[:-1]) if g else 0 for g in match.groups())
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)

"""Policy durations: ``30s``, ``15m``, ``1h``, ``1h30m``, ``2d``, or an integer of seconds."""

from __future__ import annotations

import re
from datetime import timedelta

# Units in descending order, each at most once; at least one unit is required (checked below).
_DURATION = re.compile(r"(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?")
_UNIT_SECONDS = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}
# Far beyond any sane TTL, and far below timedelta's own overflow.
MAX_DURATION = timedelta(days=3_650)


def parse_duration(value: object) -> timedelta:
    """Parse a positive policy duration; raise ``ValueError`` saying what is wrong.

    ``bool`` is refused even though it is an ``int`` subclass: ``ttl: true`` is a mistake.
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("expected a duration such as 30s, 15m, 1h30m, 2d or a number of seconds")
    if isinstance(value, int):
        seconds = value
    else:
        match = _DURATION.fullmatch(value)
        if not value or match is None:
            raise ValueError(f"{value!r} is not a duration such as 30s, 15m, 1h30m or 2d")
        seconds = sum(int(n) * _UNIT_SECONDS[unit] for unit, n in match.groupdict().items() if n)
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"a duration may be at most {MAX_DURATION.days}d")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """Render a whole-second duration in the policy syntax (``5400s`` -> ``1h30m``)."""
    remaining = int(value.total_seconds())
    if remaining == 0:
        return "0s"
    parts = []
    for unit, size in _UNIT_SECONDS.items():
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)

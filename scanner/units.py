"""One grammar for the values users type: durations and IP literals. Pure.

Every duration pinaudit reads (the inventory's ``timeout``, ``--deadline``,
``--interval``, ``--retention``) is written the same way: a number of
seconds (``30``, ``1.5``) or a number with a unit (``500ms``, ``5s``,
``1m``, ``2h``, ``7d``). Values are bounded so that date arithmetic on them
cannot overflow: a duration is more than 0 and at most ``MAX_SECONDS``.
"""

from __future__ import annotations

import ipaddress
import math
import re

__all__ = [
    "DURATION_UNITS",
    "MAX_SECONDS",
    "format_duration",
    "is_ip_address",
    "parse_duration",
    "positive_seconds",
]

DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
# 100 years: far beyond any useful timeout, interval or retention, and still
# far from the end of `datetime` when added to today.
MAX_SECONDS = 100 * 365 * 86400.0
_DURATION = re.compile(r"([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))\s*(ms|s|m|h|d)?")


def parse_duration(text: str) -> float:
    """Seconds from ``30``, ``1.5``, ``500ms``, ``5s``, ``1m``, ``2h`` or ``7d``.

    Raises ValueError saying what is wrong (the caller says where)."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError("expected seconds, or a duration like 500ms, 30s, 5m, 1h or 7d")
    return positive_seconds(float(match[1]) * DURATION_UNITS[match[2] or "s"])


def positive_seconds(seconds: float) -> float:
    """`seconds` when it is a usable duration, else ValueError."""
    if not math.isfinite(seconds):
        raise ValueError("must be a finite number of seconds")
    if seconds <= 0:
        raise ValueError("must be greater than 0")
    if seconds > MAX_SECONDS:
        raise ValueError(f"must be at most {format_duration(MAX_SECONDS)}")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest spelling `parse_duration` reads back: ``90s``, ``5m``, ``36500d``."""
    for unit in ("d", "h", "m", "s"):
        size = DURATION_UNITS[unit]
        if seconds >= size and (seconds / size).is_integer():
            return f"{int(seconds / size)}{unit}"
    return f"{seconds * 1000:g}ms" if seconds < 1 else f"{seconds:g}s"


def is_ip_address(text: str) -> bool:
    """An IPv4 or IPv6 literal, without brackets."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True

"""Durations as written in definitions: a whole number and one unit, e.g. `30d`, `12h`, `90m`."""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS = {"s": ("SECOND", 1), "m": ("MINUTE", 60), "h": ("HOUR", 3600), "d": ("DAY", 86400), "w": ("WEEK", 604800)}
_PATTERN = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")

DURATION_HELP = "write a whole number and one unit: s, m, h, d or w (e.g. '90m', '12h', '30d')"


@dataclass(frozen=True)
class Duration:
    amount: int
    unit: str  # one of s, m, h, d, w

    @property
    def seconds(self) -> int:
        return self.amount * _UNITS[self.unit][1]

    @property
    def sql_unit(self) -> str:
        """The SQL interval unit; weeks are written as days, which every dialect knows."""
        return "DAY" if self.unit == "w" else _UNITS[self.unit][0]

    @property
    def sql_amount(self) -> int:
        return self.amount * 7 if self.unit == "w" else self.amount

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"


def parse_duration(text: str) -> Duration | None:
    """Parse `30d`-style text; None when it is not a valid positive duration.

    Example:
        >>> parse_duration("90m").seconds
        5400
        >>> parse_duration("1.5h") is None
        True
    """
    match = _PATTERN.match(str(text))
    if not match or int(match.group(1)) == 0:
        return None
    return Duration(int(match.group(1)), match.group(2))

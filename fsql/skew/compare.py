"""When an online value and an offline one are the same value."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

RELATIVE_TOLERANCE = 1e-9


def same(online: Any, offline: Any, *, tolerance: float = RELATIVE_TOLERANCE) -> bool:
    """Equal values; doubles within a relative `tolerance` (sums of doubles depend on their order),
    relative to the larger magnitude but at least 1, as the online invariant tests compare.

    Example:
        >>> same(0.1 + 0.2, 0.3), same(None, None), same(1.0, 1.001), same(None, 0)
        (True, True, False, False)
    """
    if online is None or offline is None:
        return online is None and offline is None
    if isinstance(online, bool) or isinstance(offline, bool):
        return bool(online) == bool(offline) and type(online) is type(offline)
    if isinstance(online, float | Decimal) or isinstance(offline, float | Decimal):
        a, b = float(online), float(offline)
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        if math.isinf(a) or math.isinf(b):
            return a == b
        return abs(a - b) <= tolerance * max(1.0, abs(a), abs(b))
    if isinstance(online, datetime) and isinstance(offline, datetime):
        return utc(online) == utc(offline)
    if isinstance(online, date) and isinstance(offline, date):
        return online == offline
    return bool(online == offline)


def utc(moment: datetime) -> datetime:
    """A time as a UTC instant; naive means UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

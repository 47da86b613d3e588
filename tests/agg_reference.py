"""A slow, obviously-correct Python oracle of windowed aggregates (DESIGN.md, "Windowed aggregates").

For spine row s (keys K, time t), aggregation A (function f of x, filter p) and window w,
with end = t, or floor(t, g) (the greatest multiple of g from the epoch at or before t)
when the view has a granularity g: the rows are the source rows r with r.K = s.K (a
NULL key never matches), p(r) true and `end - w <= r.e < end`. count counts them (or the
non-NULL x), sum/avg/min/max/stddev (sample)/count_distinct skip NULL x, last is the x of
the row with the greatest (e, created) (a NULL created time ranks lowest), even when NULL.
An empty window gives 0 for the counts and NULL for the rest; a NULL t gives NULL for all.

Rows tying on (e, created) make `last` ambiguous, so the oracle answers with a set of
acceptable values for each feature; an engine is right when its value is in the set (floats
compared with a relative tolerance: engines sum in different orders).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

Row = Mapping[str, Any]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def as_utc(value: datetime | date) -> datetime:
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def floor_to(t: datetime, granularity: timedelta) -> datetime:
    """The greatest multiple of `granularity` counted from 1970-01-01T00:00Z at or before t."""
    micros = (as_utc(t) - EPOCH) // _MICRO
    size = granularity // _MICRO
    return EPOCH + (micros - micros % size) * _MICRO  # Python's % rounds down before 1970 too


@dataclass(frozen=True)
class ReferenceAggregation:
    """One aggregation: `value` reads x from a row (None: a row count), `where` is the filter."""

    name: str
    function: str
    windows: tuple[tuple[str, timedelta], ...]  # (window as written, its length)
    value: Callable[[Row], Any] | None = None
    where: Callable[[Row], Any] | None = None


@dataclass(frozen=True)
class ReferenceAggregateView:
    name: str
    keys: tuple[str, ...]
    aggregations: tuple[ReferenceAggregation, ...]
    granularity: timedelta | None = None
    event: str = "event_ts"
    created: str | None = None

    def feature_names(self) -> list[str]:
        return [f"{a.name}_{w}" for a in self.aggregations for w, _ in a.windows]


def window_rows(
    view: ReferenceAggregateView,
    aggregation: ReferenceAggregation,
    rows: Sequence[Row],
    spine_row: Row,
    t: datetime,
    window: timedelta,
) -> list[Row]:
    end = floor_to(t, view.granularity) if view.granularity else as_utc(t)
    start = end - window
    keys = [spine_row.get(k) for k in view.keys]
    if any(k is None for k in keys):
        return []
    found = []
    for row in rows:
        if [row.get(k) for k in view.keys] != keys or row.get(view.event) is None:
            continue
        if not start <= as_utc(row[view.event]) < end:
            continue
        if aggregation.where is not None and aggregation.where(row) is not True:
            continue
        found.append(row)
    return found


def aggregate(view: ReferenceAggregateView, aggregation: ReferenceAggregation, rows: list[Row]) -> set[Any]:
    """The acceptable values of one function over one window's rows."""
    function = aggregation.function
    if function == "count" and aggregation.value is None:
        return {len(rows)}
    read = aggregation.value
    assert read is not None
    if function == "last":
        if not rows:
            return {None}
        rank = {id(r): _rank(view, r) for r in rows}
        best = max(rank.values())
        return {read(r) for r in rows if rank[id(r)] == best}
    values = [v for v in map(read, rows) if v is not None]
    if function == "count":
        return {len(values)}
    if function == "count_distinct":
        return {len(set(values))}
    if not values:
        return {None}
    if function == "sum":
        return {sum(values)}  # Python ints are exact: the engines' BIGINT sums must be too
    if function == "avg":
        return {sum(values) / len(values)}
    if function == "min":
        return {min(values, key=_sortable)}
    if function == "max":
        return {max(values, key=_sortable)}
    if function == "stddev":
        return {statistics.stdev(float(v) for v in values) if len(values) >= 2 else None}
    raise ValueError(f"unknown function {function!r}")


def _sortable(value: Any) -> Any:
    return as_utc(value) if isinstance(value, datetime) else value


def _rank(view: ReferenceAggregateView, row: Row) -> tuple[datetime, int, datetime]:
    created = row.get(view.created) if view.created else None
    return (as_utc(row[view.event]), created is not None, as_utc(created) if created is not None else EPOCH)


def reference_aggregates(
    view: ReferenceAggregateView, rows: Sequence[Row], spine: Sequence[Row], *, spine_ts: str, row_id: str = "row_id"
) -> dict[Hashable, dict[str, set[Any]]]:
    """{spine row id: {feature name: acceptable values}} for one aggregate view."""
    result: dict[Hashable, dict[str, set[Any]]] = {}
    for spine_row in spine:
        t = spine_row.get(spine_ts)
        features: dict[str, set[Any]] = {}
        for aggregation in view.aggregations:
            for written, length in aggregation.windows:
                name = f"{aggregation.name}_{written}"
                if t is None:
                    features[name] = {None}
                    continue
                features[name] = aggregate(
                    view, aggregation, window_rows(view, aggregation, rows, spine_row, t, length)
                )
        result[spine_row[row_id]] = features
    return result


def accepts(allowed: set[Any], got: Any) -> bool:
    """Whether `got` is one of the allowed values; floats within a relative 1e-9."""
    for value in allowed:
        if value is None or got is None:
            if value is None and got is None:
                return True
            continue
        if isinstance(value, datetime) and isinstance(got, datetime):
            if as_utc(value) == as_utc(got):
                return True
        elif isinstance(value, float) or isinstance(got, float):
            if not isinstance(got, bool) and math.isclose(float(got), float(value), rel_tol=1e-9, abs_tol=1e-9):
                return True
        elif type(value) is type(got) and value == got:
            return True
    return False

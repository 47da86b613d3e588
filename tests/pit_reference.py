"""A slow, obviously-correct Python oracle of fsql's point-in-time rules (DESIGN.md, "PIT semantics").

For spine row s and view V (keys K, event time e, created time c, ttl T), the candidates
are the rows r with r.K = s.K (a NULL key never matches), r.e <= s.ts and, when T is set,
r.e >= s.ts - T. The winner has the greatest r.e, then the greatest r.c (a NULL created
time ranks lowest). No candidate: every feature is NULL. A NULL value stays NULL.

Rows that tie completely (same K, e and c, or same K and e without a created column) are
all acceptable winners, so the oracle answers with a *set* of acceptable feature tuples
per spine row and view; an engine is right when its tuple is in that set.

It is written to be read, not to be fast: every spine row scans every feature row.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

Row = Mapping[str, Any]


@dataclass(frozen=True)
class ReferenceView:
    """What the oracle needs to know of a feature view.

    `features` maps each output name to the source column it reads, or to a function of
    the whole source row (for a feature `expr`); a plain string name reads that column.
    """

    name: str
    keys: tuple[str, ...]
    features: tuple[str | tuple[str, str | Callable[[Row], Any]], ...]
    ttl: timedelta | None = None
    event: str = "event_ts"
    created: str | None = None  # the created-time column, or None when the view has none

    def feature_names(self) -> tuple[str, ...]:
        return tuple(f if isinstance(f, str) else f[0] for f in self.features)

    def feature_values(self, row: Row) -> tuple[Any, ...]:
        values = []
        for feature in self.features:
            read = feature if isinstance(feature, str) else feature[1]
            values.append(read(row) if callable(read) else row.get(read))
        return tuple(values)


def as_utc(value: datetime | None) -> datetime | None:
    """An instant in UTC: a naive timestamp is taken as UTC, an aware one is converted."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def candidates(view: ReferenceView, rows: Sequence[Row], spine_row: Row, spine_ts: str) -> list[Row]:
    """The feature rows a spine row may take its values from."""
    ts = as_utc(spine_row.get(spine_ts))
    if ts is None:
        return []  # r.e <= NULL is never true
    lowest = ts - view.ttl if view.ttl is not None else None
    found = []
    for row in rows:
        spine_keys = [spine_row.get(k) for k in view.keys]
        row_keys = [row.get(k) for k in view.keys]
        if any(v is None for v in spine_keys) or any(v is None for v in row_keys):
            continue  # NULL keys never match
        if any(type(a) is not type(b) or a != b for a, b in zip(spine_keys, row_keys, strict=True)):
            continue  # keys compare one by one and by type: (1, '23') is not ('12', '3')
        event = as_utc(row.get(view.event))
        if event is None or event > ts:
            continue
        if lowest is not None and event < lowest:
            continue
        found.append(row)
    return found


_NO_CREATED = datetime.min.replace(tzinfo=UTC)


def _created_rank(view: ReferenceView, row: Row) -> tuple[bool, datetime]:
    """Sort key of the created time: a NULL (or no created column) ranks below every time."""
    created = as_utc(row.get(view.created)) if view.created else None
    return (created is not None, created or _NO_CREATED)


def winners(view: ReferenceView, rows: Sequence[Row], spine_row: Row, spine_ts: str) -> list[Row]:
    """Every row that may be the winner: greatest event time, then greatest created time."""
    found = candidates(view, rows, spine_row, spine_ts)
    if not found:
        return []
    latest = max(as_utc(r[view.event]) for r in found)
    at_latest = [r for r in found if as_utc(r[view.event]) == latest]
    best = max(_created_rank(view, r) for r in at_latest)
    return [r for r in at_latest if _created_rank(view, r) == best]


def acceptable(view: ReferenceView, rows: Sequence[Row], spine_row: Row, spine_ts: str) -> set[tuple[Any, ...]]:
    """The feature tuples an engine may return for one spine row and one view."""
    won = winners(view, rows, spine_row, spine_ts)
    if not won:
        return {tuple(None for _ in view.features)}
    return {view.feature_values(r) for r in won}


def reference_training_set(
    views: Sequence[tuple[ReferenceView, Sequence[Row]]],
    spine: Sequence[Row],
    *,
    spine_ts: str,
    row_id: str = "row_id",
) -> dict[Hashable, dict[str, set[tuple[Any, ...]]]]:
    """For each spine row (by its `row_id`): per view name, the set of acceptable feature tuples."""
    result: dict[Hashable, dict[str, set[tuple[Any, ...]]]] = {}
    for spine_row in spine:
        key = spine_row[row_id]
        if key in result:
            raise ValueError(f"spine row id {key!r} is not unique")
        result[key] = {view.name: acceptable(view, rows, spine_row, spine_ts) for view, rows in views}
    return result

"""What a lookup says about each value: the value, its status and its event time, per view.

Statuses are Feast's field statuses, so Feast clients read them as they are:
PRESENT (the entity has a row within the view's ttl; a NULL value in that row is PRESENT
with value None, as Feast's Python server does), NOT_FOUND (the entity has no row), and
OUTSIDE_MAX_AGE (the row is older than the ttl at lookup time; its value comes back None,
as the offline point-in-time join gives, and its event time says how old it is).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class FeatureStatus(StrEnum):
    PRESENT = "PRESENT"
    NOT_FOUND = "NOT_FOUND"
    OUTSIDE_MAX_AGE = "OUTSIDE_MAX_AGE"


@dataclass(frozen=True)
class ViewLookup:
    """One view's part of a lookup: its features' output names, and per entity row the status
    and event time of the view's row (all features of a view share that row).

    `as_of` is the time the view's values hold at: None for latest-value views; for windowed
    aggregate views, the window end the online tiles answer for.
    """

    name: str
    features: tuple[str, ...]
    statuses: tuple[FeatureStatus, ...]
    event_timestamps: tuple[datetime | None, ...]
    as_of: datetime | None = None


@dataclass(frozen=True)
class LookupResult:
    """Values, statuses and event times for entity rows, in the order asked."""

    entities: tuple[Mapping[str, Any], ...]  # each row's join keys, as asked
    feature_names: tuple[str, ...]  # output names, in the request's order
    values: tuple[tuple[Any, ...], ...]  # per entity row, in feature_names order
    views: tuple[ViewLookup, ...]

    def rows(self) -> list[dict[str, Any]]:
        """Keys and values per entity row: what `get_online_features` returns."""
        return [{**keys, **dict(zip(self.feature_names, row, strict=True))} for keys, row in self.zipped()]

    def statuses(self) -> list[dict[str, FeatureStatus]]:
        """Each feature's status, per entity row."""
        return [
            {name: view.statuses[index] for view in self.views for name in view.features}
            for index in range(len(self.entities))
        ]

    def event_timestamps(self) -> list[dict[str, datetime | None]]:
        """Each feature's event time (None when NOT_FOUND), per entity row."""
        return [
            {name: view.event_timestamps[index] for view in self.views for name in view.features}
            for index in range(len(self.entities))
        ]

    def as_of(self) -> dict[str, datetime | None]:
        """Each view's as_of (None for latest-value views)."""
        return {view.name: view.as_of for view in self.views}

    def zipped(self) -> Sequence[tuple[Mapping[str, Any], tuple[Any, ...]]]:
        return list(zip(self.entities, self.values, strict=True))

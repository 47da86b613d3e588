"""The offline half of a skew check beyond `training_set`: which entities training has at all.

For a latest-value view: each entity's latest row at the view's time (the materialization
query of `fsql.compile.latest`, read up to that time), so "no row" is told apart from a row
of NULLs and the entities training has can be sampled too. For an aggregate view: the keys
with source rows in the longest window before its as_of. Both run on the offline engine.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlglot import exp

from fsql.compile import render
from fsql.compile.context import EVENT_TS, column
from fsql.compile.latest import FEATURE_TS, bound, compile_latest_rows, for_engine
from fsql.compile.tiles import source_rows
from fsql.engines import OfflineEngine
from fsql.skew.compare import utc
from fsql.spec import Definitions, FeatureView

Key = tuple[Any, ...]


@dataclass
class TrainingEntities:
    """Per view, the entities training has: latest rows' event times, and every candidate key."""

    latest: dict[str, dict[Key, datetime]] = field(default_factory=dict)
    candidates: dict[str, list[Key]] = field(default_factory=dict)


def training_entities(
    engine: OfflineEngine,
    definitions: Definitions,
    views: Sequence[FeatureView],
    times: Mapping[str, datetime],
    *,
    root: Path,
) -> TrainingEntities:
    """What training holds for each view at its time (`times`: a latest-value view's lookup
    time, an aggregate view's expected as_of; views missing from `times` are skipped)."""
    found = TrainingEntities()
    for view in views:
        if view.name not in times:
            continue
        moment = times[view.name]
        if view.is_aggregate:
            found.candidates[view.name] = window_keys(engine, definitions, view, moment, root=root)
            continue
        rows = latest_rows(engine, definitions, view, moment, root=root)
        found.latest[view.name] = rows
        since = moment - timedelta(seconds=view.ttl.seconds) if view.ttl is not None else None
        found.candidates[view.name] = [key for key, event in rows.items() if since is None or event >= since]
    return found


def latest_rows(
    engine: OfflineEngine, definitions: Definitions, view: FeatureView, moment: datetime, *, root: Path
) -> dict[Key, datetime]:
    """Each entity's latest event time at `moment`, whatever the ttl."""
    query = compile_latest_rows(definitions, view.name, dialect=engine.dialect, file_root=root)
    params = {"start": None, "start_created": None, "end": moment}
    table = engine.query_arrow(query.sql, params={k: params[k] for k in query.parameters}, node=view.name)
    event_times = table.column(FEATURE_TS).to_pylist()
    key_columns = [table.column(k.name).to_pylist() for k in view.join_keys]
    return {key: utc(event_times[i]) for i, key in enumerate(zip(*key_columns, strict=True))}


def window_keys(
    engine: OfflineEngine, definitions: Definitions, view: FeatureView, as_of: datetime, *, root: Path
) -> list[Key]:
    """The keys with source rows in `[as_of - longest window, as_of)`: those with a window to count."""
    longest = max(w.seconds for a in view.aggregations for w in a.windows)
    rows = source_rows(view, definitions.sources[view.source], definitions.dialect)
    event = column(EVENT_TS)
    keyed = (
        exp.select(*(column(k.name) for k in view.join_keys))
        .distinct()
        .from_(rows.subquery("rows"))
        .where(exp.GTE(this=event.copy(), expression=bound("since")))
        .where(exp.LT(this=event.copy(), expression=bound("as_of")))
    )
    sql = render(for_engine(keyed, definitions, engine.dialect, root), engine.dialect, [])
    params = {"since": as_of - timedelta(seconds=longest), "as_of": as_of}
    table = engine.query_arrow(sql, params=params, node=view.name)
    return list(zip(*(table.column(k.name).to_pylist() for k in view.join_keys), strict=True))


def with_training(
    view: FeatureView, keys: list[dict[str, Any]], candidates: Sequence[Key], *, limit: int, seed: int
) -> list[dict[str, Any]]:
    """The online sample, then up to `limit` of training's entities, in the order of `md5(seed | keys)`,
    that it does not hold yet.

    Example:
        >>> from fsql.compile import example_definitions
        >>> view = example_definitions().feature_views["driver_stats"]
        >>> with_training(view, [{"driver_id": 1}], [(1,), (2,)], limit=5, seed=0)
        [{'driver_id': 1}, {'driver_id': 2}]
    """
    names = [k.name for k in view.join_keys]
    held = {tuple(key[n] for n in names) for key in keys}

    def order(key: Key) -> str:
        return hashlib.md5("|".join([str(seed), *map(str, key)]).encode()).hexdigest()

    extra = [key for key in sorted(candidates, key=order)[:limit] if key not in held]
    return keys + [dict(zip(names, key, strict=True)) for key in extra]

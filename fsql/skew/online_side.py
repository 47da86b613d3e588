"""The online half of a skew check: what each view's last build reached, and a deterministic sample of keys.

Both are plain Postgres statements over the store's own tables, built with sqlglot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlglot import exp

from fsql.online.tables import STATE_TABLE, table_ref
from fsql.spec import FeatureView


@dataclass(frozen=True)
class BuiltState:
    """What `_fsql_state` says of a view: the newest event read, and how far the build read."""

    watermark: datetime | None
    requested_end: datetime | None
    finished_at: datetime | None

    @property
    def reached(self) -> datetime | None:
        """The time the view's online rows answer for: the build's end, or when it ran if that was earlier."""
        ends = [m for m in (self.requested_end, self.finished_at) if m is not None]
        return min(ends) if ends else self.watermark


def read_built_states(cursor: Any, schema: str, views: Sequence[FeatureView]) -> dict[str, BuiltState]:
    """The state row of each view that has one (views never built are missing)."""
    names = [v.name for v in views]
    select = (
        exp.select(*(exp.column(c, quoted=True) for c in ("view", "watermark", "requested_end", "finished_at")))
        .from_(table_ref(schema, STATE_TABLE))
        .where(
            exp.EQ(
                this=exp.column("view", quoted=True),
                expression=exp.Any(this=exp.cast(exp.Placeholder(this="views"), "TEXT[]")),
            )
        )
    )
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (table_ref(schema, STATE_TABLE).sql("postgres"),))
    if not cursor.fetchone()[0]:
        return {}
    cursor.execute(select.sql("postgres"), {"views": names})
    return {row[0]: BuiltState(*row[1:]) for row in cursor.fetchall()}


def table_exists(cursor: Any, schema: str, view: FeatureView) -> bool:
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (table_ref(schema, view.name).sql("postgres"),))
    return bool(cursor.fetchone()[0])


def sample_keys_sql(schema: str, view: FeatureView) -> str:
    """Up to `:limit` distinct keys of a view's online table, in an order fixed by `:seed`.

    The order is md5 of the seed and the keys as text: the same seed and table give the same
    sample, any table size, without reading more than one index-sized pass.
    """
    keys = [exp.column(k.name, quoted=True) for k in view.join_keys]
    fingerprint = exp.func(
        "MD5",
        exp.ConcatWs(
            expressions=[
                exp.Literal.string("|"),
                exp.cast(exp.Placeholder(this="seed"), "TEXT"),
                *(exp.cast(k.copy(), "TEXT") for k in keys),
            ]
        ),
    )
    distinct = exp.select(*keys).distinct().from_(table_ref(schema, view.name))
    ordered = [exp.Ordered(this=fingerprint), *(exp.Ordered(this=k.copy()) for k in keys)]
    query = (
        exp.select(*(k.copy() for k in keys))
        .from_(distinct.subquery("keys"))
        .order_by(*ordered)
        .limit(exp.Placeholder(this="limit"))
    )
    return query.sql("postgres")


def sample_keys(cursor: Any, schema: str, view: FeatureView, *, limit: int, seed: int) -> list[dict[str, Any]]:
    cursor.execute(sample_keys_sql(schema, view), {"limit": limit, "seed": seed})
    names = [k.name for k in view.join_keys]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def entity_rows(samples: Sequence[tuple[FeatureView, list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    """Entity rows that carry every view's keys, from each view's own sample.

    Views with more join keys go first (a pair view's sampled (rider, driver) is a real pair),
    and row i takes a view's i-th sampled keys when none of them is set yet; a view whose keys
    an earlier view set reads that entity. A key still unset (that view's sample was shorter)
    takes the first sample of a view with that key, cycling, and stays None when every
    such view's online table is empty. There are as many rows as the longest sample.

    Example:
        >>> from fsql.compile import example_definitions
        >>> view = example_definitions().feature_views["driver_stats"]
        >>> entity_rows([(view, [{"driver_id": 1}, {"driver_id": 2}])])
        [{'driver_id': 1}, {'driver_id': 2}]
    """
    ordered = sorted(samples, key=lambda pair: -len(pair[0].join_keys))
    count = max((len(keys) for _, keys in samples), default=0)
    rows: list[dict[str, Any]] = [{} for _ in range(count)]
    for view, keys in ordered:
        names = [k.name for k in view.join_keys]
        for row, sampled in zip(rows, keys, strict=False):
            if not any(name in row for name in names):
                row.update(sampled)
    for index, row in enumerate(rows):
        for view, keys in ordered:
            for name in (k.name for k in view.join_keys):
                if name not in row and keys:
                    row[name] = keys[index % len(keys)][name]
        for view, _ in ordered:
            for name in (k.name for k in view.join_keys):
                row.setdefault(name, None)
    return rows

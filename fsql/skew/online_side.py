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
                expression=exp.Any(this=exp.paren(exp.cast(exp.Placeholder(this="views"), "TEXT[]"))),
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
    """Entity rows that carry every view's keys, in which every view's sampled entities all appear.

    Views with more join keys go first (a pair view's sampled (rider, driver) is a real pair).
    Each sampled entity not in the rows yet goes into the first row where none of its view's
    keys is set, or into a new row; a view whose keys an earlier view set reads that entity
    too. A key left unset takes, cycling, the sampled values of the first view with that key,
    and stays None when every such view's sample is empty.

    Example:
        >>> from fsql.compile import example_definitions
        >>> view = example_definitions().feature_views["driver_stats"]
        >>> entity_rows([(view, [{"driver_id": 1}, {"driver_id": 2}])])
        [{'driver_id': 1}, {'driver_id': 2}]
    """
    ordered = sorted(samples, key=lambda pair: -len(pair[0].join_keys))
    rows: list[dict[str, Any]] = []
    for view, keys in ordered:
        names = [k.name for k in view.join_keys]
        present = {tuple(row[n] for n in names) for row in rows if all(n in row for n in names)}
        free = iter([row for row in rows if not any(n in row for n in names)])
        for sampled in keys:
            if tuple(sampled[n] for n in names) in present:
                continue
            row = next(free, None)
            if row is None:
                row = {}
                rows.append(row)
            row.update(sampled)
    for index, row in enumerate(rows):
        for view, keys in ordered:
            for name in (k.name for k in view.join_keys):
                if name not in row:
                    row[name] = keys[index % len(keys)][name] if keys else None
    return rows

"""The latest row per entity of one feature view in a time window: what materialization reads.

The query returns exactly the online table's columns: the join keys, the typed features,
`feature_ts` and `created_ts` (UTC instants). The window (start, end] is bound as
parameters `start` (NULL: from the beginning) and `end`. Ranking by ROW_NUMBER in a
subquery works the same in every dialect, so this needs no strategy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlglot import exp

from fsql.compile.context import CREATED_TS, EVENT_TS, column, ident, rows_cte_name
from fsql.compile.passes import feature_rows, replace_file_scans
from fsql.compile.paths import anchor_file_paths
from fsql.compile.request import OutputFeature, ViewRequest
from fsql.compile.strategy import readable_file_formats
from fsql.spec import Definitions, FeatureView

FEATURE_TS = "feature_ts"
CREATED_TS_COLUMN = "created_ts"
MATERIALIZED_AT = "materialized_at"
ONLINE_RESERVED = (FEATURE_TS, CREATED_TS_COLUMN, MATERIALIZED_AT)
_RANK = "_fsql_rank"


@dataclass(frozen=True)
class LatestRowsQuery:
    view: FeatureView
    dialect: str
    sql: str
    columns: tuple[str, ...]


def compile_latest_rows(
    definitions: Definitions, view_name: str, *, dialect: str, file_root: Path | None = None
) -> LatestRowsQuery:
    """The latest row per entity of a view with start < event time <= end.

    Example:
        >>> from fsql.compile import example_definitions
        >>> q = compile_latest_rows(example_definitions(), "driver_stats", dialect="duckdb")
        >>> q.columns
        ('driver_id', 'trips', 'feature_ts', 'created_ts')
    """
    view = definitions.feature_views[view_name]
    request = ViewRequest(
        view, definitions.sources[view.source], tuple(OutputFeature(f, f.name) for f in view.features)
    )
    rows = exp.Table(this=ident(rows_cte_name(request)))
    keys = [column(k.name) for k in view.join_keys]
    event, created = column(EVENT_TS), column(CREATED_TS)
    order = [exp.Ordered(this=event.copy(), desc=True)]
    if request.source.created_timestamp:
        order.append(exp.Ordered(this=created.copy(), desc=True, nulls_first=False))
    rank = exp.Window(this=exp.RowNumber(), partition_by=[k.copy() for k in keys], order=exp.Order(expressions=order))
    in_window = exp.and_(
        exp.or_(
            exp.Is(this=_bound("start"), expression=exp.Null()), exp.GT(this=event.copy(), expression=_bound("start"))
        ),
        exp.LTE(this=event.copy(), expression=_bound("end")),
    )
    ranked = exp.select(exp.Star(), exp.alias_(rank, _RANK, quoted=True)).from_(rows).where(in_window)
    created_value = created.copy() if request.source.created_timestamp else exp.Null()
    projections = [
        *keys,
        *(column(f.name) for f in view.features),
        exp.alias_(exp.cast(event.copy(), "TIMESTAMPTZ"), FEATURE_TS, quoted=True),
        exp.alias_(exp.cast(created_value, "TIMESTAMPTZ"), CREATED_TS_COLUMN, quoted=True),
    ]
    query = (
        exp.select(*projections)
        .from_(ranked.subquery(ident("ranked")))
        .where(exp.EQ(this=column(_RANK), expression=exp.Literal.number(1)))
        .with_(ident(rows_cte_name(request)), as_=feature_rows(request, definitions.dialect))
    )
    replace_file_scans(query, definitions.sources, readable_file_formats(dialect))
    if file_root is not None:
        anchor_file_paths(query, file_root)
    from fsql.compile import render

    header = [f"fsql latest row per entity of feature view '{view.name}', event time in (start, end]"]
    columns = (*(k.name for k in view.join_keys), *(f.name for f in view.features), FEATURE_TS, CREATED_TS_COLUMN)
    return LatestRowsQuery(view, dialect, render(query, dialect, header), columns)


def _bound(name: str) -> exp.Expression:
    return exp.cast(exp.Placeholder(this=name), "TIMESTAMPTZ")

"""The latest row per entity of one feature view in a time window: what materialization reads.

The query returns exactly the online table's columns: the join keys, the typed features,
`feature_ts` and `created_ts` (UTC instants). The rows read are bound as parameters: event
time at most `end`, and either after `start` (NULL: from the beginning) or, when the
source has a created time, created after `start_created` (so corrections of old events are
read). Ranking by ROW_NUMBER in a subquery works the same in every dialect, so this needs
no strategy.
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
from fsql.errors import CompileError
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
    parameters: frozenset[str]  # the names the SQL binds (DuckDB refuses any other)


def compile_latest_rows(
    definitions: Definitions, view_name: str, *, dialect: str, file_root: Path | None = None
) -> LatestRowsQuery:
    """The latest row per entity of a view among the rows in its read window (see `read_window`).

    Example:
        >>> from fsql.compile import example_definitions
        >>> q = compile_latest_rows(example_definitions(), "driver_stats", dialect="duckdb")
        >>> q.columns
        ('driver_id', 'trips', 'feature_ts', 'created_ts')
    """
    view = definitions.feature_views[view_name]
    if view.is_aggregate:
        raise CompileError(
            f"feature view '{view.name}' declares aggregations, and aggregations are not served online yet: "
            f"set online: false to use it in training sets"
        )
    request = view_request(definitions, view_name)
    rows = exp.Table(this=ident(rows_cte_name(request)))
    keys = [column(k.name) for k in view.join_keys]
    event, created = column(EVENT_TS), column(CREATED_TS)
    order = [exp.Ordered(this=event.copy(), desc=True)]
    if request.source.created_timestamp:
        order.append(exp.Ordered(this=created.copy(), desc=True, nulls_first=False))
    rank = exp.Window(this=exp.RowNumber(), partition_by=[k.copy() for k in keys], order=exp.Order(expressions=order))
    ranked = exp.select(exp.Star(), exp.alias_(rank, _RANK, quoted=True)).from_(rows).where(read_window(request))
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
    from fsql.compile import render

    header = [f"fsql latest row per entity of feature view '{view.name}' among the rows in its read window"]
    columns = (*(k.name for k in view.join_keys), *(f.name for f in view.features), FEATURE_TS, CREATED_TS_COLUMN)
    sql = render(for_engine(query, definitions, dialect, file_root), dialect, header)
    return LatestRowsQuery(view, dialect, sql, columns, parameter_names(query))


def view_request(definitions: Definitions, view_name: str) -> ViewRequest:
    """A request for every feature of one view, under its own names."""
    view = definitions.feature_views[view_name]
    return ViewRequest(view, definitions.sources[view.source], tuple(OutputFeature(f, f.name) for f in view.features))


def read_window(request: ViewRequest) -> exp.Expr:
    """`e <= :end AND (:start IS NULL OR e > :start [OR c > :start_created])`: the rows a run reads.

    A row of an old event read again because its created time is new is a correction.
    """
    event = column(EVENT_TS)
    after: exp.Expr = exp.or_(
        exp.Is(this=bound("start"), expression=exp.Null()), exp.GT(this=event.copy(), expression=bound("start"))
    )
    if request.source.created_timestamp:
        after = exp.or_(after, exp.GT(this=column(CREATED_TS), expression=bound("start_created")))
    return exp.and_(exp.paren(after, copy=False), exp.LTE(this=event.copy(), expression=bound("end")))


def for_engine(query: exp.Select, definitions: Definitions, dialect: str, file_root: Path | None) -> exp.Select:
    """File sources the engine cannot scan become tables; relative paths are anchored at `file_root`."""
    replace_file_scans(query, definitions.sources, readable_file_formats(dialect))
    if file_root is not None:
        anchor_file_paths(query, file_root)
    return query


def parameter_names(query: exp.Expr) -> frozenset[str]:
    return frozenset(p.name for p in query.find_all(exp.Placeholder))


def bound(name: str) -> exp.Expr:
    """A parameter read as a UTC instant."""
    return exp.cast(exp.Placeholder(this=name), "TIMESTAMPTZ")

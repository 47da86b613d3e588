"""Tiles of an aggregate view: partial aggregates per keys and granularity bucket, read from its source.

A tile holds, for one entity and one bucket `[b, b + g)` (b a multiple of g counted from
1970-01-01T00:00Z), the partial state of every aggregation over the source rows with event
time in that bucket that pass the aggregation's filter. The online store keeps tiles and
finishes a window from them at lookup time (`fsql.online.tile_lookup`); `TILE_STATES` says,
per function, which states a tile keeps, how a tile computes them from rows, and how tiles
merge and finish, so that the tile SQL and the lookup SQL read one table.

The rows read are bound as parameters (UTC instants): `until` (exclusive: the watermark T),
`horizon` (inclusive: the oldest bucket kept), and either `from_bucket` (NULL: every bucket)
or, when the source has a created time, any bucket holding a row created after
`start_created` (a correction of an old event recomputes its bucket). Every bucket read is
read whole, so a tile is always recomputed from all of its rows, never added to.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

from fsql.aggregations import parse_aggregation
from fsql.compile.aggregates import time_math
from fsql.compile.context import CREATED_TS, EVENT_TS, column, ident
from fsql.compile.latest import bound, for_engine, parameter_names
from fsql.definitions import source_relation
from fsql.errors import CompileError
from fsql.spec import AggregateFunction, Aggregation, Definitions, FeatureView, Source

BUCKET = "bucket_start"
_TILED = "_fsql_tiled"
_RANKED = "_fsql_ranked"
_ROWS = "_fsql_rows"
_DOUBLE = exp.DType.DOUBLE
_BIGINT = exp.DType.BIGINT
_TIMESTAMPTZ = exp.DType.TIMESTAMPTZ


@dataclass(frozen=True)
class TileState:
    """A state a tile keeps: its column suffix, its type (None: the aggregation's input type),
    how a tile computes it from its rows, and how the states of several tiles merge."""

    suffix: str
    type: exp.DType | None
    compute: str  # how a tile computes it: one of _COMPUTE
    merge: str  # the aggregate over tiles: SUM, MIN, MAX, LAST (the value of the latest tile) or DISTINCT
    array: bool = False  # an array of `type`: the tile's distinct values


TILE_STATES: dict[AggregateFunction, tuple[TileState, ...]] = {
    AggregateFunction.COUNT: (TileState("count", _BIGINT, "count", "SUM"),),
    AggregateFunction.SUM: (TileState("sum", None, "sum", "SUM"),),
    AggregateFunction.AVG: (TileState("sum", None, "sum", "SUM"), TileState("count", _BIGINT, "count", "SUM")),
    # Sums of x and x^2 in double precision: exact enough for features whose mean is not far
    # larger than their spread (see the README's note on stddev tiles).
    AggregateFunction.STDDEV: (
        TileState("count", _BIGINT, "count", "SUM"),
        TileState("sum", _DOUBLE, "sum", "SUM"),
        TileState("sumsq", _DOUBLE, "sumsq", "SUM"),
    ),
    AggregateFunction.MIN: (TileState("min", None, "min", "MIN"),),
    AggregateFunction.MAX: (TileState("max", None, "max", "MAX"),),
    AggregateFunction.LAST: (
        TileState("last_e", _TIMESTAMPTZ, "last_e", "MAX"),
        TileState("last_c", _TIMESTAMPTZ, "last_c", "LAST"),
        TileState("last", None, "last", "LAST"),
    ),
    # The distinct non-NULL values of the tile: exact, and as large as the tile's distinct
    # values (a window counts the distinct values of its tiles' arrays at lookup time).
    AggregateFunction.COUNT_DISTINCT: (TileState("distinct", None, "distinct", "DISTINCT", array=True),),
}


def state_column(aggregation: Aggregation, state: TileState) -> str:
    return f"{aggregation.name}__{state.suffix}"


def state_data_type(aggregation: Aggregation, state: TileState) -> exp.DataType:
    """The column type of a state: `state_type`, or an array of it."""
    element = exp.DataType(this=state_type(aggregation, state))
    return exp.DataType(this=exp.DType.ARRAY, expressions=[element], nested=True) if state.array else element


def state_type(aggregation: Aggregation, state: TileState) -> exp.DType:
    """The type of a state (of its elements for an array): its own, or the aggregation's input
    type (sum keeps x's type)."""
    if state.type is not None:
        return state.type
    if state.compute == "sum":  # integers sum exactly as BIGINT (overflow is an error), the rest as DOUBLE
        return _BIGINT if aggregation.input_type in (_BIGINT, exp.DType.INT) else _DOUBLE
    assert aggregation.input_type is not None, "only a row count has no input"
    return aggregation.input_type


def tile_states(view: FeatureView) -> list[tuple[Aggregation, TileState]]:
    """Every (aggregation, state) of a view's tiles, in order."""
    return [(aggregation, s) for aggregation in view.aggregations for s in TILE_STATES[aggregation.function]]


@dataclass(frozen=True)
class TileQuery:
    view: FeatureView
    dialect: str
    sql: str
    columns: tuple[str, ...]  # keys, bucket_start, then each state column
    parameters: frozenset[str]


def compile_tiles(
    definitions: Definitions, view_name: str, *, dialect: str, file_root: Path | None = None
) -> TileQuery:
    """The tiles of every bucket the run reads, each from all of its source rows.

    Example:
        >>> from fsql.compile.tiles import example_aggregate_definitions
        >>> q = compile_tiles(example_aggregate_definitions(), "driver_trips", dialect="duckdb")
        >>> q.columns
        ('driver_id', 'bucket_start', 'trips__count')
    """
    view = definitions.feature_views[view_name]
    if not view.is_aggregate or view.granularity is None:
        raise CompileError(f"feature view '{view_name}' has no aggregations with a granularity: it has no tiles")
    source = definitions.sources[view.source]
    states = tile_states(view)
    keys = [column(k.name) for k in view.join_keys]
    tiled = exp.select(
        exp.Star(), exp.alias_(floor_to(column(EVENT_TS), view.granularity.seconds), BUCKET, quoted=True)
    )
    tiled = tiled.from_(exp.Table(this=ident(_ROWS))).where(_read_buckets(source, view.granularity.seconds))
    ranked = exp.select(exp.Star(), *_last_ranks(view, source)).from_(exp.Table(this=ident(_TILED)))
    projections: list[exp.Expr] = [*keys, column(BUCKET)]
    projections += [
        exp.alias_(_compute(aggregation, state, source, dialect), state_column(aggregation, state), quoted=True)
        for aggregation, state in states
    ]
    query = (
        exp.select(*projections)
        .from_(exp.Table(this=ident(_RANKED)))
        .group_by(*(k.copy() for k in keys), column(BUCKET))
        .with_(ident(_ROWS), as_=source_rows(view, source, definitions.dialect))
        .with_(ident(_TILED), as_=tiled)
        .with_(ident(_RANKED), as_=ranked)
    )
    from fsql.compile import render

    header = [f"fsql tiles of feature view '{view.name}' (granularity {view.granularity}) in the buckets a run reads"]
    columns = (*(k.name for k in view.join_keys), BUCKET, *(state_column(a, s) for a, s in states))
    sql = render(for_engine(query, definitions, dialect, file_root), dialect, header)
    return TileQuery(view, dialect, sql, columns, parameter_names(query))


def floor_to(moment: exp.Expr, seconds: int) -> exp.Expr:
    """`floor(moment, g)`: the greatest multiple of g seconds from the epoch at or before it, as an instant."""
    epoch = exp.TimeToUnix(this=moment)
    step = exp.Literal.number(seconds)
    floored = exp.Mul(this=exp.Floor(this=exp.Div(this=epoch, expression=step)), expression=step.copy())
    return exp.cast(exp.UnixToTime(this=floored), "TIMESTAMPTZ")


def source_rows(view: FeatureView, source: Source, dialect: str) -> exp.Select:
    """Keys, event (and created) time, and per aggregation its input and its filter, from the source."""
    keys = [column(k.name) for k in view.join_keys]
    projections: list[exp.Expr] = [
        *keys,
        exp.alias_(exp.cast(column(source.timestamp), "TIMESTAMPTZ"), EVENT_TS, quoted=True),
    ]
    if source.created_timestamp:
        created = exp.cast(column(source.created_timestamp), "TIMESTAMPTZ")
        projections.append(exp.alias_(created, CREATED_TS, quoted=True))
    for aggregation in view.aggregations:
        value, predicate = parse_aggregation(aggregation, view, dialect)
        if value is not None:
            projections.append(exp.alias_(_typed(aggregation, value, source), _input_name(aggregation), quoted=True))
        if predicate is not None:
            projections.append(exp.alias_(_quoted_columns(predicate), _filter_name(aggregation), quoted=True))
    not_null = [exp.Not(this=exp.Is(this=c.copy(), expression=exp.Null())) for c in [*keys, column(source.timestamp)]]
    return exp.select(*projections).from_(source_relation(source, dialect)).where(exp.and_(*not_null))


def _typed(aggregation: Aggregation, value: exp.Expr, source: Source) -> exp.Expr:
    """The input, cast to the aggregation's input type unless it is a column of that type already."""
    value = _quoted_columns(value)
    if aggregation.input_type is None:
        return value
    if isinstance(value, exp.Column):
        found = source.column(value.name)
        if found is not None and found.type == aggregation.input_type:
            return value
    return exp.cast(value, exp.DataType(this=aggregation.input_type))


def _quoted_columns(expression: exp.Expr) -> exp.Expr:
    for read in expression.find_all(exp.Column):
        read.this.set("quoted", True)
    return expression


def _input_name(aggregation: Aggregation) -> str:
    return f"_fsql_x_{aggregation.name}"


def _filter_name(aggregation: Aggregation) -> str:
    return f"_fsql_p_{aggregation.name}"


def _rank_name(aggregation: Aggregation) -> str:
    return f"_fsql_rank_{aggregation.name}"


def _passes(aggregation: Aggregation) -> exp.Expr | None:
    """The aggregation's filter on a row (NULL counts as false), or None without one."""
    if aggregation.filter is None:
        return None
    return exp.EQ(this=column(_filter_name(aggregation)), expression=exp.true())


def _where(condition: exp.Expr | None, value: exp.Expr) -> exp.Expr:
    return value if condition is None else exp.Case(ifs=[exp.If(this=condition.copy(), true=value)])


def _read_buckets(source: Source, granularity: int) -> exp.Expr:
    """Rows of the buckets a run reads: `horizon <= e < until`, in a bucket from `from_bucket` on
    (NULL: all), or in a bucket holding a row created after `start_created`."""
    event = column(EVENT_TS)
    kept = exp.and_(
        exp.GTE(this=event.copy(), expression=bound("horizon")), exp.LT(this=event.copy(), expression=bound("until"))
    )
    read: exp.Expr = exp.or_(
        exp.Is(this=bound("from_bucket"), expression=exp.Null()),
        exp.GTE(this=event.copy(), expression=bound("from_bucket")),
    )
    if source.created_timestamp:
        corrected = (
            exp.select(floor_to(column(EVENT_TS), granularity))
            .from_(exp.Table(this=ident(_ROWS)))
            .where(exp.GT(this=column(CREATED_TS), expression=bound("start_created")))
        )
        read = exp.or_(read, exp.In(this=floor_to(event.copy(), granularity), query=corrected.subquery()))
    return exp.and_(kept, exp.paren(read, copy=False))


def _last_ranks(view: FeatureView, source: Source) -> list[exp.Expr]:
    """Per `last` aggregation, each row's rank in its tile by (e, created) descending, among rows passing its filter."""
    ranks: list[exp.Expr] = []
    order = [exp.Ordered(this=column(EVENT_TS), desc=True)]
    if source.created_timestamp:
        order.append(exp.Ordered(this=column(CREATED_TS), desc=True, nulls_first=False))
    for aggregation in view.aggregations:
        if aggregation.function is not AggregateFunction.LAST:
            continue
        partition: list[exp.Expr] = [*(column(k.name) for k in view.join_keys), column(BUCKET)]
        passes = _passes(aggregation)
        if passes is not None:
            partition.append(exp.func("COALESCE", passes, exp.false()))
        window = exp.Window(
            this=exp.RowNumber(), partition_by=partition, order=exp.Order(expressions=[o.copy() for o in order])
        )
        ranks.append(exp.alias_(window, _rank_name(aggregation), quoted=True))
    return ranks


def _compute(aggregation: Aggregation, state: TileState, source: Source, dialect: str) -> exp.Expr:
    """A tile's state from its rows."""
    passes = _passes(aggregation)
    has_input = aggregation.expression is not None or aggregation.is_column
    value = column(_input_name(aggregation)) if has_input else exp.Literal.number(1)
    kept = _where(passes, value)
    if state.compute == "count":
        return exp.func("COUNT", kept) if has_input or passes is not None else exp.func("COUNT", exp.Star())
    if state.compute == "sum":
        return exp.cast(exp.func("SUM", kept), exp.DataType(this=state_type(aggregation, state)))
    if state.compute == "sumsq":
        as_double = exp.cast(kept, exp.DataType(this=_DOUBLE))
        return exp.func("SUM", exp.Mul(this=as_double, expression=as_double.copy()))
    if state.compute in ("min", "max"):
        return exp.func(state.compute.upper(), kept)
    if state.compute == "distinct":  # sorted, so that recomputing a bucket gives the same tile
        present = exp.Not(this=exp.Is(this=kept.copy(), expression=exp.Null()))
        distinct: exp.Expr = exp.Distinct(expressions=[kept])
        if not time_math(dialect).ordered_array_agg:
            collected = exp.Filter(this=exp.ArrayAgg(this=distinct), expression=exp.Where(this=present))
            ordered_set = exp.ArraySort(this=collected)
            # Spark collects no values as [], the other engines as NULL: a tile holds NULL
            empty = exp.EQ(this=exp.ArraySize(this=ordered_set.copy()), expression=exp.Literal.number(0))
            return exp.case().when(empty, exp.null()).else_(ordered_set)
        # NULLs are filtered out: leave their place to the dialect (BigQuery's ARRAY_AGG takes no NULLS LAST)
        nulls_first = Dialect.get_or_raise(dialect).NULL_ORDERING == "nulls_are_small"
        ordered = exp.Order(this=distinct, expressions=[exp.Ordered(this=kept.copy(), nulls_first=nulls_first)])
        if time_math(dialect).array_agg_ignores_nulls:
            return exp.IgnoreNulls(this=exp.ArrayAgg(this=ordered))
        return exp.Filter(this=exp.ArrayAgg(this=ordered), expression=exp.Where(this=present))
    first: exp.Expr = exp.EQ(this=column(_rank_name(aggregation)), expression=exp.Literal.number(1))
    if passes is not None:
        first = exp.and_(first, passes.copy())
    if state.compute == "last_e":
        return exp.func("MAX", _where(passes, column(EVENT_TS)))
    if state.compute == "last_c":
        return exp.cast(
            exp.func("MAX", _where(first, column(CREATED_TS) if source.created_timestamp else exp.Null())),
            "TIMESTAMPTZ",
        )
    if aggregation.input_type is exp.DType.BOOLEAN:  # Postgres has no max(boolean); one row is first
        return exp.LogicalOr(this=_where(first, value))
    return exp.func("MAX", _where(first, value))


def example_aggregate_definitions() -> Definitions:
    """Tiny definitions for the doctests: trips counted over 1d and 7d, hourly tiles."""
    from fsql.durations import Duration
    from fsql.spec import AggregateWindow, Column, Entity, Feature, SourceKind

    bigint = exp.DType.BIGINT
    key = Column("driver_id", bigint)
    source = Source("trips", SourceKind.TABLE, "trips", "ts", None, (key, Column("ts", _TIMESTAMPTZ)))
    windows = (Duration(1, "d"), Duration(7, "d"))
    trips = Aggregation("trips", AggregateFunction.COUNT, None, None, windows, None)
    features = tuple(Feature(trips.feature_name(w), bigint, "", aggregate=AggregateWindow(trips, w)) for w in windows)
    view = FeatureView(
        "driver_trips", ("driver",), (key,), "trips", None, features, online=True, aggregations=(trips,),
        granularity=Duration(1, "h"),
    )  # fmt: skip
    return Definitions("duckdb", {"driver": Entity("driver", (key,))}, {"trips": source}, {view.name: view}, {})

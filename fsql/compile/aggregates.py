"""Windowed aggregates in the training query: one builder for every dialect.

For an aggregate view (DESIGN.md, "Windowed aggregates"), the rows of spine time t and
window w are the source rows of the spine's keys with `end - w <= e < end`, where `end`
is t, or `floor(t, g)` when the view has a granularity g. Per view, four CTEs:

- `<view>__rows`: keys, event (and created) time, each aggregation's input as
  `_fsql_value_<i>` (typed) and its filter as `_fsql_filter_<i>` (see `aggregate_rows`).
- `<view>__ends`: the spine's distinct (keys, ts) with each window's start and the end, so
  duplicate spine rows are computed once; a NULL key or ts is left out (it matches nothing).
- `<view>__pairs`: those joined to the rows of the view's widest window, in one range join
  (one pass over the source for all windows, measured in benchmarks/AGG_SHAPES.md).
- `<view>__windows`: per (keys, ts), every window of every function as a conditional
  aggregate (`SUM(CASE WHEN e >= start_w AND filter THEN x END)`); `last` takes the
  latest pair by ROW_NUMBER, one ranking per `last` aggregation.

The spine then LEFT JOINs `__windows` on (keys, ts): each spine row gets one output row.
Where nothing matched, count and count_distinct are 0 and the others NULL, and a NULL
spine ts gives NULL for all. Every result is cast to its feature's type, so a BIGINT sum
that overflows is an error (DuckDB would widen it to HUGEINT, Postgres to NUMERIC).

The dialects differ only as data (`_TIME_MATH`): time arithmetic, whether the event time is
compared as stored (an index on (keys, e) can serve it) or cast to an instant first
(BigQuery refuses to compare DATETIME with TIMESTAMP), and whether each spine row is
aggregated in LATERAL subqueries joined to the spine itself, with no `__ends`, `__pairs` or
`__windows` (Postgres: a nested loop of index range scans, as fast as the hand-written
LATERAL query, see benchmarks/agg_postgres.py; `last` is the first of an ordered ARRAY_AGG).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlglot import exp

from fsql.aggregations import parse_aggregation
from fsql.compile.context import CREATED_TS, EVENT_TS, column
from fsql.compile.request import ViewRequest
from fsql.definitions import source_relation
from fsql.durations import Duration
from fsql.errors import CompileError
from fsql.spec import AggregateFunction, Aggregation

SPINE_TS = "_fsql_ts"  # the spine's ts as an instant
WINDOW_END = "_fsql_end"
LATEST_EVENT = "_fsql_latest_ts"
_RANK = "_fsql_rank"
_INSTANT = exp.DataType(this=exp.DType.TIMESTAMPTZ)
_MICROS_PER_SECOND = 1_000_000


def value_column(index: int) -> str:
    return f"_fsql_value_{index}"


def filter_column(index: int) -> str:
    return f"_fsql_filter_{index}"


def start_column(window: Duration) -> str:
    return f"_fsql_from_{window.seconds}s"


# --- the functions, as data ----------------------------------------------------------------


@dataclass(frozen=True)
class FunctionSql:
    """How one function reads the rows of a window: `over(value)` where value is NULL outside it."""

    over: Callable[[exp.Expr], exp.Expr]
    empty_is_zero: bool = False  # an empty window gives 0, not NULL


FUNCTIONS: dict[AggregateFunction, FunctionSql] = {
    AggregateFunction.COUNT: FunctionSql(lambda v: exp.Count(this=v), empty_is_zero=True),
    AggregateFunction.COUNT_DISTINCT: FunctionSql(
        lambda v: exp.Count(this=exp.Distinct(expressions=[v])), empty_is_zero=True
    ),
    AggregateFunction.SUM: FunctionSql(lambda v: exp.Sum(this=v)),
    AggregateFunction.AVG: FunctionSql(lambda v: exp.Avg(this=v)),
    AggregateFunction.MIN: FunctionSql(lambda v: exp.Min(this=v)),
    AggregateFunction.MAX: FunctionSql(lambda v: exp.Max(this=v)),
    AggregateFunction.STDDEV: FunctionSql(lambda v: exp.StddevSamp(this=v)),
    # `last` reads the latest row of the aggregation's ranking: at most one row is inside.
    AggregateFunction.LAST: FunctionSql(lambda v: exp.Max(this=v)),
}


# --- the dialects, as data -----------------------------------------------------------------


@dataclass(frozen=True)
class TimeMath:
    """Epoch microseconds of an instant, and an instant minus microseconds, in one dialect."""

    micros: Callable[[exp.Expr], exp.Expr]
    minus_micros: Callable[[exp.Expr, exp.Expr], exp.Expr]
    # Compare the event time as stored (an index on it serves the range), or as an instant.
    event_as_instant: bool
    # Aggregate each spine time's rows in a LATERAL subquery (one index range scan, no
    # grouping of the pairs): 1.6x faster on Postgres (benchmarks/AGG_SHAPES.md).
    lateral_aggregate: bool = False
    # ARRAY_AGG(... ORDER BY ...) exists (Spark's collect_list takes no ORDER BY: sort after).
    ordered_array_agg: bool = True
    # NULLs left out by IGNORE NULLS, not FILTER: BigQuery has no FILTER (sqlglot moves it into the
    # argument as IF), and a DISTINCT ARRAY_AGG must be ordered by its argument itself.
    array_agg_ignores_nulls: bool = False


def _sub_micros(ts: exp.Expr, micros: exp.Expr) -> exp.Expr:
    return exp.TimestampSub(this=ts, expression=micros, unit=exp.Var(this="MICROSECOND"))


def _postgres_micros(ts: exp.Expr) -> exp.Expr:
    # EXTRACT(EPOCH ...) is NUMERIC since Postgres 14: exact to the microsecond.
    epoch = exp.Extract(this=exp.var("EPOCH"), expression=ts)
    return exp.cast(exp.Mul(this=epoch, expression=exp.Literal.number(_MICROS_PER_SECOND)), exp.DType.BIGINT)


def _spark_minus_micros(ts: exp.Expr, micros: exp.Expr) -> exp.Expr:
    # Spark's INTERVAL takes literals only; rebuild the instant from its microseconds instead.
    return exp.UnixToTime(this=exp.Sub(this=exp.UnixMicros(this=ts), expression=micros), scale=exp.UnixToTime.MICROS)


_TIME_MATH: dict[str, TimeMath] = {
    "duckdb": TimeMath(lambda ts: exp.UnixMicros(this=ts), _sub_micros, event_as_instant=False),
    "postgres": TimeMath(_postgres_micros, _sub_micros, event_as_instant=False, lateral_aggregate=True),
    "bigquery": TimeMath(
        lambda ts: exp.UnixMicros(this=ts), _sub_micros, event_as_instant=True, array_agg_ignores_nulls=True
    ),
    "spark": TimeMath(
        lambda ts: exp.UnixMicros(this=ts), _spark_minus_micros, event_as_instant=True, ordered_array_agg=False
    ),
    "databricks": TimeMath(
        lambda ts: exp.UnixMicros(this=ts), _spark_minus_micros, event_as_instant=True, ordered_array_agg=False
    ),
}


def time_math(dialect: str) -> TimeMath:
    if dialect not in _TIME_MATH:
        raise CompileError(f"windowed aggregates are not compiled for dialect '{dialect}' yet")
    return _TIME_MATH[dialect]


def instant(expression: exp.Expr) -> exp.Expr:
    return exp.cast(expression, _INSTANT.copy())


def floor_to(ts: exp.Expr, granularity: Duration, math: TimeMath) -> exp.Expr:
    """`floor(ts, g)`: the greatest multiple of g counted from the epoch at or before ts.

    `((m % g) + g) % g` is the remainder rounded down also before 1970, where `%` is negative.

    Example:
        >>> from fsql.durations import parse_duration
        >>> floor_to(exp.column("t"), parse_duration("1h"), time_math("bigquery")).sql("bigquery")
        'TIMESTAMP_SUB(t, INTERVAL (MOD(MOD(UNIX_MICROS(t), 3600000000) + 3600000000, 3600000000)) MICROSECOND)'
    """
    size = exp.Literal.number(granularity.seconds * _MICROS_PER_SECOND)
    remainder = exp.Mod(this=math.micros(ts.copy()), expression=size)
    rounded_down = exp.Mod(this=exp.paren(exp.Add(this=remainder, expression=size.copy())), expression=size.copy())
    return math.minus_micros(ts, rounded_down)


def minus(ts: exp.Expr, window: Duration) -> exp.Expr:
    return exp.TimestampSub(
        this=ts, expression=exp.Literal.number(window.sql_amount), unit=exp.Var(this=window.sql_unit)
    )


# --- the rows --------------------------------------------------------------------------------


def aggregate_rows(view: ViewRequest, source_dialect: str) -> exp.Select:
    """An aggregate view's rows: keys, event (and created) time, each aggregation's input and filter.

    Only the aggregations the request reads are projected; rows with a NULL key or event time
    are dropped (they can never match).
    """
    source = view.source
    keys = [column(k.name) for k in view.view.join_keys]
    projections: list[exp.Expr] = [*keys, exp.alias_(column(source.timestamp), EVENT_TS, quoted=True)]
    if source.created_timestamp:
        projections.append(exp.alias_(column(source.created_timestamp), CREATED_TS, quoted=True))
    for index, aggregation in requested_aggregations(view):
        value, predicate = parse_aggregation(aggregation, view.view, source_dialect)
        if value is not None:
            projections.append(exp.alias_(_typed_input(value, aggregation, view), value_column(index), quoted=True))
        if predicate is not None:
            projections.append(exp.alias_(_quoted(predicate), filter_column(index), quoted=True))
    not_null = [exp.Not(this=exp.Is(this=c.copy(), expression=exp.Null())) for c in [*keys, column(source.timestamp)]]
    return exp.select(*projections).from_(source_relation(source, source_dialect)).where(exp.and_(*not_null))


def requested_aggregations(view: ViewRequest) -> list[tuple[int, Aggregation]]:
    """(index in the view, aggregation) for each aggregation the request reads, in view order."""
    wanted = {f.feature.aggregate.aggregation.name for f in view.features if f.feature.aggregate is not None}
    return [(i, a) for i, a in enumerate(view.view.aggregations) if a.name in wanted]


def _quoted(expression: exp.Expr) -> exp.Expr:
    for read in expression.find_all(exp.Column):
        read.this.set("quoted", True)
    return expression


def _typed_input(value: exp.Expr, aggregation: Aggregation, view: ViewRequest) -> exp.Expr:
    value = _quoted(value)
    if aggregation.input_type is None:
        return value
    if isinstance(value, exp.Column):
        declared = view.source.column(value.name)
        if declared is not None and declared.type == aggregation.input_type:
            return value
    return exp.cast(value, exp.DataType(this=aggregation.input_type))

"""Exact counts, sums and averages from running totals read with ASOF joins (DuckDB).

The range join of `aggregate_join.py` costs the sum over keys of spine times x events in the
widest window: 166M pairs for 5k hot keys with ~1,000 events each. For count, `count(x)`, and
sum and avg of integers, the totals of a window are a difference of two running totals, which
costs n log n whatever the keys (benchmarks/AGG_SHAPES.md, "Running totals"). Used when every
feature asked of a view is one of those (`aggregate_join._all_from_running_totals`). Two CTEs:

- `<view>__running`: every row with, per aggregation, the running count of its contributing
  rows and (sum, avg) the running sum of its values, over the key's rows with an event time
  at or before the row's own (a RANGE frame: rows tying on the event time share one total).
- `<view>__totals`: per spine (keys, ts) of `<view>__ends`, one ASOF join at the window end and
  one per distinct window start, each taking the totals of the rows strictly before it
  (`end > e`, `start > e`); the window `[start, end)` is the difference.

Exactness: counts are BIGINT, running sums DuckDB's HUGEINT (SUM of an integer), so no total
rounds, and the window's sum is cast to BIGINT, which fails for a sum past BIGINT exactly as
the range join's `CAST(SUM(..) AS BIGINT)` does. A float sum as a difference of running sums
would lose the digits the window's own sum keeps: float inputs stay on the range join, as do
min, max, stddev, count_distinct and last (they need the rows). A window with no value gives a
NULL sum and avg (the running count of its values says so), a count of 0.
"""

from __future__ import annotations

from sqlglot import exp

from fsql.compile.aggregates import (
    SPINE_TS,
    WINDOW_END,
    filter_column,
    requested_aggregations,
    start_column,
    value_column,
)
from fsql.compile.context import EVENT_TS, SPINE_ALIAS, column, ident, rows_cte_name
from fsql.compile.request import OutputFeature, ViewRequest
from fsql.durations import Duration
from fsql.spec import AggregateFunction, Aggregation

_T = exp.DType
_EXACT_INPUTS = frozenset({_T.BIGINT, _T.INT})
_END = "at_end"


def runs_as_totals(aggregation: Aggregation) -> bool:
    """Whether a window's value is exactly a difference of running totals: counts, integer sums and avgs.

    Example:
        >>> from fsql.durations import parse_duration
        >>> runs_as_totals(Aggregation("n", AggregateFunction.COUNT, None, None, (parse_duration("1h"),), None))
        True
    """
    if aggregation.function is AggregateFunction.COUNT:
        return True
    return aggregation.function in (AggregateFunction.SUM, AggregateFunction.AVG) and (
        aggregation.input_type in _EXACT_INPUTS
    )


def totals_table(view: ViewRequest) -> str:
    return f"{view.view.name}__totals"


def count_column(index: int) -> str:
    return f"_fsql_count_{index}"


def sum_column(index: int) -> str:
    return f"_fsql_sum_{index}"


def _windows(view: ViewRequest) -> list[Duration]:
    seen = {
        f.feature.aggregate.window.seconds: f.feature.aggregate.window for f in view.features if f.feature.aggregate
    }
    return [seen[s] for s in sorted(seen)]


def running(view: ViewRequest) -> exp.Select:
    """Each row with its key's running totals up to its event time, ties included."""
    keys = [column(k.name) for k in view.view.join_keys]
    window = exp.Window(
        partition_by=keys,
        order=exp.Order(expressions=[exp.Ordered(this=column(EVENT_TS), nulls_first=False)]),
    )
    totals: list[exp.Expr] = []
    for index, aggregation in requested_aggregations(view):
        read: exp.Expr = column(value_column(index)) if aggregation.expression is not None else exp.Literal.number(1)
        if aggregation.filter is not None:
            read = exp.Case(ifs=[exp.If(this=column(filter_column(index)), true=read)])
        totals.append(exp.alias_(_over(exp.Count(this=read.copy()), window), count_column(index), quoted=True))
        if aggregation.function is not AggregateFunction.COUNT:  # DuckDB sums an integer into a HUGEINT
            totals.append(exp.alias_(_over(exp.Sum(this=read), window), sum_column(index), quoted=True))
    return exp.select(*keys, column(EVENT_TS), *totals).from_(ident(rows_cte_name(view)))


def _over(function: exp.Expr, window: exp.Window) -> exp.Window:
    over = window.copy()
    over.set("this", function)
    return over


def _reader(window: Duration | None) -> str:
    return _END if window is None else f"at_{window.seconds}s"


def totals(view: ViewRequest, ends: str) -> exp.Select:
    """Per spine (keys, ts): each feature as the totals before its window's end minus those before its start."""
    key_names = [k.name for k in view.view.join_keys]
    query = exp.select(*(column(k, "ends") for k in key_names), column(SPINE_TS, "ends")).from_(
        exp.Table(this=ident(ends), alias=exp.TableAlias(this=ident("ends")))
    )
    for window in (None, *_windows(view)):
        alias = _reader(window)
        before = column(WINDOW_END if window is None else start_column(window), "ends")
        on: list[exp.Expr] = [exp.EQ(this=column(k, alias), expression=column(k, "ends")) for k in key_names]
        on.append(exp.GT(this=before, expression=column(EVENT_TS, alias)))
        running_rows = exp.Table(this=ident(f"{view.view.name}__running"), alias=exp.TableAlias(this=ident(alias)))
        query.append("joins", exp.Join(this=running_rows, method="ASOF", side="LEFT", on=exp.and_(*on)))
    index_of = {a.name: i for i, a in requested_aggregations(view)}
    for output in view.features:
        query.select(_feature(output, index_of), copy=False)
    return query


def _difference(name: str, window: Duration) -> exp.Expr:
    def total(alias: str) -> exp.Expr:
        return exp.func("COALESCE", column(name, alias), exp.Literal.number(0))

    return exp.paren(exp.Sub(this=total(_END), expression=total(_reader(window))))


def _feature(output: OutputFeature, index_of: dict[str, int]) -> exp.Expr:
    aggregate = output.feature.aggregate
    assert aggregate is not None
    index, window = index_of[aggregate.aggregation.name], aggregate.window
    count = _difference(count_column(index), window)
    typed = exp.DataType(this=output.feature.type)
    if aggregate.aggregation.function is AggregateFunction.COUNT:
        return exp.alias_(exp.cast(count, typed), output.feature.name, quoted=True)
    value: exp.Expr = _difference(sum_column(index), window)
    if aggregate.aggregation.function is AggregateFunction.AVG:
        value = exp.Div(this=exp.cast(value, _T.DOUBLE), expression=count.copy())
    some = exp.GT(this=count, expression=exp.Literal.number(0))
    return exp.alias_(exp.Case(ifs=[exp.If(this=some, true=exp.cast(value, typed))]), output.feature.name, quoted=True)


def join_totals(query: exp.Select, view: ViewRequest, *, ends: str, spine_ts: exp.Expr) -> exp.Select:
    """Add `<view>__running` and `<view>__totals`, LEFT JOIN the spine to the totals on (keys, ts)."""
    name = view.view.name
    steps = (
        (f"{name}__running", running(view), "each row with its key's running totals, ties at one time shared"),
        (
            totals_table(view),
            totals(view, ends),
            "per spine keys and ts: totals before the end minus before each start",
        ),
    )
    for cte_name, body, comment in steps:
        query = query.with_(ident(cte_name), as_=body, copy=False)
        query.args["with_"].expressions[-1].add_comments([f" {name}: {comment} "])
    alias = totals_table(view)
    keys = [exp.EQ(this=column(k.name, alias), expression=column(k.name, SPINE_ALIAS)) for k in view.view.join_keys]
    on_ts = exp.EQ(this=column(SPINE_TS, alias), expression=spine_ts)
    join = exp.Join(this=exp.Table(this=ident(alias)), side="LEFT", on=exp.and_(*keys, on_ts))
    join.add_comments([f" {name}: counts, sums and avgs for the spine row's keys and ts "])
    query.append("joins", join)
    return query

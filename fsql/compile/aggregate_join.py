"""The CTEs and the join that give each spine row its windowed aggregates (see `aggregates.py`)."""

from __future__ import annotations

from sqlglot import exp

from fsql.compile.aggregate_running import join_totals, runs_as_totals, totals_table
from fsql.compile.aggregates import (
    FUNCTIONS,
    LATEST_EVENT,
    SPINE_TS,
    WINDOW_END,
    TimeMath,
    filter_column,
    floor_to,
    instant,
    minus,
    requested_aggregations,
    start_column,
    time_math,
    value_column,
)
from fsql.compile.context import CREATED_TS, EVENT_TS, SPINE_ALIAS, CompileContext, column, ident, rows_cte_name
from fsql.compile.request import OutputFeature, ViewRequest
from fsql.compile.window import bound_feature_rows
from fsql.durations import Duration
from fsql.spec import AggregateFunction, Aggregation

_ENDS, _PAIRS, _ROWS, _GROUPED, _RANK = "ends", "pairs", "rows", "grouped", "_fsql_rank"


def join_aggregates(query: exp.Select, view: ViewRequest, ctx: CompileContext) -> exp.Select:
    """Add the view's aggregate CTEs, LEFT JOIN the spine to them on (keys, ts), project its features."""
    name = view.view.name
    math = time_math(ctx.dialect)
    spine_ts = column(ctx.spine.timestamp, SPINE_ALIAS)
    if ctx.strategy.bounds_scans:  # BigQuery and Spark: prune the source scan (and its partitions) to the spine's reach
        granularity = view.view.granularity.seconds if view.view.granularity else 0
        bound_feature_rows(query, view, ctx, lookback=Duration(requested_windows(view)[-1].seconds + granularity, "s"))
    if math.lateral_aggregate:
        query = _join_lateral_per_spine_row(query, view, ctx, math)
        return query.select(*(_output(f, name, spine_ts) for f in view.features), copy=False)
    ends = f"{name}__ends"
    query = query.with_(ident(ends), as_=spine_ends(view, ctx, math), copy=False)
    query.args["with_"].expressions[-1].add_comments(
        [f" {name}: the spine's distinct keys and ts, each window's ends "]
    )
    if _all_from_running_totals(view, math):
        query = join_totals(query, view, ends=ends, spine_ts=instant(spine_ts.copy()))
        return query.select(*(_output(f, totals_table(view), spine_ts) for f in view.features), copy=False)
    query = _join_range(query, view, ctx)
    return query.select(*(_output(f, name, spine_ts) for f in view.features), copy=False)


def _all_from_running_totals(view: ViewRequest, math: TimeMath) -> bool:
    """Running totals replace the range join only when every feature asked of the view has them:
    a view that needs the join anyway (a float sum, a max) pays it whatever else it computes, and
    adding the totals beside it measured slower (benchmarks/AGG_SHAPES.md, "Running totals")."""
    aggregates = [f.feature.aggregate for f in view.features]
    return math.running_totals and all(a is not None and runs_as_totals(a.aggregation) for a in aggregates)


def _join_range(query: exp.Select, view: ViewRequest, ctx: CompileContext) -> exp.Select:
    """`<view>__pairs` (one range join to the widest window's rows), `<view>__windows`, and its LEFT JOIN."""
    name = view.view.name
    math = time_math(ctx.dialect)
    steps: tuple[tuple[str, exp.Select, str], ...] = (
        (f"{name}__pairs", pairs(view, math), "each spine time with the rows of its widest window, one range join"),
        (f"{name}__windows", windows(view), "per spine keys and ts: every window of every aggregation"),
    )
    for cte_name, body, comment in steps:
        query = query.with_(ident(cte_name), as_=body, copy=False)
        query.args["with_"].expressions[-1].add_comments([f" {name}: {comment} "])
    keys = [exp.EQ(this=column(k.name, name), expression=column(k.name, SPINE_ALIAS)) for k in view.view.join_keys]
    on_ts = exp.EQ(this=column(SPINE_TS, name), expression=instant(column(ctx.spine.timestamp, SPINE_ALIAS)))
    join = exp.Join(
        this=exp.Table(this=ident(f"{name}__windows"), alias=exp.TableAlias(this=ident(name))),
        side="LEFT",
        on=exp.and_(*keys, on_ts),
    )
    join.add_comments([f" {name}: aggregates for the spine row's keys and ts "])
    query.append("joins", join)
    return query


def _join_lateral_per_spine_row(
    query: exp.Select, view: ViewRequest, ctx: CompileContext, math: TimeMath
) -> exp.Select:
    """Each spine row's windows in two LATERAL subqueries joined to the spine itself: its window
    ends (computed once per row), then its aggregates over one index range scan of its widest
    window. Postgres runs this as a nested loop; deduplicating the spine first and joining
    back, as the other dialects do, cost it a hash aggregate, two sorts and a merge join
    (benchmarks/agg_postgres.py). A NULL key or ts matches no row: counts 0, the rest NULL.
    """
    name = view.view.name
    ends_alias = f"{name}__ends"
    ts = instant(column(ctx.spine.timestamp, SPINE_ALIAS))
    granularity = view.view.granularity
    end = floor_to(ts, granularity, math) if granularity else ts
    ends = exp.select(
        *(exp.alias_(column(k.name, SPINE_ALIAS), k.name, quoted=True) for k in view.view.join_keys),
        exp.alias_(end, WINDOW_END, quoted=True),
        *(exp.alias_(minus(end.copy(), w), start_column(w), quoted=True) for w in requested_windows(view)),
    )
    inner = (
        exp.select(*_conditional_aggregates(view, _ROWS, ends_alias, lasts_in_place=True))
        .from_(exp.Table(this=ident(rows_cte_name(view)), alias=exp.TableAlias(this=ident(_ROWS))))
        .where(exp.and_(*_widest_window_rows(view, math, ends_alias)))
    )
    for alias, body in ((ends_alias, ends), (name, inner)):
        lateral = exp.Lateral(this=body.subquery(), alias=exp.TableAlias(this=ident(alias)))
        join = exp.Join(this=lateral, side="LEFT", on=exp.true())
        query.append("joins", join)
    query.args["joins"][-1].add_comments([f" {name}: the spine row's windows, one range scan of its widest "])
    return query


def _output(output: OutputFeature, table: str, spine_ts: exp.Column) -> exp.Expr:
    """The feature as the spine row sees it: 0 for a count of nothing, NULL for a NULL spine time."""
    aggregate = output.feature.aggregate
    assert aggregate is not None
    value: exp.Expr = column(output.feature.name, table)
    if FUNCTIONS[aggregate.aggregation.function].empty_is_zero:
        has_ts = exp.Not(this=exp.Is(this=spine_ts.copy(), expression=exp.Null()))
        value = exp.Case(ifs=[exp.If(this=has_ts, true=exp.func("COALESCE", value, exp.Literal.number(0)))])
    return exp.alias_(value, output.output_name, quoted=True)


def requested_windows(view: ViewRequest) -> list[Duration]:
    """The distinct windows the request reads, shortest first."""
    seen = {
        f.feature.aggregate.window.seconds: f.feature.aggregate.window for f in view.features if f.feature.aggregate
    }
    return [seen[s] for s in sorted(seen)]


def spine_ends(view: ViewRequest, ctx: CompileContext, math: TimeMath) -> exp.Select:
    """The spine's distinct (keys, ts as an instant), with the window end and each window's start."""
    key_names = [k.name for k in view.view.join_keys]
    raw_ts = column(ctx.spine.timestamp, SPINE_ALIAS)
    keys = [column(k, SPINE_ALIAS) for k in key_names]
    present = [exp.Not(this=exp.Is(this=c.copy(), expression=exp.Null())) for c in [*keys, raw_ts]]
    ts = instant(raw_ts.copy())
    granularity = view.view.granularity
    end = floor_to(ts.copy(), granularity, math) if granularity else ts.copy()
    distinct = (
        exp.select(*keys, exp.alias_(ts, SPINE_TS, quoted=True), exp.alias_(end, WINDOW_END, quoted=True))
        .distinct()
        .from_(ident(SPINE_ALIAS))
        .where(exp.and_(*present))
    )
    starts = [exp.alias_(minus(column(WINDOW_END), w), start_column(w), quoted=True) for w in requested_windows(view)]
    return exp.select(*map(column, key_names), column(SPINE_TS), column(WINDOW_END), *starts).from_(
        distinct.subquery(ident("spine_times"))
    )


def _event(view: ViewRequest, math: TimeMath) -> exp.Expr:
    event = column(EVENT_TS, _ROWS)
    declared = view.source.column(view.source.timestamp)
    as_instant = math.event_as_instant and (declared is None or declared.type != exp.DType.TIMESTAMPTZ)
    return instant(event) if as_instant else event


def _widest_window_rows(view: ViewRequest, math: TimeMath, ends: str = _ENDS) -> list[exp.Expr]:
    """`rows.keys = ends.keys AND start_widest <= e < end`: the rows of a spine time's widest window."""
    widest = requested_windows(view)[-1]
    event = _event(view, math)
    on: list[exp.Expr] = [
        exp.EQ(this=column(k.name, _ROWS), expression=column(k.name, ends)) for k in view.view.join_keys
    ]
    on.append(exp.GTE(this=event.copy(), expression=column(start_column(widest), ends)))
    on.append(exp.LT(this=event.copy(), expression=column(WINDOW_END, ends)))
    return on


def pairs(view: ViewRequest, math: TimeMath) -> exp.Select:
    """Each spine (keys, ts) with every row of its widest window: `start <= e < end`."""
    key_names = [k.name for k in view.view.join_keys]
    event = _event(view, math)
    on = _widest_window_rows(view, math)
    inputs = [
        column(name, _ROWS)
        for index, aggregation in requested_aggregations(view)
        for name, present in (
            (value_column(index), aggregation.expression is not None),
            (filter_column(index), aggregation.filter is not None),
        )
        if present
    ]
    created = [column(CREATED_TS, _ROWS)] if view.source.created_timestamp else []
    return (
        exp.select(
            *(column(k, _ENDS) for k in key_names),
            column(SPINE_TS, _ENDS),
            *(column(start_column(w), _ENDS) for w in requested_windows(view)),
            exp.alias_(event, EVENT_TS, quoted=True),
            *created,
            *inputs,
        )
        .from_(exp.Table(this=ident(f"{view.view.name}__ends"), alias=exp.TableAlias(this=ident(_ENDS))))
        .join(
            exp.Table(this=ident(rows_cte_name(view)), alias=exp.TableAlias(this=ident(_ROWS))),
            on=exp.and_(*on),
            join_type="INNER",
        )
    )


def _inside(index: int, aggregation: Aggregation, window: Duration, rows: str, starts: str) -> exp.Expr:
    inside: exp.Expr = exp.GTE(this=column(EVENT_TS, rows), expression=column(start_column(window), starts))
    if aggregation.filter is not None:
        inside = exp.and_(inside, column(filter_column(index), rows))
    return inside


def _conditional_aggregates(
    view: ViewRequest, rows: str, starts: str, *, lasts_in_place: bool = False
) -> list[exp.Expr]:
    """Each requested feature: `f(CASE WHEN e >= start_w [AND filter] THEN x END)`, typed; `last`
    only `lasts_in_place` (Postgres), as the first of the window's values ordered by (e, created)
    descending, NULL values included (`_last_in_place`); elsewhere `_with_lasts` ranks the pairs."""
    index_of = {a.name: i for i, a in requested_aggregations(view)}
    aggregated: list[exp.Expr] = []
    for output in view.features:
        aggregate = output.feature.aggregate
        assert aggregate is not None
        aggregation, index = aggregate.aggregation, index_of[aggregate.aggregation.name]
        if aggregation.function is AggregateFunction.LAST:
            if lasts_in_place:
                inside = _inside(index, aggregation, aggregate.window, rows, starts)
                last = exp.cast(_last_in_place(view, index, inside, rows), exp.DataType(this=output.feature.type))
                aggregated.append(exp.alias_(last, output.feature.name, quoted=True))
            continue
        read = column(value_column(index), rows) if aggregation.expression is not None else exp.Literal.number(1)
        inside = exp.Case(ifs=[exp.If(this=_inside(index, aggregation, aggregate.window, rows, starts), true=read)])
        value = exp.cast(FUNCTIONS[aggregation.function].over(inside), exp.DataType(this=output.feature.type))
        aggregated.append(exp.alias_(value, output.feature.name, quoted=True))
    return aggregated


def _last_in_place(view: ViewRequest, index: int, inside: exp.Expr, rows: str) -> exp.Expr:
    """`(ARRAY_AGG(x ORDER BY e DESC, created DESC NULLS LAST) FILTER (WHERE inside))[1]`: a NULL
    x of the latest row is kept (ARRAY_AGG keeps NULLs), a NULL created time sorts lowest."""
    order = [exp.Ordered(this=column(EVENT_TS, rows), desc=True, nulls_first=False)]
    if view.source.created_timestamp:
        order.append(exp.Ordered(this=column(CREATED_TS, rows), desc=True, nulls_first=False))
    ordered = exp.Order(this=column(value_column(index), rows), expressions=order)
    collected = exp.Filter(this=exp.ArrayAgg(this=ordered), expression=exp.Where(this=inside))
    return exp.Bracket(this=exp.paren(collected, copy=False), expressions=[exp.Literal.number(1)], offset=1)


def _lasts(view: ViewRequest) -> list[tuple[int, Aggregation]]:
    return [(i, a) for i, a in requested_aggregations(view) if a.function is AggregateFunction.LAST]


def windows(view: ViewRequest) -> exp.Select:
    """Per spine (keys, ts): each requested feature, as one conditional aggregate over the pairs."""
    key_names = [k.name for k in view.view.join_keys]
    aggregated = _conditional_aggregates(view, _PAIRS, _PAIRS)
    grouped = (
        exp.select(*(column(k, _PAIRS) for k in key_names), column(SPINE_TS, _PAIRS), *aggregated)
        .from_(exp.Table(this=ident(f"{view.view.name}__pairs"), alias=exp.TableAlias(this=ident(_PAIRS))))
        .group_by(*(column(k, _PAIRS) for k in key_names), column(SPINE_TS, _PAIRS))
    )
    lasts = _lasts(view)
    if not lasts:
        return grouped
    return _with_lasts(grouped, view, lasts)


def _with_lasts(grouped: exp.Select, view: ViewRequest, lasts: list[tuple[int, Aggregation]]) -> exp.Select:
    """`grouped` LEFT JOINed to the latest pair of each `last` aggregation, read per window."""
    key_names = [k.name for k in view.view.join_keys]
    query = exp.select(*(column(k, _GROUPED) for k in key_names), column(SPINE_TS, _GROUPED)).from_(
        grouped.subquery(ident(_GROUPED))
    )
    query.select(*(column(o.feature.name, _GROUPED) for o in view.features if not _is_last(o)), copy=False)
    for index, aggregation in lasts:
        alias = f"last_{index}"
        on = [exp.EQ(this=column(k, alias), expression=column(k, _GROUPED)) for k in [*key_names, SPINE_TS]]
        query = query.join(
            latest_pair(view, index, aggregation).subquery(ident(alias)), on=exp.and_(*on), join_type="LEFT"
        )
        for output in view.features:
            aggregate = output.feature.aggregate
            if aggregate is None or aggregate.aggregation.name != aggregation.name:
                continue
            inside = exp.GTE(this=column(LATEST_EVENT, alias), expression=column(start_column(aggregate.window), alias))
            value = exp.Case(ifs=[exp.If(this=inside, true=column(value_column(index), alias))])
            query.select(exp.alias_(value, output.feature.name, quoted=True), copy=False)
    return query


def _is_last(output: OutputFeature) -> bool:
    return (
        output.feature.aggregate is not None and output.feature.aggregate.aggregation.function is AggregateFunction.LAST
    )


def latest_pair(view: ViewRequest, index: int, aggregation: Aggregation) -> exp.Select:
    """Per spine (keys, ts): the pair with the greatest (e, created) among those passing the filter.

    Its value counts even when NULL; the windows that do not reach back to it get NULL.
    """
    key_names = [k.name for k in view.view.join_keys]
    order = [exp.Ordered(this=column(EVENT_TS), desc=True, nulls_first=False)]
    if view.source.created_timestamp:
        order.append(exp.Ordered(this=column(CREATED_TS), desc=True, nulls_first=False))
    rank = exp.Window(
        this=exp.RowNumber(),
        partition_by=[*map(column, key_names), column(SPINE_TS)],
        order=exp.Order(expressions=order),
    )
    starts = [column(start_column(w)) for w in requested_windows(view)]
    ranked = exp.select(
        *map(column, key_names),
        column(SPINE_TS),
        *starts,
        exp.alias_(column(EVENT_TS), LATEST_EVENT, quoted=True),
        column(value_column(index)),
        exp.alias_(rank, _RANK, quoted=True),
    ).from_(ident(f"{view.view.name}__pairs"))
    if aggregation.filter is not None:
        ranked = ranked.where(column(filter_column(index)))
    return (
        exp.select(
            *map(column, key_names),
            column(SPINE_TS),
            *(s.copy() for s in starts),
            column(LATEST_EVENT),
            column(value_column(index)),
        )
        .from_(ranked.subquery(ident("ranked")))
        .where(exp.EQ(this=column(_RANK), expression=exp.Literal.number(1)))
    )

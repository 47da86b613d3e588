"""The window strategy (BigQuery, Spark): no ASOF join, no LATERAL, so carry time forward.

Per feature view, the feature-rows CTE is bounded at the source scan to [min spine ts -
ttl, max spine ts] (and a partition column to those days), since bytes scanned are money
on BigQuery; then three CTEs and one LEFT JOIN:
- `<view>__latest`: the feature rows made unique on (keys, event time), keeping the row
  with the greatest created time (a NULL created time ranks lowest; a complete tie keeps
  one row).
- `<view>__timeline`: one union of the spine's distinct (keys, ts) and those feature rows'
  (keys, event time), every time as a UTC instant (BigQuery TIMESTAMP, never DATETIME).
- `<view>__pit`: a running MAX of the feature rows' event time per key, ordered by time with
  feature rows first at equal times (a row at exactly the spine's ts counts), gives each
  spine (keys, ts) the event time of its latest row; joined back to `__latest` on (keys,
  event time), within the ttl, it gives that one row's values.
The spine then takes its features from `__pit` on (keys, ts): each spine row gets exactly
one output row (duplicates too), and a NULL key or ts matches nothing.

Not LAST_VALUE(value IGNORE NULLS) per feature: it returns an older value when the latest
row's value is NULL. Not a ROW_NUMBER() OVER () to name spine rows: a row's features
depend on its keys and ts alone, so (keys, ts), compared column by column, is an exact
handle, while an unordered row number is not stable across the two reads of a CTE that
BigQuery evaluates once per reference.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlglot import exp

from fsql.compile.context import (
    CREATED_TS,
    EVENT_TS,
    SPINE_ALIAS,
    CompileContext,
    column,
    ident,
    rows_cte_name,
    spine_ts_of,
)
from fsql.compile.request import ViewRequest
from fsql.compile.strategy import PointInTimeStrategy
from fsql.durations import Duration

SPINE_TS = "_fsql_ts"  # the spine's ts as an instant, in the timeline and __pit
IS_SPINE = "_fsql_is_spine"
RANK = "_fsql_rank"
_INSTANT = exp.DType.TIMESTAMPTZ  # BigQuery TIMESTAMP, Spark TIMESTAMP (session time zone UTC)


def instant(expression: exp.Expression) -> exp.Expression:
    """`expression` as a UTC instant (a naive timestamp or a date is read as UTC).

    Example:
        >>> instant(exp.column("ts")).sql("bigquery"), instant(exp.column("ts")).sql("spark")
        ('CAST(ts AS TIMESTAMP)', 'CAST(ts AS TIMESTAMP)')
    """
    return exp.cast(expression, exp.DataType(this=_INSTANT))


def ordered(expression: exp.Expression, *, desc: bool = False) -> exp.Ordered:
    # Ascending NULLS FIRST / descending NULLS LAST: the default of BigQuery and Spark, so
    # no NULLS clause is rendered (the columns sorted ascending here are never NULL).
    return exp.Ordered(this=expression, desc=desc, nulls_first=not desc)


class WindowStrategy(PointInTimeStrategy):
    name = "window"
    bounds_scans = True

    def join_view(self, query: exp.Select, view: ViewRequest, ctx: CompileContext) -> exp.Select:
        name = view.view.name
        bound_feature_rows(query, view, ctx)
        steps = (
            (f"{name}__latest", latest_rows(view), "one row per key and event time, the latest created"),
            (f"{name}__timeline", timeline(view, ctx), "spine times and event times per key, in one union"),
            (f"{name}__pit", point_in_time(view), "per spine key and ts: the latest row at or before ts, in ttl"),
        )
        for cte_name, body, comment in steps:
            query = query.with_(ident(cte_name), as_=body, copy=False)
            query.args["with_"].expressions[-1].add_comments([f" {name}: {comment} "])
        keys = [exp.EQ(this=column(k.name, name), expression=column(k.name, SPINE_ALIAS)) for k in view.view.join_keys]
        on_ts = exp.EQ(this=column(SPINE_TS, name), expression=instant(spine_ts_of(ctx)))
        join = exp.Join(
            this=exp.Table(this=ident(f"{name}__pit"), alias=exp.TableAlias(this=ident(name))),
            side="LEFT",
            on=exp.and_(*keys, on_ts),
        )
        join.add_comments([f" {name}: features for the spine row's keys and ts "])
        query.append("joins", join)
        return query.select(*self.feature_columns(name, view, None), copy=False)


def latest_rows(view: ViewRequest) -> exp.Select:
    """The feature rows unique on (keys, event time): the greatest created time wins."""
    rows = "rows"
    keys = [column(k.name, rows) for k in view.view.join_keys]
    event = event_instant(view, rows)
    created = view.source.created_timestamp
    tiebreak = ordered(column(CREATED_TS, rows), desc=True) if created else ordered(event.copy())
    rank = exp.Window(this=exp.RowNumber(), partition_by=[*keys, event.copy()], order=exp.Order(expressions=[tiebreak]))
    features = [column(f.output_name, rows) for f in view.features]
    inner = exp.select(
        *keys, exp.alias_(event, EVENT_TS, quoted=True), *features, exp.alias_(rank, RANK, quoted=True)
    ).from_(exp.Table(this=ident(rows_cte_name(view)), alias=exp.TableAlias(this=ident(rows))))
    ranked = "ranked"
    outputs = [column(k.name, ranked) for k in view.view.join_keys] + [column(EVENT_TS, ranked)]
    outputs += [column(f.output_name, ranked) for f in view.features]
    return (
        exp.select(*outputs)
        .from_(inner.subquery(ident(ranked)))
        .where(exp.EQ(this=column(RANK, ranked), expression=exp.Literal.number(1)))
    )


def event_instant(view: ViewRequest, table: str | None = None) -> exp.Expression:
    """The event time as an instant: `_fsql_event_ts` of `table`, or the source's own column.

    A column declared timestamptz is one already and stays bare, so that a filter on it
    can prune partitions.
    """
    declared = view.source.column(view.source.timestamp)
    event = column(EVENT_TS, table) if table else column(view.source.timestamp)
    return event if declared is not None and declared.type == _INSTANT else instant(event)


# --- pruning: the feature scan bounded to [min spine ts - ttl, max spine ts] --------------------


def bound_feature_rows(
    query: exp.Select, view: ViewRequest, ctx: CompileContext, lookback: Duration | None = None
) -> None:
    """Narrow the view's feature-rows CTE, at the source scan, to the rows the spine can reach.

    Rows after the spine's latest ts or older than its earliest ts - lookback (default: the
    ttl; an aggregate view passes its widest window plus its granularity) can never match.
    A view's partition column (the UTC date of the event time) gets the same bound in days.
    """
    rows = next(cte.this for cte in query.args["with_"].expressions if cte.alias == rows_cte_name(view))
    earliest, highest = spine_bounds(ctx)
    lowest = minus(earliest, lookback if lookback is not None else view.view.ttl)
    event = event_instant(view)
    conditions: list[exp.Expression] = [exp.LTE(this=event, expression=highest)]
    if lowest is not None:
        conditions.append(exp.GTE(this=event.copy(), expression=lowest))
    partition = partition_column(view)
    if partition is not None:
        day = exp.DataType(this=exp.DType.DATE)
        conditions.append(exp.LTE(this=column(partition), expression=exp.cast(highest.copy(), day)))
        if lowest is not None:
            conditions.append(exp.GTE(this=column(partition), expression=exp.cast(lowest.copy(), day)))
    where = rows.args.get("where")
    existing = [] if where is None else [where.this]
    if where is not None and isinstance(where.this, exp.And):
        existing = list(where.this.flatten())  # one flat AND list reads better than nested parentheses
    rows.set("where", exp.Where(this=exp.and_(*existing, *conditions)))


def spine_bounds(ctx: CompileContext) -> tuple[exp.Expression, exp.Expression]:
    """The spine's earliest and latest ts: literals when the caller measured them (BigQuery
    prunes partitions on constants only), else scalar subqueries over the spine."""
    measured = ctx.spine.bounds
    if measured is not None:
        return _instant_literal(measured[0]), _instant_literal(measured[1])

    def spine_bound(function: type[exp.AggFunc]) -> exp.Expression:
        return exp.select(function(this=instant(column(ctx.spine.timestamp)))).from_(ident(SPINE_ALIAS)).subquery()

    return spine_bound(exp.Min), spine_bound(exp.Max)


def _instant_literal(value: datetime) -> exp.Expression:
    utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return instant(exp.Literal.string(utc.isoformat(sep=" ")))


def partition_column(view: ViewRequest) -> str | None:
    """The source's partition column, when it names one (`partition_column:`, see the README)."""
    return view.source.partition_column


def minus_ttl(ts: exp.Expression, view: ViewRequest) -> exp.Expression | None:
    return minus(ts, view.view.ttl)


def minus(ts: exp.Expression, duration: Duration | None) -> exp.Expression | None:
    if duration is None:
        return None
    return exp.TimestampSub(
        this=ts, expression=exp.Literal.number(duration.sql_amount), unit=exp.Var(this=duration.sql_unit)
    )


def timeline(view: ViewRequest, ctx: CompileContext) -> exp.Query:
    """The spine's distinct (keys, ts), then the feature rows' (keys, event time), as one union."""
    key_names = [k.name for k in view.view.join_keys]
    spine_columns = [column(k, SPINE_ALIAS) for k in key_names]
    raw_ts = column(ctx.spine.timestamp, SPINE_ALIAS)
    present = [exp.Not(this=exp.Is(this=c.copy(), expression=exp.Null())) for c in [*spine_columns, raw_ts]]
    spine_side = (
        exp.select(
            *spine_columns,
            exp.alias_(instant(raw_ts), SPINE_TS, quoted=True),
            exp.alias_(exp.cast(exp.Null(), exp.DataType(this=_INSTANT)), EVENT_TS, quoted=True),
            exp.alias_(exp.Literal.number(1), IS_SPINE, quoted=True),
        )
        .distinct()
        .from_(ident(SPINE_ALIAS))
        .where(exp.and_(*present))
    )
    latest = "latest"
    feature_side = exp.select(
        *(column(k, latest) for k in key_names),
        column(EVENT_TS, latest),
        column(EVENT_TS, latest),
        exp.Literal.number(0),
    ).from_(exp.Table(this=ident(f"{view.view.name}__latest"), alias=exp.TableAlias(this=ident(latest))))
    return exp.union(spine_side, feature_side, distinct=False)


def point_in_time(view: ViewRequest) -> exp.Select:
    """Per spine (keys, ts): the features of the latest row at or before ts, within the ttl."""
    timeline_alias, latest = "timeline", "latest"
    key_names = [k.name for k in view.view.join_keys]
    carried = exp.Window(
        this=exp.Max(this=column(EVENT_TS)),
        partition_by=[column(k) for k in key_names],
        order=exp.Order(expressions=[ordered(column(SPINE_TS)), ordered(column(IS_SPINE))]),
        spec=exp.WindowSpec(kind="ROWS", start="UNBOUNDED", start_side="PRECEDING", end="CURRENT ROW"),
    )
    carry = exp.select(
        *map(column, key_names), column(SPINE_TS), column(IS_SPINE), exp.alias_(carried, EVENT_TS, quoted=True)
    ).from_(ident(f"{view.view.name}__timeline"))
    conditions: list[exp.Expression] = [
        exp.EQ(this=column(k, latest), expression=column(k, timeline_alias)) for k in key_names
    ]
    conditions.append(exp.EQ(this=column(EVENT_TS, latest), expression=column(EVENT_TS, timeline_alias)))
    oldest = minus_ttl(column(SPINE_TS, timeline_alias), view)
    if oldest is not None:
        conditions.append(exp.GTE(this=column(EVENT_TS, latest), expression=oldest))
    return (
        exp.select(
            *(column(k, timeline_alias) for k in key_names),
            column(SPINE_TS, timeline_alias),
            *(column(f.output_name, latest) for f in view.features),
        )
        .from_(carry.subquery(ident(timeline_alias)))
        .join(
            exp.Table(this=ident(f"{view.view.name}__latest"), alias=exp.TableAlias(this=ident(latest))),
            on=exp.and_(*conditions),
            join_type="INNER",
        )
        .where(exp.EQ(this=column(IS_SPINE, timeline_alias), expression=exp.Literal.number(1)))
    )

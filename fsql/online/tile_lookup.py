"""Aggregate features at lookup time: windows finished from the tiles, in the service's one statement.

For an aggregate view the lookup joins, to each requested entity,
- `as_of = floor(min(now, T), g)`, T being the view's watermark in `_fsql_state` (NULL
  before its first build); and
- one LATERAL aggregate over the entity's tiles with `as_of - longest window <= bucket <
  as_of` (a range scan of the primary key), where each window w merges the states of the
  tiles from `as_of - w` on and finishes them (count 0 and the others NULL for no tiles);
  the tiles are merged once per window class first (`_window_values` says why),
which is the offline value for a spine row at `as_of` (DESIGN.md, "Windowed aggregates").
A lookup at a time before `floor(T, g)` finds the older tiles pruned: its values are NULL
and its status OUTSIDE_MAX_AGE, never a window counted from part of its tiles.
`lookup.py` composes this into the statement of the whole request.
"""

from __future__ import annotations

from sqlglot import exp

from fsql.compile.request import ViewRequest
from fsql.compile.tiles import BUCKET, TILE_STATES, TileState, state_column, state_type
from fsql.durations import Duration
from fsql.online.tables import STATE_TABLE, table_ref
from fsql.spec import AggregateFunction, AggregateWindow, Aggregation, FeatureView

AS_OF = "as_of"
ANSWERED = "answered"
_TILE = "_fsql_tile"
_CLASSES = "_fsql_classes"
_CLASS = "_fsql_class"


def as_of_alias(view: FeatureView) -> str:
    return f"_fsql_as_of__{view.name}"


def join_aggregate_view(
    query: exp.Select, view: ViewRequest, schema: str, keys_of: exp.Identifier, now: exp.Expr
) -> exp.Select:
    """Join one aggregate view to the requested keys (`keys_of`): its as_of, then its windows' values."""
    definition = view.view
    assert definition.granularity is not None, "online aggregate views have a granularity"
    as_of_table = as_of_alias(definition)
    as_of = exp.Column(this=_ident(AS_OF), table=_ident(as_of_table))
    query = query.join(
        _as_of_query(definition, schema, now).subquery(_ident(as_of_table)), on=exp.true(), join_type="LEFT"
    )
    values = _window_values(view, schema, keys_of, as_of)
    lateral = exp.Lateral(this=values.subquery(), alias=exp.TableAlias(this=_ident(definition.name)))
    query = query.join(lateral, on=exp.true(), join_type="LEFT")
    answered = answered_column(definition)
    for output in view.features:
        value = exp.Column(this=_ident(output.feature.name), table=_ident(definition.name))
        query = query.select(
            exp.alias_(exp.Case(ifs=[exp.If(this=answered.copy(), true=value)]), output.output_name, quoted=True)
        )
    return query


def as_of_column(view: FeatureView) -> exp.Expr:
    """The as_of of a joined aggregate view, as a projection named after it."""
    return exp.alias_(exp.Column(this=_ident(AS_OF), table=_ident(as_of_alias(view))), as_of_alias(view), quoted=True)


def answered_column(view: FeatureView) -> exp.Expr:
    """Whether the kept tiles answer a joined aggregate view's lookup (NULL before any build)."""
    return exp.Column(this=_ident(ANSWERED), table=_ident(as_of_alias(view)))


def _as_of_query(view: FeatureView, schema: str, now: exp.Expr) -> exp.Select:
    """The view's as_of, and whether its tiles answer for it: a build keeps the tiles of the
    longest window before `floor(T, g)`, so a lookup earlier than that (a clock behind the
    builder's, a backfill asked of the online store) has lost the older tiles it needs."""
    assert view.granularity is not None
    watermark = exp.column("watermark", quoted=True)
    earlier = exp.Least(this=now.copy(), expressions=[watermark])
    kept_from = floor_instant(watermark.copy(), view.granularity.seconds)
    return (
        exp.select(
            exp.alias_(floor_instant(earlier, view.granularity.seconds), AS_OF, quoted=True),
            exp.alias_(exp.GTE(this=now.copy(), expression=kept_from), ANSWERED, quoted=True),
        )
        .from_(table_ref(schema, STATE_TABLE))
        .where(exp.EQ(this=exp.column("view", quoted=True), expression=exp.Literal.string(view.name)))
        # Computed once (OFFSET 0 keeps Postgres from pulling the subquery up): pulled up, as_of and
        # answered are numeric EXTRACT/FLOOR work done again per row and per reference (every feature
        # reads answered). The example's 2-view service, 100 entities: 865 -> 700 us a statement.
        .offset(0)
    )


def floor_instant(moment: exp.Expr, seconds: int) -> exp.Expr:
    """`floor(moment, g)` in Postgres, exact to the microsecond (epoch as numeric, not double)."""
    epoch = exp.cast(exp.Extract(this=exp.var("EPOCH"), expression=moment), "NUMERIC")
    step = exp.Literal.number(seconds)
    floored = exp.Mul(this=exp.Floor(this=exp.Div(this=epoch, expression=step)), expression=step.copy())
    return exp.func("TO_TIMESTAMP", floored)


def _window_values(view: ViewRequest, schema: str, keys_of: exp.Identifier, as_of: exp.Column) -> exp.Select:
    """The requested windows of one entity, from its tiles read once and merged in two steps.

    The tiles of the longest window are grouped into classes, one per window (class k holds the
    tiles inside window k and outside the shorter ones), each state merged per class; a window is
    then the merge of the classes up to its own, over at most one row per window. Merging every
    window straight from the tiles costs one FILTERed aggregate per window and state on every
    tile (120 on each of 720 tiles for 4 aggregations over 1h/1d/7d/30d); this way each tile is
    aggregated once per state (100 entities: 71 -> 49 ms, measured in benchmarks/RESULTS.md).
    """
    requested = _windows_of(view)
    windows = sorted({w.window.seconds: w.window for _, w in requested}.values(), key=lambda w: w.seconds)
    merged = [
        (aggregation, state)
        for aggregation in dict.fromkeys(w.aggregation for _, w in requested)
        if aggregation.function is not AggregateFunction.COUNT_DISTINCT
        for state in TILE_STATES[aggregation.function]
    ]
    window_class = {w.seconds: k for k, w in enumerate(windows)}
    classes = exp.column(_CLASS, quoted=True)
    select = exp.select()
    if merged:
        select = select.from_(_classes(view, schema, keys_of, as_of, windows, merged).subquery(_ident(_CLASSES)))
    for name, requested_window in requested:
        aggregation, window = requested_window.aggregation, requested_window.window
        if aggregation.function is AggregateFunction.COUNT_DISTINCT:
            value = _distinct_count(aggregation, window, view, schema, keys_of, as_of)
        else:
            up_to = exp.LTE(this=classes.copy(), expression=exp.Literal.number(window_class[window.seconds]))
            value = finish(aggregation, up_to, _ident(_CLASSES))
        select = select.select(exp.alias_(value, name, quoted=True))
    return select


def _windows_of(view: ViewRequest) -> list[tuple[str, AggregateWindow]]:
    """Each requested feature's name and the window of an aggregation it is."""
    named = []
    for output in view.features:
        window = output.feature.aggregate
        assert window is not None, "every feature of an aggregate view is one window of one aggregation"
        named.append((output.feature.name, window))
    return named


def _classes(
    view: ViewRequest, schema: str, keys_of: exp.Identifier, as_of: exp.Column, windows: list[Duration],
    merged: list[tuple[Aggregation, TileState]],
) -> exp.Select:  # fmt: skip
    """One row per window class of the entity's tiles in the longest window: the class (0 for the
    shortest window) and each state merged over the class's tiles (no row for a class without tiles)."""
    bucket = exp.Column(this=_ident(BUCKET), table=_ident(_TILE))
    same_keys = [
        exp.EQ(this=exp.Column(this=_ident(k.name), table=_ident(_TILE)),
               expression=exp.Column(this=_ident(k.name), table=keys_of.copy()))
        for k in view.view.join_keys
    ]  # fmt: skip
    in_range = [
        exp.GTE(this=bucket.copy(), expression=_before(as_of, windows[-1])),
        exp.LT(this=bucket.copy(), expression=as_of.copy()),
    ]
    window_class: exp.Expr = exp.Literal.number(len(windows) - 1)  # the longest window's (the range holds it)
    if len(windows) > 1:
        shorter = [
            exp.If(this=exp.GTE(this=bucket.copy(), expression=_before(as_of, w)), true=exp.Literal.number(k))
            for k, w in enumerate(windows[:-1])
        ]
        window_class = exp.Case(ifs=shorter, default=window_class)
    states = [exp.alias_(_merged(a, s, None, _ident(_TILE)), state_column(a, s), quoted=True) for a, s in merged]
    return (
        exp.select(exp.alias_(window_class, _CLASS, quoted=True), *states)
        .from_(table_ref(schema, view.view.name).as_(_TILE, quoted=True))
        .where(exp.and_(*same_keys, *in_range))
        .group_by(exp.column(_CLASS, quoted=True))
    )


def _distinct_count(
    aggregation: Aggregation, window: Duration, view: ViewRequest, schema: str, keys_of: exp.Identifier,
    as_of: exp.Column,
) -> exp.Expr:  # fmt: skip
    """The distinct values of the window's tiles' arrays, counted: distinct values do not merge
    by a state's aggregate, so each window reads its tiles once more (the same key range scan)."""
    tile, value = "_fsql_distinct_tile", "_fsql_distinct_value"
    states = exp.Column(
        this=_ident(state_column(aggregation, TILE_STATES[aggregation.function][0])), table=_ident(tile)
    )
    unnest = exp.Unnest(
        expressions=[states], alias=exp.TableAlias(this=_ident("_fsql_distinct"), columns=[_ident(value)])
    )
    bucket = exp.Column(this=_ident(BUCKET), table=_ident(tile))
    where = [
        *(
            exp.EQ(
                this=exp.Column(this=_ident(k.name), table=_ident(tile)),
                expression=exp.Column(this=_ident(k.name), table=keys_of.copy()),
            )
            for k in view.view.join_keys
        ),
        exp.GTE(this=bucket.copy(), expression=_before(as_of, window)),
        exp.LT(this=bucket.copy(), expression=as_of.copy()),
    ]
    counted = exp.Count(this=exp.Distinct(expressions=[exp.column(value, quoted=True)]))
    query = exp.select(counted).from_(table_ref(schema, view.view.name).as_(tile, quoted=True))
    return query.join(unnest, join_type="CROSS").where(exp.and_(*where)).subquery()


def finish(aggregation: Aggregation, since: exp.Expr, source: exp.Identifier) -> exp.Expr:
    """The value of one window: the states of the rows of `source` that `since` holds for, merged and finished."""
    states = {state.suffix: _merged(aggregation, state, since, source) for state in TILE_STATES[aggregation.function]}
    function = aggregation.function
    if function is AggregateFunction.COUNT:
        return exp.func("COALESCE", exp.cast(states["count"], "BIGINT"), exp.Literal.number(0))
    if function is AggregateFunction.AVG:
        total = exp.cast(states["sum"], "DOUBLE")
        return exp.Div(this=total, expression=exp.func("NULLIF", states["count"], exp.Literal.number(0)))
    if function is AggregateFunction.STDDEV:
        return _stddev(states["count"], states["sum"], states["sumsq"])
    if function is AggregateFunction.LAST:
        return states["last"]
    return next(iter(states.values()))


def _merged(aggregation: Aggregation, state: TileState, since: exp.Expr | None, source: exp.Identifier) -> exp.Expr:
    """One state merged over the rows of `source` that `since` holds for (all of them without it):
    a window's finished value needs integer sums as integers; a class's merge keeps Postgres's
    numeric sum, so that only the window's total must fit a BIGINT."""
    value = exp.Column(this=_ident(state_column(aggregation, state)), table=source.copy())
    if state.merge == "LAST":
        latest = exp.Column(
            this=_ident(state_column(aggregation, TILE_STATES[AggregateFunction.LAST][0])), table=source.copy()
        )
        ordered = exp.Order(this=value, expressions=[exp.Ordered(this=latest, desc=True, nulls_first=False)])
        kept: exp.Expr = exp.Not(this=exp.Is(this=latest.copy(), expression=exp.Null()))
        if since is not None:
            kept = exp.and_(since.copy(), kept)
        aggregated = exp.Filter(this=exp.ArrayAgg(this=ordered), expression=exp.Where(this=kept))
        return exp.Bracket(this=exp.paren(aggregated, copy=False), expressions=[exp.Literal.number(1)], offset=1)
    merged: exp.Expr = exp.func(state.merge, value)
    if since is None:
        return merged
    merged = exp.Filter(this=merged, expression=exp.Where(this=since.copy()))
    if state.merge == "SUM" and state_type(aggregation, state) in (exp.DType.BIGINT, exp.DType.INT):
        return exp.cast(merged, exp.DataType(this=state_type(aggregation, state)))  # Postgres sums ints as numeric
    return merged


def _stddev(count: exp.Expr, total: exp.Expr, squares: exp.Expr) -> exp.Expr:
    """The sample standard deviation from n, sum and sum of squares; NULL below two values."""
    n = exp.cast(count, "DOUBLE")
    mean_square = exp.Div(this=exp.Mul(this=total.copy(), expression=total.copy()), expression=n.copy())
    variance = exp.Div(
        this=exp.paren(exp.Sub(this=squares, expression=mean_square), copy=False),
        expression=exp.paren(exp.Sub(this=n.copy(), expression=exp.Literal.number(1)), copy=False),
    )
    at_least_zero = exp.Greatest(this=variance, expressions=[exp.Literal.number(0)])  # rounding can dip below 0
    return exp.Case(
        ifs=[
            exp.If(
                this=exp.GTE(this=count.copy(), expression=exp.Literal.number(2)), true=exp.func("SQRT", at_least_zero)
            )
        ]
    )


def _before(as_of: exp.Expr, window: Duration) -> exp.Expr:
    # In seconds: a day interval in Postgres follows the session's DST, and durations are fixed lengths.
    return exp.TimestampSub(
        this=as_of.copy(), expression=exp.Literal.number(window.seconds), unit=exp.Var(this="SECOND")
    )


def _ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)

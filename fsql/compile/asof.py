"""The asof strategy (DuckDB): an ASOF LEFT JOIN per feature view, in one of two shapes.

ASOF takes a single inequality, so the ttl is applied to the matched row in the
projection: a ttl bound in ON is a binder error in DuckDB, and in WHERE it would drop
spine rows. With a created timestamp, the match is on the pair (event, created), which
picks the greatest event time and then the greatest created time in one pass (measured
faster than deduplicating on (keys, event) first); a NULL created time ranks lowest.

Chained (few features): `spine ASOF LEFT JOIN v1 ... ASOF LEFT JOIN v2 ...`, the features
projected from each. Each ASOF join partitions and sorts its left input, which carries every
feature joined before it, so the work grows as views squared times features.

Narrow (once the chained joins would carry `narrow_from_carried` feature columns in all):
the spine CTE is MATERIALIZED with `ROW_NUMBER() OVER () AS _fsql_spine_row`, so the spine is
read and numbered once and every reference scans that one result (DuckDB's plan shows one
CTE and a CTE scan per reference; tests/test_asof_narrow.py checks it). Each view gets a CTE
`<view>__match`: the spine ASOF LEFT JOINed to the view's rows, the same ON and the same
ttl CASE, keeping the spine row id and the features, so each sort carries only the spine's
columns DuckDB reads (row id, keys, ts) and the view's own features. The query then LEFT
JOINs each match back to the spine on the row id (one row per spine row id, so duplicated
spine rows stay two rows), and selects `spine.* EXCLUDE (_fsql_spine_row)` first: spine
columns and the order of the output columns are those of the chained shape. Aggregate views
join the spine on (keys, ts) as before and derived features read the projections as before.
Measured (benchmarks/RESULTS.md, Scale): 10 views x 100 features, 17k spine, 8.13 -> 5.69 CPU s;
at 5 views x 5 features (50 carried) the narrow shape cost ~5 % more, at 2 x 100 (100) even.
"""

from __future__ import annotations

from sqlglot import exp

from fsql.compile.context import (
    CREATED_TS,
    EVENT_TS,
    RESERVED_PREFIX,
    SPINE_ALIAS,
    CompileContext,
    column,
    ident,
    rows_cte_name,
    spine_ts_of,
)
from fsql.compile.request import ViewRequest
from fsql.compile.strategy import PointInTimeStrategy


def _timestamptz(value: str) -> exp.Expression:
    return exp.cast(exp.Literal.string(value), exp.DataType.build("TIMESTAMPTZ"))


SPINE_ROW = f"{RESERVED_PREFIX}spine_row"


def carried_features(ctx: CompileContext) -> int:
    """What the chained shape sorts beyond the spine: for each ASOF join, the features joined before it."""
    carried, joined = 0, 0
    for view in ctx.request.views:
        if not view.view.is_aggregate:
            carried += joined
        joined += len(view.features)
    return carried


def narrow(ctx: CompileContext) -> bool:
    """Whether each view is matched to the bare spine and stitched back by row id (see the module)."""
    return carried_features(ctx) >= AsofStrategy.narrow_from_carried


class AsofStrategy(PointInTimeStrategy):
    name = "asof"
    # The narrow shape once the chained ASOF joins would carry this many feature columns in all
    # (10 views x 5 features carry 225; 5 x 5 carry 50): measured in benchmarks/RESULTS.md, Scale.
    narrow_from_carried = 100

    def prepare(self, query: exp.Select, ctx: CompileContext) -> exp.Select:
        """Number the spine's rows once, in a MATERIALIZED CTE, so every scan of it sees the same ids."""
        if not narrow(ctx):
            return query
        cte = next(c for c in query.args["with_"].expressions if c.alias == SPINE_ALIAS)
        cte.set("materialized", True)
        row_id = exp.Window(this=exp.RowNumber(), over="OVER")
        cte.this.select(exp.alias_(row_id, SPINE_ROW, quoted=True), copy=False)
        star = exp.Column(this=exp.Star(except_=[column(SPINE_ROW)]), table=ident(SPINE_ALIAS))
        query.set("expressions", [star if p.is_star else p for p in query.expressions])
        return query

    def join_view(self, query: exp.Select, view: ViewRequest, ctx: CompileContext) -> exp.Select:
        alias = view.view.name
        ttl = self.within_ttl(column(EVENT_TS, alias), view, ctx)
        if not narrow(ctx):
            query.append("joins", self._asof_join(view, ctx))
            return query.select(*self.feature_columns(alias, view, ttl), copy=False)
        match = f"{alias}__match"
        matched = (
            exp.select(column(SPINE_ROW, SPINE_ALIAS), *self.feature_columns(alias, view, ttl))
            .from_(ident(SPINE_ALIAS))
            .join(self._asof_join(view, ctx))
        )
        query.with_(ident(match), as_=matched, copy=False)
        query.args["with_"].expressions[-1].add_comments(
            [f" {alias}: each spine row's latest row at or before its timestamp, per key, by spine row id "]
        )
        stitch = exp.Join(
            this=exp.Table(this=ident(match), alias=exp.TableAlias(this=ident(alias))),
            side="LEFT",
            on=exp.EQ(this=column(SPINE_ROW, alias), expression=column(SPINE_ROW, SPINE_ALIAS)),
        )
        stitch.add_comments([f" {alias}: its features, by spine row id "])
        query.append("joins", stitch)
        return query.select(*self.feature_columns(alias, view, None), copy=False)

    def _asof_join(self, view: ViewRequest, ctx: CompileContext) -> exp.Join:
        alias = view.view.name
        keys = [exp.EQ(this=column(k.name, SPINE_ALIAS), expression=column(k.name, alias)) for k in view.view.join_keys]
        condition = exp.and_(*keys, self._not_after_spine(alias, view, ctx))
        join = exp.Join(
            this=exp.Table(this=ident(rows_cte_name(view)), alias=exp.TableAlias(this=ident(alias))),
            method="ASOF",
            side="LEFT",
            on=condition,
        )
        join.add_comments([f" {alias}: latest row at or before the spine's timestamp, per key "])
        return join

    @staticmethod
    def _not_after_spine(alias: str, view: ViewRequest, ctx: CompileContext) -> exp.Expression:
        if view.source.created_timestamp is None:
            return exp.GTE(this=spine_ts_of(ctx), expression=column(EVENT_TS, alias))
        # {ts, +inf} >= {event, created}: among rows at or before ts, the greatest (event, created).
        # A struct holding a NULL still compares, so a NULL spine ts must make the struct NULL.
        spine_struct = exp.Struct(
            expressions=[
                exp.PropertyEQ(this=exp.to_identifier("e"), expression=spine_ts_of(ctx)),
                exp.PropertyEQ(this=exp.to_identifier("c"), expression=_timestamptz("infinity")),
            ]
        )
        has_ts = exp.Not(this=exp.Is(this=spine_ts_of(ctx), expression=exp.Null()))
        spine_side = exp.Case(ifs=[exp.If(this=has_ts, true=spine_struct)])
        created = exp.func("COALESCE", column(CREATED_TS, alias), _timestamptz("-infinity"))
        view_side = exp.Struct(
            expressions=[
                exp.PropertyEQ(this=exp.to_identifier("e"), expression=column(EVENT_TS, alias)),
                exp.PropertyEQ(this=exp.to_identifier("c"), expression=created),
            ]
        )
        return exp.GTE(this=spine_side, expression=view_side)

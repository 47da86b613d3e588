"""The asof strategy (DuckDB): one ASOF LEFT JOIN per feature view.

ASOF takes a single inequality, so the ttl is applied to the matched row in the
projection: a ttl bound in ON is a binder error in DuckDB, and in WHERE it would drop
spine rows. With a created timestamp, the match is on the pair (event, created), which
picks the greatest event time and then the greatest created time in one pass (measured
faster than deduplicating on (keys, event) first); a NULL created time ranks lowest.
"""

from __future__ import annotations

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


def _timestamptz(value: str) -> exp.Expression:
    return exp.cast(exp.Literal.string(value), exp.DataType.build("TIMESTAMPTZ"))


class AsofStrategy(PointInTimeStrategy):
    name = "asof"

    def join_view(self, query: exp.Select, view: ViewRequest, ctx: CompileContext) -> exp.Select:
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
        query.append("joins", join)
        ttl = self.within_ttl(column(EVENT_TS, alias), view, ctx)
        return query.select(*self.feature_columns(alias, view, ttl), copy=False)

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

"""The lateral strategy (Postgres): LEFT JOIN LATERAL (... ORDER BY e DESC, c DESC LIMIT 1) ON TRUE.

Written so that a btree on the source's (keys, event) serves each lookup with a backward
index scan that stops at the first row: the event time sorts DESC NULLS FIRST (it is
never NULL here, and NULLS LAST, sqlglot's default rendering for Postgres, forces a sort
per spine row). The created time sorts DESC NULLS LAST because a NULL created time ranks
lowest; an index on (keys, event, created NULLS FIRST) serves that order too.
"""

from __future__ import annotations

from sqlglot import exp

from fsql.compile.context import CREATED_TS, EVENT_TS, SPINE_ALIAS, CompileContext, column, ident, rows_cte_name
from fsql.compile.request import ViewRequest
from fsql.compile.strategy import PointInTimeStrategy
from fsql.spec import SourceKind

_CANDIDATE = "candidate"


class LateralStrategy(PointInTimeStrategy):
    name = "lateral"

    def join_view(self, query: exp.Select, view: ViewRequest, ctx: CompileContext) -> exp.Select:
        alias = view.view.name
        latest = exp.Lateral(this=self._latest_candidate(view, ctx).subquery(), alias=exp.TableAlias(this=ident(alias)))
        join = exp.Join(this=latest, side="LEFT", on=exp.true())
        join.add_comments([f" {alias}: latest row at or before the spine's timestamp, per key "])
        query.append("joins", join)
        return query.select(*self.feature_columns(alias, view, None), copy=False)

    def _latest_candidate(self, view: ViewRequest, ctx: CompileContext) -> exp.Select:
        keys = [
            exp.EQ(this=column(k.name, _CANDIDATE), expression=column(k.name, SPINE_ALIAS)) for k in view.view.join_keys
        ]
        event = column(EVENT_TS, _CANDIDATE)
        conditions: list[exp.Expression] = [
            *keys,
            exp.LTE(this=event, expression=column(ctx.spine.timestamp, SPINE_ALIAS)),
        ]
        within_ttl = self.within_ttl(event.copy(), view, ctx)
        if within_ttl is not None:
            conditions.append(within_ttl)
        order = [exp.Ordered(this=event.copy(), desc=True, nulls_first=True)]
        if view.source.created_timestamp is not None:
            order.append(exp.Ordered(this=column(CREATED_TS, _CANDIDATE), desc=True, nulls_first=False))
        return (
            exp.select(*(column(f.output_name, _CANDIDATE) for f in view.features))
            .from_(exp.Table(this=ident(rows_cte_name(view)), alias=exp.TableAlias(this=ident(_CANDIDATE))))
            .where(exp.and_(*conditions))
            .order_by(*order)
            .limit(1)
        )

    def supporting_index(self, view: ViewRequest, dialect: str) -> str | None:
        """CREATE INDEX IF NOT EXISTS on (keys, event, created NULLS FIRST) of a table source.

        A backward scan of it yields event DESC, created DESC NULLS LAST: the join's order.
        Its (keys, event) prefix also serves the range scans of an aggregate view's windows.
        """
        source = view.source
        if source.kind is not SourceKind.TABLE:
            return None
        columns = [exp.Ordered(this=column(k.name)) for k in view.view.join_keys]
        columns.append(exp.Ordered(this=column(source.timestamp)))
        if source.created_timestamp:
            columns.append(exp.Ordered(this=column(source.created_timestamp), nulls_first=True))
        table = exp.to_table(source.location, dialect=dialect)
        index = exp.Index(
            this=ident(f"{table.name}__fsql_pit"),
            table=table,
            params=exp.IndexParameters(columns=columns),
        )
        return exp.Create(this=index, kind="INDEX", exists=True).sql(dialect)

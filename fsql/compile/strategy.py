"""Point-in-time join strategies, one per family of dialects, chosen in one place.

sqlglot passes ASOF and LATERAL joins through to dialects that lack them, so the choice
is ours: `STRATEGY_BY_DIALECT` is the only place a dialect picks its join.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from sqlglot import exp

from fsql.compile.context import CompileContext, column, spine_ts_of
from fsql.compile.request import OutputFeature, ViewRequest
from fsql.errors import CompileError


class PointInTimeStrategy(ABC):
    """Adds one feature view's point-in-time join, and its feature columns, to a query."""

    name: ClassVar[str]
    # Whether feature scans are bounded by the spine's time range, which the caller may measure.
    bounds_scans: ClassVar[bool] = False

    def prepare(self, query: exp.Select, ctx: CompileContext) -> exp.Select:
        """Shape the spine for this strategy's joins, before the first view is joined (default: as is)."""
        return query

    @abstractmethod
    def join_view(self, query: exp.Select, view: ViewRequest, ctx: CompileContext) -> exp.Select:
        """Return `query` with the view joined and its features projected."""

    def supporting_index(self, view: ViewRequest, dialect: str) -> str | None:
        """DDL for an index on the view's source that serves this strategy, if it has one."""
        return None

    @staticmethod
    def within_ttl(event_ts: exp.Expression, view: ViewRequest, ctx: CompileContext) -> exp.Expression | None:
        """`event_ts >= spine.ts - ttl` (inclusive), or None when the view has no ttl."""
        ttl = view.view.ttl
        if ttl is None:
            return None
        lower = exp.TimestampSub(
            this=spine_ts_of(ctx), expression=exp.Literal.number(ttl.sql_amount), unit=exp.Var(this=ttl.sql_unit)
        )
        return exp.GTE(this=event_ts, expression=lower)

    @staticmethod
    def feature_columns(table: str, view: ViewRequest, condition: exp.Expression | None) -> list[exp.Expr]:
        """The view's features read from `table`, NULL where `condition` does not hold."""

        def value(feature: OutputFeature) -> exp.Expr:
            read = column(feature.output_name, table)
            return exp.Case(ifs=[exp.If(this=condition.copy(), true=read)]) if condition is not None else read

        return [exp.alias_(value(f), f.output_name, quoted=True) for f in view.features]


def strategy_for(dialect: str) -> PointInTimeStrategy:
    """The point-in-time strategy of a dialect.

    Raises:
        CompileError: fsql has no strategy for the dialect yet.
    """
    from fsql.compile.asof import AsofStrategy
    from fsql.compile.lateral import LateralStrategy
    from fsql.compile.window import WindowStrategy

    strategies: dict[str, type[PointInTimeStrategy]] = {
        "duckdb": AsofStrategy,
        "postgres": LateralStrategy,
        "bigquery": WindowStrategy,
        "spark": WindowStrategy,
        "databricks": WindowStrategy,
    }
    if dialect not in strategies:
        raise CompileError(
            f"no point-in-time strategy for dialect '{dialect}' yet; supported: {', '.join(sorted(strategies))}"
        )
    return strategies[dialect]()


# The file formats each dialect's engine scans in SQL (DuckDB read_parquet/read_csv, Spark
# parquet.`path`). A file source in another format is read from a table of its name.
_FILE_FORMATS = {
    "duckdb": frozenset({"parquet", "csv"}),
    "spark": frozenset({"parquet"}),
    "databricks": frozenset({"parquet"}),
}


def readable_file_formats(dialect: str) -> frozenset[str]:
    return _FILE_FORMATS.get(dialect, frozenset())

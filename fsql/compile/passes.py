"""The training query, built by an ordered tuple of passes over one sqlglot SELECT.

Each pass takes `(query, ctx)` and returns the query; `PASSES` lists their order. The
strategy of the dialect decides only how each view is joined.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sqlglot import exp

from fsql.checks import parse_feature_expression
from fsql.compile.aggregate_join import join_aggregates
from fsql.compile.aggregates import aggregate_rows
from fsql.compile.context import CREATED_TS, EVENT_TS, SPINE_ALIAS, CompileContext, column, ident, rows_cte_name
from fsql.compile.derived import add_derived
from fsql.compile.paths import anchor_file_paths
from fsql.compile.request import ViewRequest
from fsql.compile.strategy import readable_file_formats
from fsql.definitions import source_relation
from fsql.spec import Feature, Source, SourceKind

Pass = Callable[[exp.Select, CompileContext], exp.Select]


def add_spine(query: exp.Select, ctx: CompileContext) -> exp.Select:
    """Start from the spine: every spine row, with all its columns, gives one output row.

    Example:
        >>> from fsql.compile import example_context
        >>> add_spine(exp.Select(), example_context()).sql("duckdb", comments=False)
        'WITH "spine" AS (SELECT * FROM labels) SELECT "spine".* FROM "spine"'
    """
    spine = exp.select("*").from_(ctx.spine.relation.copy())
    query = query.with_(ident(SPINE_ALIAS), as_=spine, copy=False)
    query.args["with_"].expressions[-1].add_comments([" spine: the rows asked for, each kept once, labels included "])
    return query.select(exp.Column(this=exp.Star(), table=ident(SPINE_ALIAS)), copy=False).from_(
        ident(SPINE_ALIAS), copy=False
    )


def add_feature_rows(query: exp.Select, ctx: CompileContext) -> exp.Select:
    """Add one CTE per view: keys, event/created time and typed features, from its source.

    Rows whose keys or event time are NULL can never match, so they are dropped here.

    Example:
        >>> from fsql.compile import example_context
        >>> q = add_feature_rows(exp.select("1"), example_context())
        >>> q.args["with_"].expressions[0].alias
        'driver_stats__rows'
    """
    for view in ctx.request.views:
        cte = query.with_(ident(rows_cte_name(view)), as_=feature_rows(view, ctx.source_dialect), copy=False)
        cte.args["with_"].expressions[-1].add_comments(
            [f" {view.view.name}: feature rows from source '{view.source.name}' "]
        )
    return query


def feature_rows(view: ViewRequest, source_dialect: str) -> exp.Select:
    """One view's rows: its keys, event (and created) time and typed features, from its source."""
    if view.view.is_aggregate:
        return aggregate_rows(view, source_dialect)
    source = view.source
    keys = [column(k.name) for k in view.view.join_keys]
    projections: list[exp.Expr] = [*keys, exp.alias_(column(source.timestamp), EVENT_TS, quoted=True)]
    if source.created_timestamp:
        projections.append(exp.alias_(column(source.created_timestamp), CREATED_TS, quoted=True))
    for output in view.features:
        projections.append(
            exp.alias_(_typed_feature(output.feature, view, source_dialect), output.output_name, quoted=True)
        )
    not_null = [exp.Not(this=exp.Is(this=c.copy(), expression=exp.Null())) for c in [*keys, column(source.timestamp)]]
    relation = source_relation(source, source_dialect)
    return exp.select(*projections).from_(relation).where(exp.and_(*not_null))


def _typed_feature(feature: Feature, view: ViewRequest, source_dialect: str) -> exp.Expr:
    expression = parse_feature_expression(feature, view.view, source_dialect)
    for read in expression.find_all(exp.Column):
        read.this.set("quoted", True)
    if isinstance(expression, exp.Column):
        source_column = view.source.column(expression.name)
        if source_column is not None and source_column.type == feature.type:
            return expression
    return exp.cast(expression, exp.DataType(this=feature.type))


def join_point_in_time(query: exp.Select, ctx: CompileContext) -> exp.Select:
    """Join every view to the spine: the dialect's point-in-time strategy, or its windowed aggregates."""
    query = ctx.strategy.prepare(query, ctx)
    for view in ctx.request.views:
        join = join_aggregates if view.view.is_aggregate else ctx.strategy.join_view
        query = join(query, view, ctx)
    return query


def files_as_tables(query: exp.Select, ctx: CompileContext) -> exp.Select:
    """Where the engine cannot scan a file source's format, it is read from a table named after it."""
    replace_file_scans(query, ctx.sources, readable_file_formats(ctx.dialect))
    return query


def replace_file_scans(
    query: exp.Expression, sources: Mapping[str, Source], readable: frozenset[str] = frozenset()
) -> exp.Expression:
    """Replace each scan of a file source's path (also inside SQL sources) by a table of its name.

    Example:
        >>> from fsql.compile import example_definitions
        >>> from dataclasses import replace
        >>> from fsql.spec import SourceKind
        >>> source = replace(example_definitions().sources["stats"], kind=SourceKind.FILE, location="data/s.parquet")
        >>> scan = exp.ReadParquet(expressions=[exp.Literal.string("data/s.parquet")])
        >>> q = exp.select("*").from_(exp.Table(this=scan))
        >>> replace_file_scans(q, {"stats": source}).sql("bigquery")
        'SELECT * FROM `stats`'
    """
    by_path = {
        s.location: s.name for s in sources.values() if s.kind is SourceKind.FILE and s.file_format not in readable
    }
    for scan in list(query.find_all(exp.ReadParquet, exp.ReadCSV)):
        literal = scan.this if isinstance(scan, exp.ReadCSV) else (scan.expressions or [None])[0]
        name = by_path.get(literal.this) if isinstance(literal, exp.Literal) else None
        table = scan.parent
        if name is not None and isinstance(table, exp.Table):
            table.set("this", ident(name))
    return query


def anchor_paths(query: exp.Select, ctx: CompileContext) -> exp.Select:
    """Make relative file paths absolute under the project root, when asked to."""
    if ctx.file_root is not None:
        anchor_file_paths(query, ctx.file_root)
    return query


PASSES: tuple[Pass, ...] = (
    add_spine,
    add_feature_rows,
    files_as_tables,
    join_point_in_time,
    add_derived,
    anchor_paths,
)


def run_passes(ctx: CompileContext) -> exp.Select:
    query = exp.Select()
    for compile_pass in PASSES:
        query = compile_pass(query, ctx)
    return query

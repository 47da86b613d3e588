"""Derived features in a query: the checked AST of each, with its reads replaced by what the query has.

The same function serves the training query (inputs are the point-in-time values of the same
SELECT, request fields are spine columns) and the online lookup (inputs are the online values,
request fields are bound parameters), so the two compute one expression.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from fsql.compile.context import SPINE_ALIAS, CompileContext, column
from fsql.compile.request import DerivedRequest, FeatureRequest
from fsql.derived import DerivedFeature, RequestField
from fsql.derived_language import INPUT_TABLE, REQUEST_TABLE, SECONDS_BETWEEN


def _epoch_micros_postgres(instant: exp.Expr) -> exp.Expr:
    # EXTRACT(EPOCH ...) is an exact numeric on Postgres 14+; Postgres has no UNIX_MICROS.
    seconds = exp.Extract(this=exp.var("EPOCH"), expression=instant)
    return exp.cast(exp.Mul(this=seconds, expression=exp.Literal.number(1000000)), exp.DataType(this=exp.DType.BIGINT))


# Microseconds since the epoch of a TIMESTAMPTZ, per dialect (sqlglot's UNIX_MICROS elsewhere).
_EPOCH_MICROS: dict[str, Callable[[exp.Expr], exp.Expr]] = {"postgres": _epoch_micros_postgres}


def _epoch_micros(instant: exp.Expr, dialect: str) -> exp.Expr:
    instant = exp.cast(instant, exp.DataType(this=exp.DType.TIMESTAMPTZ))
    build = _EPOCH_MICROS.get(dialect)
    return build(instant) if build else exp.UnixMicros(this=instant)


def derived_value(
    feature: DerivedFeature,
    *,
    read_input: Callable[[str], exp.Expr],
    read_request: Callable[[RequestField], exp.Expr],
    request_fields: dict[str, RequestField],
    dialect: str,
) -> exp.Expr:
    """The feature's expression over what the query reads, cast to the feature's type.

    Example:
        >>> import sqlglot
        >>> from fsql.derived import rewrite
        >>> f = DerivedFeature("x", exp.DType.DOUBLE, rewrite(sqlglot.parse_one('"_fsql_input"."v:a" / 2')), "a / 2")
        >>> derived_value(f, read_input=lambda ref: exp.column("a"), read_request=None, request_fields={},
        ...               dialect="duckdb").sql("duckdb")
        'CAST(CAST(a AS DOUBLE) / NULLIF(CAST(2 AS DOUBLE), 0) AS DOUBLE)'
    """

    def replace(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and node.table == INPUT_TABLE:
            return read_input(node.name)
        if isinstance(node, exp.Column) and node.table == REQUEST_TABLE:
            return read_request(request_fields[node.name])
        return node

    value = feature.expression.transform(replace)
    for call in list(value.find_all(exp.Anonymous)):
        if call.name.lower() == SECONDS_BETWEEN:
            start, end = call.expressions
            micros = exp.Sub(this=_epoch_micros(end, dialect), expression=_epoch_micros(start, dialect))
            seconds = exp.Div(
                this=exp.cast(exp.paren(micros), exp.DataType(this=exp.DType.DOUBLE)),
                expression=exp.Literal.number(1000000),
            )
            replaced = exp.paren(seconds)
            if call is value:
                value = replaced
            else:
                call.replace(replaced)
    return exp.cast(value, exp.DataType(this=feature.type))


def request_field_map(derived: DerivedRequest) -> dict[str, RequestField]:
    return {f.name: f for f in derived.view.request}


def project_derived(
    query: exp.Select,
    request: FeatureRequest,
    *,
    read_request: Callable[[RequestField], exp.Expr],
    dialect: str,
    insert_at: int | None = None,
) -> exp.Select:
    """Add each derived feature as a projection over the query's own projections, then drop the hidden inputs.

    `insert_at`: the position of the first derived projection (default: after the last one).
    """
    if not request.derived:
        return query
    # A projection is `expr AS name`, or a bare column (the online lookup's outer SELECT).
    by_alias = {s.alias_or_name: s.this if isinstance(s, exp.Alias) else s for s in query.expressions}
    values: list[exp.Expr] = []
    for derived in request.derived:
        read_as = dict(derived.inputs)
        for output in derived.features:
            value = derived_value(
                output.feature,
                read_input=lambda ref, read_as=read_as: by_alias[read_as[ref]].copy(),  # type: ignore[misc]
                read_request=read_request,
                request_fields=request_field_map(derived),
                dialect=dialect,
            )
            values.append(exp.alias_(value, output.output_name, quoted=True))
    hidden = {f.output_name for v in request.views for f in v.features if f.hidden}
    kept = [s for s in query.expressions if s.alias_or_name not in hidden]
    dropped_before = sum(1 for s in query.expressions[: insert_at or 0] if s.alias_or_name in hidden)
    at = len(kept) if insert_at is None else insert_at - dropped_before
    query.set("expressions", [*kept[:at], *values, *kept[at:]])
    return query


def add_derived(query: exp.Select, ctx: CompileContext) -> exp.Select:
    """Compute the derived features over the point-in-time values; request fields are spine columns.

    A request field is the spine's column of the same name, cast to the field's type.
    """
    return project_derived(
        query,
        ctx.request,
        read_request=lambda f: exp.cast(column(f.name, SPINE_ALIAS), exp.DataType(this=f.type)),
        dialect=ctx.dialect,
    )

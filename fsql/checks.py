"""SQL in definitions, parsed and checked: source queries and feature expressions.

Source SQL and feature expressions are parsed by sqlglot in the project's dialect, and
every column a feature reads must exist in its source, so that a misspelled column is a
file:line:col error at compile time rather than a warehouse error at run time. Positions
come from sqlglot's token metadata, mapped back into the YAML (or template) file by
`Where.at`; sqlglot's message text is shown, never parsed.
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import TokenType

from fsql.errors import DefinitionError, did_you_mean
from fsql.spec import Column, Definitions, Feature, FeatureView, Source
from fsql.yamlfile import Where

# Row-level expressions only: one feature row gives one value.
_NOT_ROW_LEVEL = (exp.AggFunc, exp.Window, exp.Query)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_definitions(definitions: Definitions) -> None:
    """Raise a DefinitionError for the first feature expression that cannot work."""
    for view in definitions.feature_views.values():
        source = definitions.sources[view.source]
        for feature in view.features:
            if feature.aggregate is not None:
                continue  # checked as its aggregation, when read (fsql.aggregations)
            expression = parse_feature_expression(feature, view, definitions.dialect)
            _check_columns(expression, feature, view, source)


def parse_source_query(sql: str, where: Where, what: str, dialect: str, *, raw: str | None = None) -> exp.Query:
    """Parse a source's SQL, rendered from `raw` whose text starts at `where`, as exactly one query."""
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except (ParseError, TokenError) as exc:
        raise parse_error(exc, where, f"{what}: SQL does not parse", rendered=(sql, raw)) from None
    if len(statements) != 1:
        raise where.error(
            f"{what}: SQL must be one SELECT query, but it holds {len(statements)} statements: "
            f"remove every ';' and what follows it"
        )
    if not isinstance(statements[0], exp.Query):
        raise where.error(f"{what}: SQL must be a SELECT query, not {statements[0].key.upper()}")
    return statements[0]


def query_columns(query: exp.Query, where: Where, what: str) -> tuple[Column, ...]:
    """The named output columns of a query, types unknown; () if it selects `*`."""
    columns = []
    for projection in query.selects:
        if isinstance(projection, exp.Star) or (
            isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star)
        ):
            return ()  # unknown; checks are skipped unless 'columns' is declared
        if not isinstance(projection, exp.Alias | exp.Column):
            raise where.error(f"{what}: SQL output column '{projection.sql()}' has no name: add 'AS name'")
        columns.append(Column(projection.alias_or_name, None))
    return tuple(columns)


def parse_error(
    exc: ParseError | TokenError, where: Where, what: str, *, rendered: tuple[str, str | None] = ("", None)
) -> DefinitionError:
    """A parse error of SQL whose text starts at `where`, placed at the token sqlglot stopped at.

    `rendered` is (the SQL, the template it was rendered from): a line that rendering
    changed is placed by line only, and shown as rendered.
    """
    if isinstance(exc, TokenError):
        return where.error(f"{what} ({exc.__cause__ or exc}): check that every quote is closed")
    detail = exc.errors[0] if exc.errors else {}
    token = detail.get("highlight") or ""
    line, col = detail.get("line"), detail.get("col")
    place, shown = _place_rendered(where, line, col - len(token) + 1 if col and token else col, *rendered)
    near = f" at '{token}'" if token else ""
    return place.error(f"{what}: {detail.get('description', exc)}{near}{shown}")


def _place_rendered(where: Where, line: int | None, col: int | None, sql: str, raw: str | None) -> tuple[Where, str]:
    """Where (line, col) of rendered SQL is in its template, and a note showing the rendered line if needed."""
    sql_lines, raw_lines = sql.splitlines(), (raw or "").splitlines()
    if raw is None or sql == raw or line is None or line > len(sql_lines):
        return where.at(line, col), ""
    rendered = sql_lines[line - 1].strip()
    if len(sql_lines) != len(raw_lines):
        return where, f" (line {line} of the rendered SQL: '{rendered}')"
    if sql_lines[line - 1] != raw_lines[line - 1]:
        return where.at(line), f" (the line renders as '{rendered}')"
    return where.at(line, col), ""


def parse_feature_expression(feature: Feature, view: FeatureView, dialect: str, *, what: str | None = None) -> exp.Expr:
    """Parse a feature's SQL expression, refusing anything that is not row-level.

    A feature without `expr` is its column, quoted, whatever its name:

    Example:
        >>> from fsql.compile import example_definitions
        >>> view = example_definitions().feature_views["driver_stats"]
        >>> parse_feature_expression(Feature("from", exp.DType.TEXT, "from", is_column=True), view, "duckdb").sql()
        '"from"'
    """
    if feature.is_column:
        return exp.Column(this=exp.to_identifier(feature.name, quoted=True))
    what = what or f"feature view '{view.name}' feature '{feature.name}'"
    try:
        expression = sqlglot.parse_one(feature.expression, read=dialect)
    except (ParseError, TokenError) as exc:
        hint = keyword_hint(feature, dialect, what)
        raise hint or parse_error(exc, feature.where, f"{what}: expression does not parse") from None
    if isinstance(expression, exp.Query) or not _is_expression(expression):
        raise keyword_hint(feature, dialect, what) or feature.where.error(
            f"{what}: 'expr' must be one SQL expression over the source's columns, not {expression.key.upper()}; "
            f"compute it in the source's SQL and name the result here"
        )
    bad = expression.find(*_NOT_ROW_LEVEL)
    if bad is not None:
        hint = keyword_hint(feature, dialect, what) if isinstance(bad, exp.Query) else None
        raise hint or feature.where.error(
            f"{what}: '{bad.sql(dialect)}' is not row-level; compute aggregates and windows in the "
            f"source's SQL and name the result here"
        )
    return expression


def keyword_hint(feature: Feature, dialect: str, what: str) -> DefinitionError | None:
    """The error for an expression that fails only because a column has a keyword's name
    (`from`, `select`): found by quoting each keyword in turn until the expression parses."""
    text = feature.expression
    try:
        tokens = Dialect.get_or_raise(dialect).tokenize(text)
    except TokenError:
        return None
    for token in tokens:
        written = text[token.start : token.end + 1]  # a string's token text lacks its quotes
        if token.token_type in (TokenType.VAR, TokenType.IDENTIFIER) or not _WORD.fullmatch(written):
            continue
        quoted = exp.to_identifier(written, quoted=True).sql(dialect)
        fixed = text[: token.start] + quoted + text[token.end + 1 :]
        if _parses_as_expression(fixed, dialect):
            return feature.where.at(token.line, token.col - len(written) + 1).error(
                f"{what}: cannot parse the expression '{text}': '{written}' is an SQL keyword; to read the "
                f"column '{written}', quote it as {quoted}, e.g. expr: {_yaml_scalar(fixed)}"
            )
    return None


def _yaml_scalar(text: str) -> str:
    """`text` as a YAML value: in single quotes when YAML would read a leading quote itself."""
    return "'" + text.replace("'", "''") + "'" if text.startswith(('"', "'", "`")) else text


def _parses_as_expression(text: str, dialect: str) -> bool:
    try:
        expression = sqlglot.parse_one(text, read=dialect)
    except (ParseError, TokenError):
        return False
    return not isinstance(expression, exp.Query) and _is_expression(expression) and not expression.find(*_NOT_ROW_LEVEL)


def _is_expression(node: exp.Expr) -> bool:
    return not isinstance(node, exp.DDL | exp.DML | exp.Command | exp.Set | exp.Use)


def _check_columns(expression: exp.Expr, feature: Feature, view: FeatureView, source: Source) -> None:
    check_expression_columns(expression, feature.where, f"feature view '{view.name}' feature '{feature.name}'", source)


def check_expression_columns(expression: exp.Expr, where: Where, what: str, source: Source) -> None:
    """Refuse a column the source does not have (when its columns are known), at its token."""
    known = [c.name for c in source.columns]
    if not known:
        return
    for column in expression.find_all(exp.Column):
        if column.name in known:
            continue
        raise _where_token(where, column.this).error(
            f"{what}: unknown column '{column.name}' "
            f"in source '{source.name}'.{did_you_mean(column.name, known) or f' Its columns: {_listed(known)}.'}"
        )


def _where_token(start: Where, node: exp.Expression) -> Where:
    """Where a parsed token (an identifier) starts, from sqlglot's line, end column and offsets."""
    meta = node.meta
    col = meta.get("col")
    if col is not None and meta.get("start") is not None and meta.get("end") is not None:
        col -= meta["end"] - meta["start"]
    return start.at(meta.get("line"), col)


def _listed(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return f"{shown}, ..." if len(names) > limit else shown

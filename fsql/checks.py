"""Checks that need the whole model: feature expressions against their source's columns.

Feature expressions are parsed by sqlglot in the project's dialect, and every column they
read must exist in the source, so that a misspelled column is a file:line:col error at
compile time rather than a warehouse error at run time.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from fsql.datatypes import TIMESTAMP_TYPES
from fsql.errors import did_you_mean
from fsql.spec import Definitions, Feature, FeatureView, Source
from fsql.yamlfile import Where

# Row-level expressions only: one feature row gives one value.
_NOT_ROW_LEVEL = (exp.AggFunc, exp.Window, exp.Query)


def check_definitions(definitions: Definitions) -> None:
    """Raise a DefinitionError for the first definition that cannot work."""
    for source in definitions.sources.values():
        _check_source_columns(source)
    for view in definitions.feature_views.values():
        _check_view(view, definitions.sources[view.source], definitions.dialect)


def _check_source_columns(source: Source) -> None:
    if not source.columns:
        return
    for role, name in (("timestamp", source.timestamp), ("created_timestamp", source.created_timestamp)):
        if name is None:
            continue
        column = source.column(name)
        if column is None:
            raise source.where.error(
                f"source '{source.name}': its {role} column '{name}' is not among its columns."
                f"{did_you_mean(name, [c.name for c in source.columns])}"
            )
        if column.type is not None and column.type not in TIMESTAMP_TYPES:
            raise source.where.error(
                f"source '{source.name}': its {role} column '{name}' must be a timestamp, not "
                f"{column.type.value.lower()}"
            )


def _check_view(view: FeatureView, source: Source, dialect: str) -> None:
    seen: dict[str, Feature] = {}
    for feature in view.features:
        if feature.name in seen:
            raise feature.where.error(f"feature view '{view.name}': feature '{feature.name}' is defined twice")
        seen[feature.name] = feature
        expression = parse_feature_expression(feature, view, dialect)
        _check_columns(expression, feature, view, source)
    known = {c.name for c in source.columns}
    for key in view.join_keys:
        if known and key.name not in known:
            raise view.where.error(
                f"feature view '{view.name}': join key '{key.name}' is not a column of source "
                f"'{source.name}'.{did_you_mean(key.name, known)} Rename it in the source (e.g. in its SQL)."
            )


def parse_feature_expression(feature: Feature, view: FeatureView, dialect: str) -> exp.Expression:
    """Parse a feature's SQL expression, refusing anything that is not row-level."""
    what = f"feature view '{view.name}' feature '{feature.name}'"
    try:
        expression = sqlglot.parse_one(feature.expression, read=dialect)
    except ParseError as exc:
        detail = exc.errors[0] if exc.errors else {}
        raise _at(feature.where, detail.get("line"), detail.get("col")).error(
            f"{what}: expression does not parse ({detail.get('description', exc)})"
        ) from None
    if isinstance(expression, exp.Query) or not _is_expression(expression):
        raise feature.where.error(f"{what}: 'expr' must be one SQL expression over the source's columns")
    bad = expression.find(*_NOT_ROW_LEVEL)
    if bad is not None:
        raise feature.where.error(
            f"{what}: '{bad.sql(dialect)}' is not row-level; compute aggregates and windows in the "
            f"source's SQL and name the result here"
        )
    return expression


def _is_expression(node: exp.Expression) -> bool:
    return not isinstance(node, exp.DDL | exp.DML | exp.Command | exp.Set | exp.Use)


def _check_columns(expression: exp.Expression, feature: Feature, view: FeatureView, source: Source) -> None:
    known = {c.name for c in source.columns}
    if not known:
        return
    for column in expression.find_all(exp.Column):
        if column.name in known:
            continue
        meta = column.this.meta
        col = meta.get("col")
        where = _at(feature.where, meta.get("line"), col - len(column.name) + 1 if col else None)
        raise where.error(
            f"feature view '{view.name}' feature '{feature.name}': unknown column '{column.name}' "
            f"in source '{source.name}'.{did_you_mean(column.name, known)}"
        )


def _at(start: Where, line: int | None, col: int | None) -> Where:
    """The position of (line, col) of an expression whose text starts at `start`."""
    if start.line is None or line is None:
        return start
    if line == 1 and start.col is not None and col is not None:
        return Where(start.path, start.line, start.col + col - 1)
    return Where(start.path, start.line + line - 1, None)

"""Derived (on-demand) feature views: SQL expressions over other views' features and request fields.

A derived view is read from the `derived_views:` section of a definition file. Each feature
expression is parsed once with sqlglot, checked against a small subset that means the same on
DuckDB, Postgres, BigQuery and Spark, typed, and rewritten where the dialects disagree:

- `a / b` is `CAST(a AS DOUBLE) / NULLIF(CAST(b AS DOUBLE), 0)`: always floating point, NULL for x / 0;
- `LN(x)` for x <= 0, `SQRT(x)` for x < 0, `POWER(a, b)` for a < 0 with a fractional b or
  a = 0 with b < 0, and `EXP(x)` past overflow give NULL (Postgres and BigQuery raise, DuckDB
  and Spark return NaN or infinity); `EXP(x)` below -745 is 0 (Postgres raises on underflow);
- `GREATEST`/`LEAST` skip NULL arguments (BigQuery returns NULL for any NULL argument);
- `seconds_between(start, end)` is `end - start` in seconds, a DOUBLE with microseconds.

References in the AST are normalized to columns of two internal tables, `_fsql_input`
(named `view:feature`) and `_fsql_request` (named after the field), which the compiler and
the online lookup replace by what they read. This module knows no dialect and no connection.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from fsql.datatypes import TYPE_NAMES, canonical_type, type_label
from fsql.derived_language import (
    INPUT_TABLE,
    NUMERIC,
    REQUEST_TABLE,
    Checker,
    Scope,
    rewrite,
)
from fsql.errors import did_you_mean
from fsql.yamlfile import NAME_PATTERN, Mapping, Where

DERIVED_VIEW_KEYS = ("name", "description", "inputs", "request", "features", "tags", "owner")
DERIVED_FEATURE_KEYS = ("name", "expr", "type", "description")


@dataclass(frozen=True)
class DerivedInput:
    """A feature of another view that a derived view reads, with its type."""

    view: str
    feature: str
    type: exp.DType

    @property
    def ref(self) -> str:
        return f"{self.view}:{self.feature}"


@dataclass(frozen=True)
class RequestField:
    """A value the caller sends with each lookup (a spine column of the same name in training)."""

    name: str
    type: exp.DType


@dataclass(frozen=True)
class DerivedFeature:
    name: str
    type: exp.DType
    # The checked, rewritten AST; reads are columns of INPUT_TABLE and REQUEST_TABLE. It follows
    # from `text`, so it takes no part in equality and hashing (a lookup's request is a cache key).
    expression: exp.Expr = field(compare=False)
    text: str = ""  # the expression as written
    description: str = ""
    where: Where = field(default=Where(Path("<memory>")), compare=False)
    # What the expression reads (`view:feature` inputs, request field names), found once: each
    # lookup resolves its request, and walking the AST there would cost more than the query.
    reads: frozenset[str] = field(default=frozenset(), compare=False)
    request_reads: frozenset[str] = field(default=frozenset(), compare=False)

    def __post_init__(self) -> None:
        if not self.reads and not self.request_reads:
            columns = list(self.expression.find_all(exp.Column))
            object.__setattr__(self, "reads", frozenset(c.name for c in columns if c.table == INPUT_TABLE))
            object.__setattr__(self, "request_reads", frozenset(c.name for c in columns if c.table == REQUEST_TABLE))


@dataclass(frozen=True)
class DerivedView:
    name: str
    inputs: tuple[DerivedInput, ...]
    request: tuple[RequestField, ...]
    features: tuple[DerivedFeature, ...]
    description: str = ""
    tags: tuple[str, ...] = ()
    owner: str = ""
    where: Where = field(default=Where(Path("<memory>")), compare=False)

    def feature(self, name: str) -> DerivedFeature | None:
        return next((f for f in self.features if f.name == name), None)

    def inputs_of(self, features: Sequence[DerivedFeature]) -> tuple[DerivedInput, ...]:
        """The inputs the given features read, in declaration order."""
        read = frozenset().union(*(f.reads for f in features))
        return tuple(i for i in self.inputs if i.ref in read)

    def request_of(self, features: Sequence[DerivedFeature]) -> tuple[RequestField, ...]:
        """The request fields the given features read, in declaration order."""
        read = frozenset().union(*(f.request_reads for f in features))
        return tuple(r for r in self.request if r.name in read)


def read_derived_view(
    m: Mapping, *, name: str, features_of: Callable[[str, Where], list[tuple[str, str, exp.DType]]]
) -> DerivedView:
    """Read one `derived_views:` item; `features_of(ref, where)` resolves `view` or `view:feature`
    into (view, feature, type) triples, raising a DefinitionError at `where` for an unknown name."""
    m.check_keys(DERIVED_VIEW_KEYS)
    inputs: dict[str, DerivedInput] = {}
    for text, where in m.string_items("inputs"):
        for view, feature, type_ in features_of(text, where):
            inputs.setdefault(f"{view}:{feature}", DerivedInput(view, feature, type_))
    request = _request_fields(m)
    items = m.mappings("features", f"{m.what} feature", example="{name: spend_per_trip, expr: spend / trips}")
    if not items:
        raise m.error(None, "needs 'features': a list of {name: ..., expr: ..., type: ...}")
    scope = Scope(tuple(inputs.values()), request, m.what)
    features: dict[str, DerivedFeature] = {}
    for item in items:
        derived = _derived_feature(item, scope)
        if derived.name in features:
            raise item.where_value("name").error(f"{m.what}: feature '{derived.name}' is defined twice: rename one")
        features[derived.name] = derived
    return DerivedView(
        name=name,
        inputs=tuple(inputs.values()),
        request=request,
        features=tuple(features.values()),
        description=m.get("description", str, ""),
        tags=m.string_list("tags"),
        owner=m.get("owner", str, ""),
        where=m.where(),
    )


def _request_fields(m: Mapping) -> tuple[RequestField, ...]:
    if not m.has("request"):
        return ()
    raw = Mapping(
        m.data["request"],
        path=m.path,
        what=f"{m.what}: 'request'",
        where=m.where_value("request"),
        example="{pickup_lat: double, requested_at: timestamptz}",
    )
    fields = []
    for key in raw.data:
        if not isinstance(key, str) or not NAME_PATTERN.match(key) or key.startswith("_fsql"):
            raise raw.where_key(str(key)).error(
                f"{m.what}: request field '{key}' is not a valid name: use lowercase snake_case, not starting _fsql"
            )
        text = raw.required(key, str)
        type_ = canonical_type(text)
        if type_ is None:
            hint = did_you_mean(text.lower(), list(TYPE_NAMES))
            known = ", ".join(TYPE_NAMES)
            raise raw.where_value(key).error(
                f"{m.what}: request field '{key}' has unknown type '{text}'.{hint} Known types: {known}."
            )
        fields.append(RequestField(key, type_))
    return tuple(fields)


def _derived_feature(m: Mapping, scope: Scope) -> DerivedFeature:
    m.check_keys(DERIVED_FEATURE_KEYS)
    name = m.required("name", str, hint="add 'name: ...', a lowercase snake_case name")
    if not NAME_PATTERN.match(name) or name.startswith("_fsql"):
        raise m.error("name", f"'{name}' is not a valid feature name: use lowercase snake_case, not starting _fsql")
    text = m.required("expr", str, hint="add 'expr: ...', a SQL expression over the inputs and request fields")
    where = m.where_text("expr")
    what = f"{scope.what} feature '{name}'"
    parsed = _parse(text, where, what)
    checker = Checker(scope, where, what, text)
    resolved = checker.resolve(parsed)
    inferred = checker.type_of(resolved)
    declared = None
    if m.has("type"):
        declared = canonical_type(m.required("type", str))
        if declared is None:
            typed = m.data["type"]
            raise m.where_value("type").error(
                f"{what}: unknown type '{typed}'.{did_you_mean(str(typed).lower(), list(TYPE_NAMES))} "
                f"Known types: {', '.join(TYPE_NAMES)}."
            )
        if inferred is not None and not _assignable(inferred, declared):
            raise m.where_value("type").error(
                f"{what}: the expression is {type_label(inferred)}, not {type_label(declared)}: "
                f"declare 'type: {type_label(inferred)}', or change the expression"
            )
    result = declared or inferred
    if result is None:
        raise where.error(f"{what}: the expression is always NULL, so its type is unknown: declare 'type: ...'")
    return DerivedFeature(
        name=name,
        type=result,
        expression=rewrite(resolved),
        text=text,
        description=m.get("description", str, ""),
        where=where,
    )


def _parse(text: str, where: Where, what: str) -> exp.Expr:
    try:
        parsed = sqlglot.parse_one(text)
    except (ParseError, TokenError) as exc:
        errors = getattr(exc, "errors", None) or [{}]
        first = errors[0]
        spot = where.at(first.get("line"), first.get("col")) if first.get("line") else where
        raise spot.error(f"{what}: cannot parse the expression {text!r}: {first.get('description') or exc}") from None
    if isinstance(parsed, exp.Query) or not isinstance(parsed, exp.Expr):
        raise where.error(f"{what}: write one expression, not a query: {text!r}")
    return parsed


def _assignable(inferred: exp.DType, declared: exp.DType) -> bool:
    if inferred == declared:
        return True
    if declared in (exp.DType.DOUBLE, exp.DType.FLOAT) and inferred in NUMERIC:
        return True  # an integer widens to a double, the same on every dialect
    return {inferred, declared} <= {exp.DType.TIMESTAMP, exp.DType.TIMESTAMPTZ}

"""Read the `tests:` lists of sources, feature views and features into `DataTest`s.

Each item is written as dbt writes tests: a name (`not_null`), or a mapping of one test
name to its arguments (`{accepted_range: {min: 0, max: 1}}`), optionally beside
`severity: warn`. Unknown test names, arguments and columns are errors at their file and
line, with a did-you-mean. Expressions are parsed by sqlglot here, so a broken one fails
at validation, not in the warehouse.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from fsql.durations import DURATION_HELP, Duration, parse_duration
from fsql.errors import did_you_mean
from fsql.spec import FeatureView, Source
from fsql.yamlfile import Mapping, Where, where_item

from .model import ALIASES, KINDS, RELATION_KINDS, SEVERITIES, DataTest

# The keys each mapping accepts; fsql/schemas/definitions.schema.json lists the same ones.
TEST_KEYS = (*KINDS, *ALIASES, "severity")
NOT_NULL_KEYS = ("columns", "severity")
UNIQUE_KEYS = ("columns", "severity")
ACCEPTED_VALUES_KEYS = ("column", "values", "severity")
ACCEPTED_RANGE_KEYS = ("column", "min", "max", "inclusive", "severity")
ROW_COUNT_KEYS = ("min", "max", "min_rows", "max_rows", "severity")
EXPRESSION_KEYS = ("expression", "severity")
FRESHNESS_KEYS = ("warn_after", "error_after", "severity")
_NOT_ROW_LEVEL = (exp.AggFunc, exp.Window, exp.Query)
_EXAMPLE = "not_null, {unique: [driver_id, event_ts]} or {accepted_range: {min: 0, max: 1}, severity: warn}"


class _Context:
    """Where a test list is declared, and what its tests may read."""

    def __init__(self, owner: Mapping, node_kind: str, node: str, columns: list[str], dialect: str) -> None:
        self.owner = owner
        self.node_kind = node_kind
        self.node = node
        self.columns = columns  # [] when the columns cannot be known: no check
        self.dialect = dialect
        self.feature: str | None = None

    @property
    def what(self) -> str:
        return self.owner.what


def source_tests(m: Mapping, source: Source, dialect: str) -> tuple[DataTest, ...]:
    """The tests declared under a source's `tests:` key."""
    return _tests(_Context(m, "source", source.name, [c.name for c in source.columns], dialect))


def view_tests(m: Mapping, view: FeatureView, source: Source, dialect: str) -> tuple[DataTest, ...]:
    """The tests of a feature view: its own `tests:` and those of each of its features.

    They read the view's feature rows: its join keys, its source's event (and created) time
    column, and its features.
    """
    times = [source.timestamp, *filter(None, [source.created_timestamp])]
    columns = [*(k.name for k in view.join_keys), *times, *(f.name for f in view.features if f.aggregate is None)]
    tests = list(_tests(_Context(m, "view", view.name, columns, dialect)))
    for item in m.mappings("features", f"{m.what} feature"):
        name = item.data.get("name")
        feature = view.feature(name) if isinstance(name, str) else None
        if feature is None or not item.has("tests"):
            continue
        ctx = _Context(item, "view", view.name, columns, dialect)
        ctx.feature = feature.name
        tests.extend(_tests(ctx))
    return tuple(tests)


def _tests(ctx: _Context) -> tuple[DataTest, ...]:
    m = ctx.owner
    if not m.has("tests"):
        return ()
    items = m.data["tests"]
    if not isinstance(items, list):
        raise m.error("tests", f"'tests' must be a list of tests, e.g. [{_EXAMPLE}]")
    return tuple(_test(ctx, item, where_item(items, index, m.path)) for index, item in enumerate(items))


def _test(ctx: _Context, item: Any, where: Where) -> DataTest:
    if isinstance(item, str):
        return _build(ctx, _kind(ctx, item, where), None, where, "error")
    if not isinstance(item, dict):
        raise where.error(f"{ctx.what}: a test is a name or a mapping, e.g. {_EXAMPLE}")
    test = Mapping(item, path=ctx.owner.path, what=f"{ctx.what} test", where=where, lines=ctx.owner.lines)
    test.check_keys(TEST_KEYS, noun="test or key")
    names = [key for key in item if key != "severity"]
    if len(names) != 1:
        found = f"{len(names)} ({', '.join(map(str, names))})" if names else "none"
        raise where.error(f"{ctx.what}: a test mapping names exactly one test, found {found}: e.g. {_EXAMPLE}")
    kind = _kind(ctx, str(names[0]), test.where_key(str(names[0])))
    return _build(ctx, kind, test, test.where_key(str(names[0])), _severity(test, ctx))


def _kind(ctx: _Context, name: str, where: Where) -> str:
    kind = ALIASES.get(name, name)
    if kind not in KINDS:
        raise where.error(
            f"{ctx.what}: unknown test '{name}'.{did_you_mean(name, [*KINDS, *ALIASES])} Tests: {', '.join(KINDS)}."
        )
    if ctx.feature is not None and kind in RELATION_KINDS:
        raise where.error(
            f"{ctx.what}: '{kind}' tests a whole relation, not a feature: declare it under the feature view's "
            f"'tests:' instead"
        )
    return kind


def _severity(m: Mapping, ctx: _Context) -> str:
    severity = m.get("severity", str, "error")
    if severity not in SEVERITIES:
        raise m.error("severity", f"severity must be 'error' or 'warn', not '{severity}'")
    return severity


def _build(ctx: _Context, kind: str, test: Mapping | None, where: Where, severity: str) -> DataTest:
    """The test of `kind`; `test` is the item's mapping (None for a bare name)."""
    value = test.data[next(k for k in test.data if k != "severity")] if test is not None else None
    args = _arguments(ctx, kind, test, value, where)
    inner = args.pop("severity", None)
    if inner is not None:
        if test is not None and test.has("severity") and inner != severity:
            raise where.error(f"{ctx.what}: severity is given twice ('{severity}' and '{inner}'): keep one")
        severity = inner
    parts = [kind, ctx.node, *([ctx.feature] if ctx.feature else list(args.get("columns", ())))]
    return DataTest(
        name="_".join(parts), kind=kind, node_kind=ctx.node_kind, node=ctx.node, feature=ctx.feature,
        severity=severity, where=where, **args,
    )  # fmt: skip


def _arguments(ctx: _Context, kind: str, test: Mapping | None, value: Any, where: Where) -> dict[str, Any]:
    args = _ARGUMENT_READERS[kind](ctx, _Value(ctx, kind, test, value, where))
    return {key: v for key, v in args.items() if v is not None}


class _Value:
    """The arguments of one test: its value as written, read as a mapping when it is one."""

    def __init__(self, ctx: _Context, kind: str, test: Mapping | None, value: Any, where: Where) -> None:
        self.ctx, self.kind, self.value, self.where = ctx, kind, value, where
        self.mapping: Mapping | None = None
        # Where a string value's text starts (for positions inside an expression).
        self.text_where = test.where_text(kind) if test is not None and isinstance(value, str) else where
        if isinstance(value, dict):
            parent = test.where_value(kind) if test is not None else where
            self.mapping = Mapping(
                value, path=ctx.owner.path, what=f"{ctx.what} test '{kind}'", where=parent, lines=ctx.owner.lines
            )

    def error(self, message: str) -> Exception:
        return self.where.error(f"{self.ctx.what}: test '{self.kind}': {message}")

    def arg(self, key: str, kinds: tuple[type, ...], what: str) -> Any:
        if self.mapping is None or not self.mapping.has(key):
            return None
        found = self.mapping.data[key]
        if not isinstance(found, kinds) or (isinstance(found, bool) and bool not in kinds):
            raise self.mapping.error(key, f"'{key}' must be {what}, not {found!r}")
        return found

    def severity(self) -> str | None:
        return _severity(self.mapping, self.ctx) if self.mapping is not None and self.mapping.has("severity") else None


def _columns(v: _Value, given: Any) -> tuple[str, ...]:
    """The columns a test reads: the feature itself on a feature, else the ones given (checked)."""
    if v.ctx.feature is not None:
        if given is not None:
            raise v.error("on a feature it tests the feature itself: leave out the column(s)")
        return (v.ctx.feature,)
    names = [given] if isinstance(given, str) else given
    if not names or not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise v.error(f"name the column(s) it tests, e.g. {{{v.kind}: {_column_example(v)}}}")
    for name in names:
        _check_column(v, name)
    return tuple(names)


def _column_example(v: _Value) -> str:
    first = v.ctx.columns[0] if v.ctx.columns else "column_name"
    if v.kind in ("not_null", "unique"):
        return f"[{first}]"
    return f"{{column: {first}, ...}}"


def _check_column(v: _Value, name: str) -> None:
    known = v.ctx.columns
    if known and name not in known:
        hint = did_you_mean(name, known) or f" It can read: {', '.join(known)}."
        raise v.error(f"unknown column '{name}' in {v.ctx.node_kind} '{v.ctx.node}'.{hint}")


def _key_columns(ctx: _Context, v: _Value) -> dict[str, Any]:
    if v.mapping is not None:
        if v.kind == "not_null":
            v.mapping.check_keys(NOT_NULL_KEYS)
        else:
            v.mapping.check_keys(UNIQUE_KEYS)
        return {"columns": _columns(v, v.mapping.data.get("columns")), "severity": v.severity()}
    return {"columns": _columns(v, v.value)}


def _accepted_values(ctx: _Context, v: _Value) -> dict[str, Any]:
    values: Any = v.value
    column = None
    if v.mapping is not None:
        v.mapping.check_keys(ACCEPTED_VALUES_KEYS)
        values, column = v.mapping.data.get("values"), v.arg("column", (str,), "a column name")
    if not isinstance(values, list) or not values:
        raise v.error("list the accepted values, e.g. {accepted_values: {values: [a, b]}}")
    for item in values:
        if not isinstance(item, str | int | float | bool):
            raise v.error(f"accepted values are strings, numbers or true/false, not {item!r}")
    return {"columns": _columns(v, column), "values": tuple(values), "severity": v.severity()}


def _accepted_range(ctx: _Context, v: _Value) -> dict[str, Any]:
    if v.mapping is None:
        raise v.error("give its bounds, e.g. {accepted_range: {min: 0, max: 1}}")
    v.mapping.check_keys(ACCEPTED_RANGE_KEYS)
    low, high = (v.arg(key, (int, float), "a number") for key in ("min", "max"))
    _check_bounds(v, low, high)
    inclusive = v.arg("inclusive", (bool,), "true or false")
    return {
        "columns": _columns(v, v.arg("column", (str,), "a column name")),
        "min": low,
        "max": high,
        "inclusive": True if inclusive is None else inclusive,
        "severity": v.severity(),
    }


def _row_count(ctx: _Context, v: _Value) -> dict[str, Any]:
    if v.mapping is None:
        raise v.error("give its bounds, e.g. {row_count: {min: 1}}")
    v.mapping.check_keys(ROW_COUNT_KEYS)
    bounds = []
    for short, long in (("min", "min_rows"), ("max", "max_rows")):
        first, second = v.arg(short, (int,), "a whole number"), v.arg(long, (int,), "a whole number")
        if first is not None and second is not None:
            raise v.error(f"'{short}' and '{long}' say the same: keep one")
        bounds.append(first if first is not None else second)
    _check_bounds(v, *bounds)
    return {"min": bounds[0], "max": bounds[1], "severity": v.severity()}


def _check_bounds(v: _Value, low: float | None, high: float | None) -> None:
    if low is None and high is None:
        raise v.error("give 'min', 'max' or both")
    if low is not None and high is not None and low > high:
        raise v.error(f"'min' ({low}) is greater than 'max' ({high})")


def _expression(ctx: _Context, v: _Value) -> dict[str, Any]:
    text, where = v.value, v.text_where
    if v.mapping is not None:
        v.mapping.check_keys(EXPRESSION_KEYS)
        text, where = v.arg("expression", (str,), "an SQL predicate"), v.mapping.where_text("expression")
    if not isinstance(text, str) or not text.strip():
        raise v.error("give the predicate every row must satisfy, e.g. {expression: 'acc_rate >= conv_rate'}")
    _check_expression(v, text, where)
    return {"expression": text, "severity": v.severity()}


def _check_expression(v: _Value, text: str, where: Where) -> None:
    try:
        parsed = sqlglot.parse_one(text, read=v.ctx.dialect)
    except (ParseError, TokenError) as exc:
        raise where.error(f"{v.ctx.what}: test 'expression': '{text}' does not parse: {exc}") from None
    bad = parsed if isinstance(parsed, exp.Query) else parsed.find(*_NOT_ROW_LEVEL)
    if bad is not None:
        raise where.error(
            f"{v.ctx.what}: test 'expression': '{bad.sql(v.ctx.dialect)}' is not row-level; the expression is a "
            f"predicate each row must satisfy (use row_count for counts)"
        )
    for column in parsed.find_all(exp.Column):
        if v.ctx.columns and column.name not in v.ctx.columns:
            hint = did_you_mean(column.name, v.ctx.columns) or f" It can read: {', '.join(v.ctx.columns)}."
            place = where.at(column.this.meta.get("line"), _start_col(column.this))
            raise place.error(
                f"{v.ctx.what}: test 'expression': unknown column '{column.name}' in {v.ctx.node_kind} "
                f"'{v.ctx.node}'.{hint}"
            )


def _start_col(node: exp.Expression) -> int | None:
    meta = node.meta
    if meta.get("col") is None or meta.get("start") is None or meta.get("end") is None:
        return None
    return int(meta["col"]) - (int(meta["end"]) - int(meta["start"]))


def _freshness(ctx: _Context, v: _Value) -> dict[str, Any]:
    if v.mapping is None:
        raise v.error("give 'warn_after', 'error_after' or both, e.g. {freshness: {warn_after: 2h, error_after: 1d}}")
    v.mapping.check_keys(FRESHNESS_KEYS)
    warn, error = (_duration(v, key) for key in ("warn_after", "error_after"))
    if warn is None and error is None:
        raise v.error("give 'warn_after', 'error_after' or both, e.g. {warn_after: 2h, error_after: 1d}")
    if warn is not None and error is not None and warn.seconds > error.seconds:
        raise v.error(f"warn_after ({warn}) is longer than error_after ({error}): a warning must come first")
    return {"warn_after": warn, "error_after": error, "severity": v.severity()}


def _duration(v: _Value, key: str) -> Duration | None:
    text = v.arg(key, (str,), "a duration such as '2h'")
    if text is None:
        return None
    duration = parse_duration(text)
    if duration is None:
        assert v.mapping is not None
        raise v.mapping.error(key, f"'{text}' is not a duration: {DURATION_HELP}")
    return duration


_ARGUMENT_READERS: dict[str, Callable[[_Context, _Value], dict[str, Any]]] = {
    "not_null": _key_columns,
    "unique": _key_columns,
    "accepted_values": _accepted_values,
    "accepted_range": _accepted_range,
    "row_count": _row_count,
    "expression": _expression,
    "freshness": _freshness,
}

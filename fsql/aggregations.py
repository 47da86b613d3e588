"""Aggregations in definitions: read and checked, one aggregate feature per window.

An aggregate view lists `aggregations` instead of `features`; each gives one feature per
window, named `<name>_<window>` and typed by what its function returns (DESIGN.md,
"Windowed aggregates"). Everything that can be known without data is checked here, at
the YAML line it comes from: the function, the columns of `expr` and `filter`, the input
type the function needs, the windows and the granularity dividing them.
"""

from __future__ import annotations

from dataclasses import replace

from sqlglot import exp

from fsql.checks import check_expression_columns, parse_feature_expression
from fsql.datatypes import TYPE_NAMES, canonical_type, type_label
from fsql.durations import DURATION_HELP, Duration, parse_duration
from fsql.errors import did_you_mean
from fsql.spec import AggregateFunction, AggregateWindow, Aggregation, Feature, FeatureView, Source
from fsql.yamlfile import Mapping, Where

AGGREGATION_KEYS = ("name", "function", "expr", "filter", "windows", "type", "description")
FUNCTION_NAMES = tuple(f.value for f in AggregateFunction)

_T = exp.DType
_INTEGERS = frozenset({_T.BIGINT, _T.INT})
_FLOATS = frozenset({_T.DOUBLE, _T.FLOAT})
_NUMBERS = _INTEGERS | _FLOATS
# The input types each function takes (None: any), and the type it returns (None: the input's).
_INPUTS: dict[AggregateFunction, frozenset[exp.DType] | None] = {
    AggregateFunction.COUNT: None,
    AggregateFunction.COUNT_DISTINCT: None,
    AggregateFunction.SUM: _NUMBERS,
    AggregateFunction.AVG: _NUMBERS,
    AggregateFunction.STDDEV: _NUMBERS,
    # Postgres has no min/max of a boolean; count with a filter says the same.
    AggregateFunction.MIN: frozenset(TYPE_NAMES.values()) - {_T.BOOLEAN},
    AggregateFunction.MAX: frozenset(TYPE_NAMES.values()) - {_T.BOOLEAN},
    AggregateFunction.LAST: None,
}
_FIXED_RESULT = {
    AggregateFunction.COUNT: _T.BIGINT,
    AggregateFunction.COUNT_DISTINCT: _T.BIGINT,
    AggregateFunction.AVG: _T.DOUBLE,
    AggregateFunction.STDDEV: _T.DOUBLE,
}
_ROW_COUNT = "count"  # the one function that needs no expression


def result_type(function: AggregateFunction, input_type: exp.DType | None) -> exp.DType:
    """What an aggregate returns: count BIGINT, avg/stddev DOUBLE, sum BIGINT or DOUBLE, else the input's type.

    Example:
        >>> result_type(AggregateFunction.SUM, exp.DType.INT).value
        'BIGINT'
    """
    if function in _FIXED_RESULT:
        return _FIXED_RESULT[function]
    assert input_type is not None, "checked when the aggregation was read"
    if function is AggregateFunction.SUM:
        return _T.BIGINT if input_type in _INTEGERS else _T.DOUBLE
    return input_type


def read_aggregations(
    m: Mapping, *, view_name: str, source: Source, granularity: Duration | None, online: bool, dialect: str
) -> tuple[tuple[Aggregation, ...], tuple[Feature, ...]]:
    """The aggregations of a view mapping and their features, in the order written.

    Raises:
        DefinitionError: at the line of the first mistake, with what to write instead.
    """
    if m.has("features"):
        raise m.where_key("features").error(
            f"{m.what}: has both 'features' and 'aggregations': a view serves either the latest row's values "
            f"(features) or aggregates over windows (aggregations); move one list into a view of its own"
        )
    if m.has("ttl"):
        raise m.where_key("ttl").error(
            f"{m.what}: 'ttl' does not apply to a view of aggregations: each window bounds the rows it reads; "
            f"remove 'ttl'"
        )
    if online and granularity is None:
        raise m.where_key("online").error(
            f"{m.what}: an online view of aggregations needs a 'granularity' (e.g. granularity: 1h), the size "
            f"of the tiles the online store keeps; it must divide every window"
        )
    items = m.mappings("aggregations", f"{m.what} aggregation", example="{name: trips, function: count, windows: [7d]}")
    if not items:
        raise m.error("aggregations", "'aggregations' is empty: list {name: ..., function: ..., windows: [...]}")
    aggregations: list[Aggregation] = []
    features: list[Feature] = []
    first: dict[str, Where] = {}
    for item in items:
        aggregation = _aggregation(
            item, view_name=view_name, source=source, granularity=granularity, dialect=dialect, online=online
        )
        for window in aggregation.windows:
            feature = Feature(
                name=aggregation.feature_name(window),
                type=result_type(aggregation.function, aggregation.input_type),
                expression=aggregation.expression or "",
                description=aggregation.description,
                where=aggregation.where,
                is_column=aggregation.is_column,
                aggregate=AggregateWindow(aggregation, window),
            )
            if feature.name in first:
                raise item.where_value("name").error(
                    f"{m.what}: feature '{feature.name}' is defined twice (first at line {first[feature.name].line}): "
                    f"rename one of the aggregations"
                )
            first[feature.name] = item.where_value("name")
            features.append(feature)
        aggregations.append(aggregation)
    return tuple(aggregations), tuple(features)


def _aggregation(
    m: Mapping, *, view_name: str, source: Source, granularity: Duration | None, dialect: str, online: bool
) -> Aggregation:
    from fsql.definitions import _name  # definitions imports this module

    m.check_keys(AGGREGATION_KEYS)
    function = _function(m)
    is_column = not m.has("expr") and function is not AggregateFunction.COUNT
    name = _name(m, column="feature" if is_column else None)
    if name.startswith("_fsql"):
        raise m.error("name", f"'{name}' starts with '_fsql', which fsql reserves for its own columns: rename it")
    expression_key = "expr" if m.has("expr") else ("name" if is_column else None)
    aggregation = Aggregation(
        name=name,
        function=function,
        expression=m.required(expression_key, str) if expression_key else None,
        filter=m.required("filter", str) if m.has("filter") else None,
        windows=_windows(m, granularity),
        input_type=None,
        description=m.get("description", str, ""),
        where=m.where_value("name"),
        expression_where=m.where_text(expression_key) if expression_key else None,
        filter_where=m.where_text("filter") if m.has("filter") else None,
        is_column=is_column,
    )
    view = FeatureView(view_name, (), (), source.name, None, ())
    value, predicate = parse_aggregation(aggregation, view, dialect)
    for expression, where in ((value, aggregation.expression_where), (predicate, aggregation.filter_where)):
        if expression is not None and where is not None:
            check_expression_columns(expression, where, f"{m.what}", source)
    return _typed(m, aggregation, value, source, online=online)


def parse_aggregation(
    aggregation: Aggregation, view: FeatureView, dialect: str
) -> tuple[exp.Expr | None, exp.Expr | None]:
    """The aggregation's value expression (None: a row count) and filter (None: every row), parsed."""
    what = f"feature view '{view.name}' aggregation '{aggregation.name}'"
    value = None
    if aggregation.expression is not None:
        as_feature = Feature(
            aggregation.name,
            _T.TEXT,
            aggregation.expression,
            where=aggregation.expression_where or aggregation.where,
            is_column=aggregation.is_column,
        )
        value = parse_feature_expression(as_feature, view, dialect, what=what)
    predicate = None
    if aggregation.filter is not None:
        as_filter = Feature(
            aggregation.name, _T.BOOLEAN, aggregation.filter, where=aggregation.filter_where or aggregation.where
        )
        predicate = parse_feature_expression(as_filter, view, dialect, what=f"{what} filter")
    return value, predicate


def _function(m: Mapping) -> AggregateFunction:
    text = m.required("function", str, hint=f"add 'function: ...', one of {', '.join(FUNCTION_NAMES)}")
    try:
        return AggregateFunction(text.strip().lower())
    except ValueError:
        raise m.error(
            "function",
            f"unknown function '{text}'.{did_you_mean(text.strip().lower(), FUNCTION_NAMES)} "
            f"Functions: {', '.join(FUNCTION_NAMES)}.",
        ) from None


def _windows(m: Mapping, granularity: Duration | None) -> tuple[Duration, ...]:
    items = m.string_items("windows")
    if not items:
        raise m.error(
            None if not m.has("windows") else "windows", "needs 'windows': a list of durations, e.g. [7d, 30d]"
        )
    windows: list[Duration] = []
    for text, where in items:
        window = parse_duration(text)
        if window is None:
            raise where.error(f"{m.what}: window '{text}' is not a duration: {DURATION_HELP}")
        same = next((w for w in windows if w.seconds == window.seconds), None)
        if same is not None:
            repeated = f"'{text}' is listed twice" if str(same) == str(window) else f"'{text}' is the same as '{same}'"
            raise where.error(f"{m.what}: window {repeated}: remove one")
        if granularity is not None and window.seconds % granularity.seconds:
            raise where.error(
                f"{m.what}: window '{text}' is not a whole number of the view's granularity '{granularity}': "
                f"both ends of a window snap to the granularity, so pick a window it divides or a finer granularity"
            )
        windows.append(window)
    return tuple(windows)


def _typed(
    m: Mapping, aggregation: Aggregation, value: exp.Expr | None, source: Source, *, online: bool
) -> Aggregation:
    """The aggregation with its input type: `type:` if written, else the type of the column it reads."""
    if value is None:
        if m.has("type"):
            raise m.where_key("type").error(f"{m.what}: a row count has no input, so no 'type': remove it")
        return aggregation
    declared = _declared_type(m) if m.has("type") else None
    column = source.column(value.name) if isinstance(value, exp.Column) and not value.table else None
    input_type = declared or (column.type if column is not None else None)
    allowed = _INPUTS[aggregation.function]
    read_key = "expr" if m.has("expr") else "name"
    # last returns its input's type; online count_distinct tiles keep an array of the input's type.
    typed_by_input = aggregation.function is AggregateFunction.LAST or (
        online and aggregation.function is AggregateFunction.COUNT_DISTINCT
    )
    if input_type is None and (allowed is not None or typed_by_input):
        why = (
            " (the online tiles keep its distinct values)"
            if aggregation.function is AggregateFunction.COUNT_DISTINCT
            else ""
        )
        raise m.error(
            read_key,
            f"cannot tell the type of '{aggregation.expression}' from the source's declared columns{why}: add "
            f"'type: ...' (the type of the expression, e.g. bigint or double)",
        )
    if allowed is not None and input_type not in allowed:
        numbers = "a number (bigint, int32, double or float32)"
        kinds = numbers if aggregation.function in _NUMBER_FUNCTIONS else "a number, string, date or timestamp"
        raise m.error(
            "type" if declared else read_key,
            f"{aggregation.function.value} of a {type_label(input_type)} value: {aggregation.function.value} "
            f"takes {kinds}; count with a 'filter' counts the rows where a condition holds",
        )
    return replace(aggregation, input_type=input_type)


_NUMBER_FUNCTIONS = frozenset({AggregateFunction.SUM, AggregateFunction.AVG, AggregateFunction.STDDEV})


def _declared_type(m: Mapping) -> exp.DType:
    name = m.required("type", str)
    type_ = canonical_type(name)
    if type_ is None:
        raise m.where_value("type").error(
            f"{m.what}: unknown type '{name}'.{did_you_mean(name.lower(), list(TYPE_NAMES))} "
            f"Known types: {', '.join(TYPE_NAMES)}."
        )
    return type_

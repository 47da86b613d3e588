"""Entity rows into a lookup statement's parameters: keys and request fields, checked and made uniform.

A lookup binds one array per key (every row must have it, of its type and in its range) and one
value list per request field of its derived features; `Plan` in `fsql.online.lookup` takes a
quick path for rows whose values are all of their exact type and falls back to these functions,
which word the errors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from operator import attrgetter, itemgetter
from typing import Any

from sqlglot import exp

from fsql.compile.request import FeatureRequest
from fsql.datatypes import INTEGER_RANGES, out_of_range, type_label
from fsql.derived import RequestField
from fsql.errors import CompileError
from fsql.spec import Column

# Python values a key of each type accepts.
ACCEPTS: dict[exp.DType, tuple[type, ...]] = {
    exp.DType.BIGINT: (int,),
    exp.DType.INT: (int,),
    exp.DType.TEXT: (str,),
    exp.DType.BOOLEAN: (bool,),
    exp.DType.DOUBLE: (int, float),
    exp.DType.FLOAT: (int, float),
    exp.DType.DATE: (date,),
    exp.DType.TIMESTAMP: (datetime,),
    exp.DType.TIMESTAMPTZ: (datetime,),
}


INTEGER_KEYS = frozenset({exp.DType.BIGINT, exp.DType.INT})

# An integer as written in an array literal: int's own repr, so an IntEnum member is its number.
render_integer = int.__repr__


def array_literal(values: list[Any], render: Callable[[Any], str]) -> str:
    """`values` as a Postgres array literal, e.g. `{1,NULL,3}`, each value written by `render` in a
    form that needs no quoting (no comma, brace, quote, backslash or space).

    Example:
        >>> array_literal([1, None, 3], int.__repr__)
        '{1,NULL,3}'
    """
    if None in values:
        return "{" + ",".join("NULL" if value is None else render(value) for value in values) + "}"
    return "{" + ",".join(map(render, values)) + "}"


def one_value(values: list[Any]) -> bool:
    """Whether every row sends the same value, so that one scalar parameter can stand for them all.

    Equal is not always the same value: -0.0 == 0.0, yet `x / 2` keeps the sign, so zeros must agree on
    it too. (Values are checked and made uniform first: no bool among numbers, times made UTC-aware.)

    Example:
        >>> one_value([2.5, 2.5]), one_value([None, None]), one_value([0.0, -0.0]), one_value([1.0, None])
        (True, True, False, False)
    """
    first = values[0]
    if values.count(first) != len(values):
        return False
    if type(first) is float and first == 0.0:
        sign = math.copysign(1.0, first)
        return all(math.copysign(1.0, value) == sign for value in values)
    return True


def fast_check(key: Column) -> tuple[frozenset[type], tuple[int, int] | None]:
    """The exact Python types a key's quick path accepts, and an integer key's range."""
    accepts = ACCEPTS.get(key.type) if key.type else None
    if accepts is None:
        return frozenset(), None  # untyped or unusual: always the full check
    return frozenset(accepts), INTEGER_RANGES.get(key.type) if key.type else None


def bind_keys(keys: Sequence[Column], entity_rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One array parameter per key, after checking every row has every key, of its type and range."""
    if not entity_rows:
        raise CompileError("no entity rows given: pass at least one, e.g. {'driver_id': 1001}")
    for index, row in enumerate(entity_rows):
        for key in keys:
            if key.name not in row:
                raise CompileError(
                    f"entity row {index + 1} lacks key '{key.name}'; the request needs "
                    f"{', '.join(k.name for k in keys)}"
                )
            _check_key(index + 1, key, row[key.name])
    return {f"key_{i}": [row[key.name] for row in entity_rows] for i, key in enumerate(keys)}


def bind_request_fields(request: FeatureRequest, entity_rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One array parameter per request field the derived features read, sent beside the keys in each row.

    Values are checked as keys are (`_check_key` words the error) and made uniform for psycopg's
    binary arrays: ints of a double field become floats, naive times are UTC.

    Raises:
        CompileError: a row lacks a request field, or has a value of the wrong type.
    """
    params: dict[str, Any] = {}
    for i, field in enumerate(request.request_fields):
        ready = ready_values(field_binder(field), entity_rows)
        if ready is not None:
            params[f"req_{i}"] = ready
            continue
        accepts = ACCEPTS.get(field.type, (object,))
        floats = float in accepts
        values = []
        for index, row in enumerate(entity_rows):
            if field.name not in row:
                readers = ", ".join(f"'{d.view.name}'" for d in request.derived if field in d.request_fields)
                raise CompileError(
                    f"entity row {index + 1} lacks request field '{field.name}' ({type_label(field.type)}), which "
                    f"derived view {readers} reads: send it beside the keys, e.g. {{..., '{field.name}': ...}}"
                )
            value = row[field.name]
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, accepts) or field.type in INTEGER_RANGES:
                    _check_key(index + 1, Column(field.name, field.type), value, noun="request field")
                if floats:
                    value = float(value)
                elif isinstance(value, datetime):
                    value = _instant(value, field.type)
            values.append(value)
        params[f"req_{i}"] = values
    return params


# The exact Python types a request field's values may all have to be sent as they are: no
# conversion, no range to check (ints of a double field, naive times of a zoned one and
# integers take the per-value path below, which also words the errors).
_SENT_AS_IS: dict[exp.DType, frozenset[type]] = {
    exp.DType.DOUBLE: frozenset({float, type(None)}),
    exp.DType.FLOAT: frozenset({float, type(None)}),
    exp.DType.TEXT: frozenset({str, type(None)}),
    exp.DType.BOOLEAN: frozenset({bool, type(None)}),
    exp.DType.DATE: frozenset({date, type(None)}),
}


_TIMES = frozenset({datetime, type(None)})
_TZINFO = attrgetter("tzinfo")
_ZONED = {exp.DType.TIMESTAMPTZ: True, exp.DType.TIMESTAMP: False}


Binder = tuple[Callable[[Mapping[str, Any]], Any], frozenset[type], bool | None]


def field_binder(field: RequestField) -> Binder:
    """How `ready_values` reads a field: its getter, the types sent as they are, and for a time
    field whether its values go as they are when all zoned (True) or all naive (False)."""
    return itemgetter(field.name), _SENT_AS_IS.get(field.type, frozenset()), _ZONED.get(field.type)


def ready_values(binder: Binder, entity_rows: Sequence[Mapping[str, Any]]) -> list[Any] | None:
    """The field's values when every row has it and all can be sent as they are, else None.

    Each check walks the values in C (map, set): at 100 rows a loop in Python was most of the
    binding's cost, which every derived lookup pays."""
    getter, as_is, zoned = binder
    try:
        values = list(map(getter, entity_rows))
    except KeyError:
        return None
    kinds = set(map(type, values))
    if kinds <= as_is:
        return values
    if kinds <= _TIMES and zoned is not None:
        zones = set(map(_TZINFO, filter(None, values)))  # a datetime is never false: the Nones left out
        if (None not in zones) if zoned else zones <= {None}:
            return values  # a zoned time of a TIMESTAMP field is made naive UTC below
    return None


def _instant(value: Any, type_: exp.DType) -> Any:
    """Naive times are UTC, as everywhere in fsql, whatever the session's time zone."""
    if not isinstance(value, datetime):
        return value
    if type_ is exp.DType.TIMESTAMPTZ and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    if type_ is exp.DType.TIMESTAMP and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _check_key(number: int, key: Column, value: Any, *, noun: str = "key") -> None:
    if value is None:
        return
    accepts = ACCEPTS.get(key.type, (object,)) if key.type else (object,)
    if (isinstance(value, bool) and bool not in accepts) or not isinstance(value, accepts):
        kind = type(value).__name__
        raise CompileError(
            f"entity row {number}: {noun} '{key.name}' is {type_label(key.type)}, not {kind} ({value!r})"
        )
    bounds = out_of_range(value, key.type)
    if bounds is not None:
        raise CompileError(
            f"entity row {number}: key '{key.name}' is {type_label(key.type)}, which holds {bounds[0]} to "
            f"{bounds[1]}; {value} is out of that range, so no entity has it: check the value"
        )

"""Entity keys as people type them on the command line: `driver_id=1001,zone_id=z01`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from sqlglot import exp

from fsql.datatypes import out_of_range, type_label
from fsql.errors import CompileError, did_you_mean
from fsql.spec import Definitions

_PARSERS: dict[exp.DType, Callable[[str], Any]] = {
    exp.DType.BIGINT: int,
    exp.DType.INT: int,
    exp.DType.DOUBLE: float,
    exp.DType.FLOAT: float,
    exp.DType.BOOLEAN: lambda text: {"true": True, "false": False}[text.lower()],
    exp.DType.DATE: date.fromisoformat,
    exp.DType.TIMESTAMP: datetime.fromisoformat,
    exp.DType.TIMESTAMPTZ: datetime.fromisoformat,
}


def parse_entity(text: str, definitions: Definitions) -> dict[str, Any]:
    """Parse `key=value[,key=value]`, each value read as its key's declared type; the request
    fields of derived views are read the same way, as their declared type.

    Example:
        >>> from fsql.compile import example_definitions
        >>> parse_entity("driver_id=1001", example_definitions())
        {'driver_id': 1001}
    """
    types = {k.name: k.type for e in definitions.entities.values() for k in e.join_keys}
    for derived in definitions.derived_views.values():
        for field in derived.request:
            types.setdefault(field.name, field.type)
    row: dict[str, Any] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep:
            raise CompileError(f"--entity '{text}': write key=value, e.g. driver_id=1001")
        if key not in types:
            raise CompileError(
                f"--entity '{text}': '{key}' is no entity's join key or request field.{did_you_mean(key, list(types))}"
            )
        row[key] = _parse_value(text, key, value.strip(), types[key])
    return row


def _parse_value(text: str, key: str, value: str, key_type: exp.DType | None) -> Any:
    """One key's value read as its type, within the type's range."""
    parser = _PARSERS.get(key_type, str) if key_type is not None else str
    try:
        parsed = parser(value)
    except (ValueError, KeyError):
        raise CompileError(f"--entity '{text}': '{value}' is not a valid {type_label(key_type)} for '{key}'") from None
    bounds = out_of_range(parsed, key_type)
    if bounds is not None:
        raise CompileError(
            f"--entity '{text}': {value} is out of range for '{key}', a {type_label(key_type)} "
            f"({bounds[0]} to {bounds[1]}), so no entity has it: check the value"
        )
    return parsed

"""Entity keys as people type them on the command line: `driver_id=1001,zone_id=z01`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from sqlglot import exp

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
    """Parse `key=value[,key=value]`, each value read as its key's declared type.

    Example:
        >>> from fsql.compile import example_definitions
        >>> parse_entity("driver_id=1001", example_definitions())
        {'driver_id': 1001}
    """
    types = {k.name: k.type for e in definitions.entities.values() for k in e.join_keys}
    row: dict[str, Any] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep:
            raise CompileError(f"--entity '{text}': write key=value, e.g. driver_id=1001")
        if key not in types:
            raise CompileError(f"--entity '{text}': '{key}' is no entity's join key.{did_you_mean(key, list(types))}")
        key_type = types[key]
        parser = _PARSERS.get(key_type, str) if key_type is not None else str
        try:
            row[key] = parser(value.strip())
        except (ValueError, KeyError):
            type_name = key_type.value.lower() if key_type is not None else "?"
            raise CompileError(f"--entity '{text}': '{value}' is not a valid {type_name} for '{key}'") from None
    return row

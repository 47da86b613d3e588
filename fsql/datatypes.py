"""Feature and key types: the names users write, mapped to canonical SQL types.

sqlglot cannot build dialect-free types from names like `float64`, so fsql keeps its
own short list and renders the canonical type per dialect.
"""

from __future__ import annotations

from sqlglot import exp

# What users may write -> the canonical sqlglot type it means.
TYPE_NAMES: dict[str, exp.DType] = {
    "bigint": exp.DType.BIGINT,
    "int64": exp.DType.BIGINT,
    "int": exp.DType.BIGINT,
    "integer": exp.DType.BIGINT,
    "int32": exp.DType.INT,
    "double": exp.DType.DOUBLE,
    "float64": exp.DType.DOUBLE,
    "float": exp.DType.DOUBLE,
    "float32": exp.DType.FLOAT,
    "string": exp.DType.TEXT,
    "text": exp.DType.TEXT,
    "varchar": exp.DType.TEXT,
    "bool": exp.DType.BOOLEAN,
    "boolean": exp.DType.BOOLEAN,
    "date": exp.DType.DATE,
    # A naive timestamp is read as UTC; timestamptz is an instant.
    "timestamp": exp.DType.TIMESTAMP,
    "timestamptz": exp.DType.TIMESTAMPTZ,
}

TIMESTAMP_TYPES = frozenset({exp.DType.TIMESTAMP, exp.DType.TIMESTAMPTZ, exp.DType.DATE})

# The values each integer type holds, in Postgres, DuckDB and every engine fsql runs on.
INTEGER_RANGES: dict[exp.DType, tuple[int, int]] = {
    exp.DType.BIGINT: (-(2**63), 2**63 - 1),
    exp.DType.INT: (-(2**31), 2**31 - 1),
}

# Where the canonical type's own name means another type to users ('int' is bigint).
_LABELS = {exp.DType.INT: "int32", exp.DType.FLOAT: "float32"}


def canonical_type(name: str) -> exp.DType | None:
    """The canonical type for a user's type name, or None if fsql does not know it."""
    return TYPE_NAMES.get(name.strip().lower())


def data_type(type_: exp.DType) -> exp.DataType:
    """A sqlglot DataType node for a canonical type."""
    return exp.DataType(this=type_)


def type_label(type_: exp.DType | None) -> str:
    """The type's name in messages: one users may write, meaning this type."""
    if type_ is None:
        return "?"
    return _LABELS.get(type_, type_.value.lower())


def out_of_range(value: object, type_: exp.DType | None) -> tuple[int, int] | None:
    """The bounds of an integer type when `value` is an int outside them; None otherwise.

    Example:
        >>> out_of_range(2**31, exp.DType.INT)
        (-2147483648, 2147483647)
        >>> out_of_range(2**31, exp.DType.BIGINT) is None
        True
    """
    bounds = INTEGER_RANGES.get(type_) if type_ is not None else None
    if bounds is None or not isinstance(value, int) or bounds[0] <= value <= bounds[1]:
        return None
    return bounds

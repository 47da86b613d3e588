"""Feature and key types: the names users write, mapped to canonical SQL types.

sqlglot cannot build dialect-free types from names like `float64`, so fsql keeps its
own short list and renders the canonical type per dialect.
"""

from __future__ import annotations

from sqlglot import exp

# What users may write -> the canonical sqlglot type it means.
TYPE_NAMES: dict[str, exp.DataType.Type] = {
    "bigint": exp.DataType.Type.BIGINT,
    "int64": exp.DataType.Type.BIGINT,
    "int": exp.DataType.Type.BIGINT,
    "integer": exp.DataType.Type.BIGINT,
    "int32": exp.DataType.Type.INT,
    "double": exp.DataType.Type.DOUBLE,
    "float64": exp.DataType.Type.DOUBLE,
    "float": exp.DataType.Type.DOUBLE,
    "float32": exp.DataType.Type.FLOAT,
    "string": exp.DataType.Type.TEXT,
    "text": exp.DataType.Type.TEXT,
    "varchar": exp.DataType.Type.TEXT,
    "bool": exp.DataType.Type.BOOLEAN,
    "boolean": exp.DataType.Type.BOOLEAN,
    "date": exp.DataType.Type.DATE,
    # A naive timestamp is read as UTC; timestamptz is an instant.
    "timestamp": exp.DataType.Type.TIMESTAMP,
    "timestamptz": exp.DataType.Type.TIMESTAMPTZ,
}

TIMESTAMP_TYPES = frozenset({exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPTZ, exp.DataType.Type.DATE})


def canonical_type(name: str) -> exp.DataType.Type | None:
    """The canonical type for a user's type name, or None if fsql does not know it."""
    return TYPE_NAMES.get(name.strip().lower())


def data_type(type_: exp.DataType.Type) -> exp.DataType:
    """A sqlglot DataType node for a canonical type."""
    return exp.DataType(this=type_)

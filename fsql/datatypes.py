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


def canonical_type(name: str) -> exp.DType | None:
    """The canonical type for a user's type name, or None if fsql does not know it."""
    return TYPE_NAMES.get(name.strip().lower())


def data_type(type_: exp.DType) -> exp.DataType:
    """A sqlglot DataType node for a canonical type."""
    return exp.DataType(this=type_)

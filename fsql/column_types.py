"""Which types found in the data fit the types the definitions declare, and which keys join safely.

Engines name their types in their own words (DuckDB `VARCHAR`, Postgres `int8`, Spark
`timestamp_ntz`); sqlglot reads each in its dialect into one canonical type, and the two
tables below say what fits:

- `accepts(declared, found)`: may a column declared with an fsql type hold data of the
  found type? Integers of any width that fits (bigint takes int8..int64 and unsigned up
  to 32 bits; int32 takes up to int32 and unsigned up to 16 bits); double and float32 take
  any number (integers, decimals, floats: whole-number CSV columns sniff as integers);
  string takes every text type; timestamp and timestamptz take each other and dates
  (fsql compares every time as a UTC instant, reading naive times as UTC); date takes dates.
- `joins(key, found)`: may a column of the found type be compared with a join key of an
  fsql type? Only within a family: numbers with numbers (widths and floats compare exactly,
  no text is parsed), text with text, times with times, booleans with booleans. A text
  key against a number key is what this refuses: engines cast one side, so '007' matches
  7 on DuckDB and Spark repeats a spine row once for each of '01', '1' and ' 1'.

A type sqlglot cannot read (a user-defined enum, DuckDB's NULL type) is not judged: the
engine has the last word on it.
"""

from __future__ import annotations

import re

import pyarrow as pa
from sqlglot import exp
from sqlglot.errors import SqlglotError

from fsql.datatypes import data_type, type_label

_T = exp.DType
_PLAIN_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_INT32 = frozenset({_T.TINYINT, _T.SMALLINT, _T.MEDIUMINT, _T.INT, _T.UTINYINT, _T.USMALLINT})
_INT64 = _INT32 | {_T.BIGINT, _T.UMEDIUMINT, _T.UINT}
INTEGERS = _INT64 | {_T.UBIGINT, _T.INT128, _T.UINT128, _T.INT256, _T.UINT256, _T.BIGNUM}
_FRACTIONS = frozenset(
    {_T.FLOAT, _T.DOUBLE, _T.UDOUBLE, _T.DECIMAL, _T.UDECIMAL, _T.BIGDECIMAL, _T.DECFLOAT, _T.MONEY, _T.SMALLMONEY}
    | {_T.DECIMAL32, _T.DECIMAL64, _T.DECIMAL128, _T.DECIMAL256}
)
NUMBERS = INTEGERS | _FRACTIONS
TEXTS = frozenset(
    {_T.TEXT, _T.VARCHAR, _T.CHAR, _T.NCHAR, _T.NVARCHAR, _T.BPCHAR, _T.NAME, _T.FIXEDSTRING}
    | {_T.TINYTEXT, _T.MEDIUMTEXT, _T.LONGTEXT}
)
DATES = frozenset({_T.DATE, _T.DATE32})
TIMES = DATES | {
    _T.TIMESTAMP,
    _T.TIMESTAMPTZ,
    _T.TIMESTAMPLTZ,
    _T.TIMESTAMPNTZ,
    _T.TIMESTAMP_S,
    _T.TIMESTAMP_MS,
    _T.TIMESTAMP_NS,
    _T.DATETIME,
    _T.DATETIME2,
    _T.DATETIME64,
    _T.SMALLDATETIME,
}
_BOOLEANS = frozenset({_T.BOOLEAN})

# Declared fsql type -> the types found in data that it accepts.
_ACCEPTED: dict[exp.DType, frozenset[exp.DType]] = {
    _T.BIGINT: _INT64,
    _T.INT: _INT32,
    _T.DOUBLE: NUMBERS,
    _T.FLOAT: NUMBERS,
    _T.TEXT: TEXTS,
    _T.BOOLEAN: _BOOLEANS,
    _T.DATE: DATES,
    _T.TIMESTAMP: TIMES,
    _T.TIMESTAMPTZ: TIMES,
}
# Types whose values compare with each other's without parsing text.
_FAMILIES = (NUMBERS, TEXTS, TIMES, _BOOLEANS)
# The fsql type to declare for data of a family (in the message that suggests one).
_SUGGESTED = ((_INT64, "bigint"), (_FRACTIONS | INTEGERS, "double"), (TEXTS, "string"), (_BOOLEANS, "bool"))
_ZONED = frozenset({_T.TIMESTAMPTZ, _T.TIMESTAMPLTZ})
_SUGGESTED_TIMES = ((DATES, "date"), (_ZONED, "timestamptz"), (TIMES, "timestamp"))


def read_type(text: str, dialect: str) -> exp.DType | None:
    """The canonical type of a type as an engine writes it, or None if sqlglot cannot read it.

    Example:
        >>> read_type("timestamp_ntz", "spark"), read_type("int8", "postgres")
        (<DType.TIMESTAMPNTZ: 'TIMESTAMPNTZ'>, <DType.BIGINT: 'BIGINT'>)
    """
    try:
        built = exp.DataType.build(text, dialect=dialect)
    except (SqlglotError, ValueError):
        return None
    return built.this if isinstance(built.this, exp.DType) else None


def accepts(declared: exp.DType, found: exp.DType | None) -> bool:
    """Whether a column declared `declared` may hold data of type `found` (None: not judged).

    Example:
        >>> accepts(exp.DType.BIGINT, exp.DType.INT), accepts(exp.DType.BIGINT, exp.DType.TEXT)
        (True, False)
    """
    if found is None or declared not in _ACCEPTED:
        return True
    return found in _ACCEPTED[declared]


def joins(key: exp.DType, found: exp.DType | None) -> bool:
    """Whether a column of type `found` compares safely with a join key of type `key`.

    Example:
        >>> joins(exp.DType.BIGINT, exp.DType.INT), joins(exp.DType.BIGINT, exp.DType.VARCHAR)
        (True, False)
    """
    if found is None or found == key:
        return True
    family = next((f for f in _FAMILIES if key in f), None)
    return family is not None and found in family


def suggested_type(found: exp.DType | None) -> str | None:
    """The fsql type to declare for data of type `found`, if fsql has one."""
    for types, name in (*_SUGGESTED, *_SUGGESTED_TIMES):
        if found in types:
            return name
    return None


def cast_sql(name: str, type_: exp.DType, dialect: str) -> str:
    """`CAST(name AS type) AS name` in a dialect: the fix a message suggests (quoted unless lowercase).

    Example:
        >>> cast_sql("driver_id", exp.DType.BIGINT, "spark"), cast_sql("UserId", exp.DType.TEXT, "postgres")
        ('CAST(driver_id AS BIGINT) AS driver_id', 'CAST("UserId" AS TEXT) AS "UserId"')
    """
    quoted = not _PLAIN_NAME.match(name)
    cast = exp.cast(exp.column(exp.to_identifier(name, quoted=quoted)), data_type(type_))
    return exp.alias_(cast, exp.to_identifier(name, quoted=quoted)).sql(dialect)


def declared_label(type_: exp.DType | None) -> str:
    """An fsql type as users write it (`bigint`, `int32`, `string`)."""
    return {_T.TEXT: "string", _T.BOOLEAN: "bool"}.get(type_, type_label(type_)) if type_ else "?"


_ARROW_TYPES = (
    (pa.types.is_int8, _T.TINYINT),
    (pa.types.is_int16, _T.SMALLINT),
    (pa.types.is_int32, _T.INT),
    (pa.types.is_int64, _T.BIGINT),
    (pa.types.is_uint8, _T.UTINYINT),
    (pa.types.is_uint16, _T.USMALLINT),
    (pa.types.is_uint32, _T.UINT),
    (pa.types.is_uint64, _T.UBIGINT),
    (lambda t: pa.types.is_float16(t) or pa.types.is_float32(t), _T.FLOAT),
    (pa.types.is_float64, _T.DOUBLE),
    (pa.types.is_decimal, _T.DECIMAL),
    (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t), _T.TEXT),
    (pa.types.is_boolean, _T.BOOLEAN),
    (pa.types.is_date, _T.DATE),
    (pa.types.is_time, _T.TIME),
    (pa.types.is_duration, _T.INTERVAL),
    (lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t), _T.VARBINARY),
    (lambda t: pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t), _T.ARRAY),
    (pa.types.is_struct, _T.STRUCT),
    (pa.types.is_map, _T.MAP),
)


def arrow_type(type_: pa.DataType) -> exp.DType | None:
    """The canonical type of an arrow type (a parquet footer's), or None for one not judged (null).

    Example:
        >>> arrow_type(pa.timestamp("us", tz="UTC")), arrow_type(pa.int32())
        (<DType.TIMESTAMPTZ: 'TIMESTAMPTZ'>, <DType.INT: 'INT'>)
    """
    if pa.types.is_timestamp(type_):
        return _T.TIMESTAMPTZ if type_.tz else _T.TIMESTAMP
    return next((canonical for matches, canonical in _ARROW_TYPES if matches(type_)), None)

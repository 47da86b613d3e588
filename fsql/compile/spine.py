"""The spine: the rows a training set is asked for (entity keys, a timestamp, labels)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from fsql.column_types import cast_sql, declared_label, joins, read_type
from fsql.errors import CompileError

if TYPE_CHECKING:
    from fsql.compile.request import ViewRequest

DEFAULT_SPINE_TABLE = "spine"
DEFAULT_SPINE_TIMESTAMP = "event_timestamp"
SPINE_FILE_SUFFIXES = (".parquet", ".pq", ".csv", ".csv.gz", ".tsv")
_TABLE_NAME = re.compile(r"^[A-Za-z_][\w$-]*(\.[A-Za-z_][\w$-]*){0,2}$")


@dataclass(frozen=True)
class Spine:
    """A spine relation, the name of its timestamp column, and its columns when known."""

    relation: exp.Expression
    timestamp: str = DEFAULT_SPINE_TIMESTAMP
    columns: tuple[str, ...] | None = None
    # The spine's earliest and latest timestamp, when measured: strategies that bound the
    # feature scans with them then emit constants (BigQuery prunes partitions on constants only).
    bounds: tuple[datetime, datetime] | None = None
    # The type of each of `columns` as the engine writes it, when probed (see check_spine_types).
    types: tuple[str, ...] | None = None


def spine_relation(text: str, dialect: str) -> exp.Expression:
    """Read a spine given as a SELECT, a parquet/CSV path, or a table name.

    Example:
        >>> spine_relation("analytics.labels", "duckdb").sql("duckdb")
        'analytics.labels'
    """
    stripped = text.strip()
    if stripped.lower().endswith(SPINE_FILE_SUFFIXES):
        path = exp.Literal.string(stripped)
        file_format = "parquet" if stripped.lower().endswith((".parquet", ".pq")) else "csv"
        from fsql.compile.strategy import readable_file_formats  # strategy -> context -> spine

        readable = readable_file_formats(dialect)
        if file_format not in readable:
            formats = " or ".join(sorted(readable))
            can = f"{dialect} reads {formats} spine files only" if readable else f"{dialect} cannot scan files"
            raise CompileError(f"a {file_format} spine file ('{stripped}'): {can}; give a table or a SELECT")
        scan = exp.ReadParquet(expressions=[path]) if file_format == "parquet" else exp.ReadCSV(this=path)
        return exp.Table(this=scan)
    if _TABLE_NAME.match(stripped):
        return exp.to_table(stripped, dialect=dialect)
    try:
        statements = sqlglot.parse(stripped, read=dialect)
    except ParseError as exc:
        raise CompileError(f"the spine is neither a table name, a .parquet/.csv path nor valid SQL: {exc}") from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise CompileError("a spine given as SQL must be exactly one SELECT query")
    return statements[0].subquery(exp.to_identifier("spine_query", quoted=True))


def query_columns(relation: exp.Expression) -> tuple[str, ...] | None:
    """The output columns of a spine SELECT when they can be read off it, else None."""
    if not isinstance(relation, exp.Subquery) or not isinstance(relation.this, exp.Query):
        return None
    names = []
    for projection in relation.this.selects:
        if isinstance(projection, exp.Star) or (isinstance(projection, exp.Column) and projection.is_star):
            return None
        names.append(projection.alias_or_name)
    return tuple(names)


def columns_probe(relation: exp.Expression, dialect: str) -> str:
    """A query returning no rows but the relation's columns: how engines learn a spine's shape."""
    return exp.select("*").from_(relation.copy()).limit(0).sql(dialect)


def bounds_probe(relation: exp.Expression, timestamp: str, dialect: str) -> str:
    """A query for the earliest and latest timestamp of a spine."""
    ts = exp.column(timestamp, quoted=True)
    return exp.select(exp.Min(this=ts), exp.Max(this=ts.copy())).from_(relation.copy()).sql(dialect)


def check_spine_types(spine: Spine, views: Sequence[ViewRequest], dialect: str) -> None:
    """Refuse spine columns that do not compare safely with what they are joined to.

    A join key must be of the entity key's kind (numbers of any width against a number
    key, text against a text key, ...): against a bigint key, a text spine key is cast by
    the engine, so DuckDB matches '007' to 7 and Spark repeats a spine row once for each of
    '01', '1' and ' 1'. The timestamp must be a time (timestamp, timestamptz or date).
    Types the engine names in ways sqlglot cannot read are left to the engine.

    Raises:
        CompileError: naming the spine column, both types, and the cast to write.
    """
    if spine.columns is None or spine.types is None:
        return
    found = dict(zip(spine.columns, spine.types, strict=True))
    ts = found.get(spine.timestamp)
    if ts is not None and not joins(exp.DType.TIMESTAMPTZ, read_type(ts, dialect)):
        raise CompileError(
            f"the spine's timestamp column '{spine.timestamp}' is {ts}, not a time: cast it in the spine's SELECT, "
            f"e.g. {cast_sql(spine.timestamp, exp.DType.TIMESTAMPTZ, dialect)} (naive timestamps are read as UTC)"
        )
    for view in views:
        for key in view.view.join_keys:
            text = found.get(key.name)
            if text is None or key.type is None or joins(key.type, read_type(text, dialect)):
                continue
            raise CompileError(
                f"the spine's column '{key.name}' is {text}, but feature view '{view.view.name}' joins it to its "
                f"{declared_label(key.type)} join key '{key.name}': keys of different kinds do not join safely "
                f"(text against numbers would match '007' to 7, or one spine row to several). Cast it in the "
                f"spine's SELECT, e.g. {cast_sql(key.name, key.type, dialect)}"
            )

"""Relative file paths in sources and spines are relative to the project directory.

DuckDB resolves a relative path against the process's working directory first, so SQL
that fsql runs itself gets its paths anchored at the project root; SQL written for
people (target/compiled/) keeps them relative and portable.
"""

from __future__ import annotations

from pathlib import Path

from sqlglot import exp

FILE_SUFFIXES = (".parquet", ".pq", ".csv", ".csv.gz", ".tsv", ".json", ".ndjson")


def anchor_file_paths(query: exp.Expression, root: Path) -> exp.Expression:
    """Make every relative path read by a file-scanning function absolute under `root`.

    Example:
        >>> import sqlglot
        >>> q = sqlglot.parse_one("SELECT * FROM read_parquet('data/x.parquet')", read="duckdb")
        >>> anchor_file_paths(q, Path("/p")).sql("duckdb")
        "SELECT * FROM READ_PARQUET('/p/data/x.parquet')"
    """
    for node in list(query.find_all(exp.Literal, exp.Identifier)):
        if _is_file_argument(node) and _is_relative(node.this):
            anchored = str(root / node.this)
            node.replace(
                exp.Literal.string(anchored)
                if isinstance(node, exp.Literal)
                else exp.to_identifier(anchored, quoted=True)
            )
    return query


def _is_file_argument(node: exp.Expression) -> bool:
    parent = node.parent
    if isinstance(node, exp.Identifier):
        # FROM 'data/x.parquet': DuckDB reads a quoted file name as a table.
        return bool(node.quoted) and isinstance(parent, exp.Table) and node.this.lower().endswith(FILE_SUFFIXES)
    if not node.is_string:
        return False
    if isinstance(parent, exp.ReadParquet | exp.ReadCSV):
        return True
    return bool(
        isinstance(parent, exp.Anonymous)
        and str(parent.this).lower().startswith("read_")
        and (parent.expressions and parent.expressions[0] is node)
    )


def _is_relative(path: str) -> bool:
    return not (path.startswith(("/", "~")) or "://" in path)

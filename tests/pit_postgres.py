"""A runner that puts the PIT bank (tests/pit_harness.py) on a real Postgres: the lateral strategy.

Each case's feature rows are COPYed into tables of a schema of their own, the definitions
name them with `table:`, and the training set is built through fsql's API on a target
whose offline engine is that Postgres. The result is a `PitResult` like DuckDB's, so
every check of the bank applies.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
from online_helpers import online_url
from pit_harness import PitCase, PitResult, SpineForm
from pit_window import _skip_spine_files, _split_request, write_case_project
from sqlglot import exp

import fsql
from fsql.engines.postgres import copy_arrow, create_table_sql

Runner = Callable[[Path, PitCase, pa.Table, SpineForm, dict[str, Any]], PitResult]


def load_tables(dsn: str, schema: str, tables: dict[str, pa.Table]) -> None:
    with psycopg.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute(exp.Create(this=exp.to_identifier(schema, quoted=True), kind="SCHEMA").sql("postgres"))
        for name, table in tables.items():
            ref = exp.Table(this=exp.to_identifier(name, quoted=True), db=exp.to_identifier(schema, quoted=True))
            cursor.execute(create_table_sql(ref, table.schema))
            copy_arrow(cursor, ref, table)


def drop_schema(dsn: str, schema: str) -> None:
    drop = exp.Drop(
        tables=[exp.Table(db=exp.to_identifier(schema, quoted=True))], kind="SCHEMA", exists=True, cascade=True
    )
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(drop.sql("postgres"))


def postgres_runner(dsn: str) -> Runner:
    """The runner for the Postgres at `dsn` (its tables live only during the call)."""

    def run(root: Path, case: PitCase, spine: pa.Table, spine_form: SpineForm, request: dict[str, Any]) -> PitResult:
        _skip_spine_files(spine_form)
        schema = f"fsql_pit_{uuid.uuid4().hex[:10]}"
        tables = {v.source_name: v.table() for v in case.views}
        if spine_form == "sql":
            tables["spine_rows"] = spine
        load_tables(dsn, schema, tables)
        try:
            write_case_project(
                root, case, dialect="postgres", table_of=lambda v: f"{schema}.{v.source_name}", offline=online_url(dsn)
            )
            project = fsql.load_project(root)
            spine_timestamp, rest = _split_request(request)
            given: Any = spine.to_pandas() if spine_form == "pandas" else spine
            if spine_form == "sql":
                columns = ", ".join(f'"{c}"' for c in spine.column_names)
                given = f'SELECT {columns} FROM "{schema}"."spine_rows"'
            table = project.training_set(spine=given, spine_timestamp=spine_timestamp, **rest)
            sql = project.training_sql(spine="spine", spine_timestamp=spine_timestamp, **rest)
        finally:
            drop_schema(dsn, schema)
        assert "LATERAL" in sql
        return PitResult(table, sql)

    return run

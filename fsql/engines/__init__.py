"""Engines run SQL they are handed and load data; they build no SQL of their own.

`open_engine(target, root)` picks the engine for a target's offline URL. Drivers are
imported lazily inside each engine module, so `fsql --help` stays fast.
"""

from __future__ import annotations

import importlib
from datetime import UTC
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from fsql.errors import ProjectError
from fsql.project import Target


class OfflineEngine(Protocol):
    dialect: str
    url: str
    # Whether a warm Project may keep it open between calls (fsql.engines.kept).
    keepable: bool

    def register_arrow(self, name: str, table: pa.Table) -> None:
        """Make an arrow table readable as `name` in SQL run by this engine."""

    def result_columns(self, sql: str) -> tuple[str, ...]:
        """The output columns of a query (run with LIMIT 0 by the caller)."""

    def result_types(self, sql: str) -> tuple[tuple[str, str], ...]:
        """(name, type as the engine writes it) of each output column of a query, read without
        running it where the engine can (LIMIT 0 by the caller otherwise)."""

    def query_arrow(
        self, sql: str, *, params: dict[str, Any] | None = None, sql_path: Path | None = None, node: str | None = None
    ) -> pa.Table:
        """Run one query, with named parameters bound, and return its result."""

    def query_batches(
        self,
        sql: str,
        *,
        params: dict[str, Any] | None = None,
        sql_path: Path | None = None,
        node: str | None = None,
        rows_per_batch: int = ...,
    ) -> pa.RecordBatchReader:
        """Run one query and return its result as a stream of record batches of at most
        `rows_per_batch` rows (read it to the end, or close it, before the next query)."""

    def execute(self, sql: str) -> None:
        """Run a statement whose result is not wanted."""

    def is_database(self, postgres_url: str) -> bool:
        """Whether this engine's queries run in the Postgres database at `postgres_url`, so that
        rows can move from one to the other in SQL alone."""

    def broken(self) -> bool:
        """Whether the connection was lost (the server closed it): the engine must be reopened."""

    def close(self) -> None: ...


# Rows per record batch when a result streams (materialization reads DuckDB's result and COPYs
# it into Postgres one batch at a time): 100k rows is ~10-20 MB of arrow and CSV for a
# typical view; see benchmarks/RESULTS.md "Materialization at scale" for the sizes measured.
ROWS_PER_BATCH = 100_000


def batches_of(table: pa.Table, rows_per_batch: int) -> pa.RecordBatchReader:
    """A whole result as a stream of batches, for engines whose driver does not stream: the
    result is in memory once, the caller's work on it (CSV, COPY) is done batch by batch."""
    return pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=rows_per_batch))


class WholeResultBatches:
    """`query_batches` for an engine whose driver does not stream: its `query_arrow`, then the batches."""

    def query_arrow(
        self, sql: str, *, params: dict[str, Any] | None = None, sql_path: Path | None = None, node: str | None = None
    ) -> pa.Table:
        raise NotImplementedError

    def query_batches(
        self,
        sql: str,
        *,
        params: dict[str, Any] | None = None,
        sql_path: Path | None = None,
        node: str | None = None,
        rows_per_batch: int = ROWS_PER_BATCH,
    ) -> pa.RecordBatchReader:
        """The whole result, then its batches (this engine does not stream yet)."""
        table = self.query_arrow(sql, params=params, sql_path=sql_path, node=node)
        return batches_of(table, rows_per_batch)


# dialect -> "module:Class" of its engine; modules are imported only when used.
ENGINES = {
    "duckdb": "fsql.engines.duckdb:DuckDBEngine",
    "postgres": "fsql.engines.postgres:PostgresEngine",
    "bigquery": "fsql.engines.bigquery:BigQueryEngine",
    "spark": "fsql.engines.spark:SparkEngine",
}


def open_engine(target: Target, root: Path) -> OfflineEngine:
    """Open the offline engine of a target.

    Raises:
        ProjectError: no engine exists here for the target's dialect.
    """
    if target.dialect not in ENGINES:
        raise ProjectError(
            f"target '{target.name}': fsql cannot run queries on {target.dialect} yet; compile the SQL with "
            f"`fsql compile --dialect {target.dialect}` and run it there, or use a duckdb or postgres target"
        )
    module_name, class_name = ENGINES[target.dialect].split(":")
    engine_class = getattr(importlib.import_module(module_name), class_name)
    # Only DuckDB targets have settings (fsql.project refuses them on others).
    options = {"settings": target.settings} if target.settings else {}
    engine: OfflineEngine = engine_class(target.offline_url, root=root, **options)
    return engine


def python_rows(table: pa.Table) -> list[dict[str, Any]]:
    """`table.to_pylist()`, zoned timestamps as aware UTC datetimes, without pyarrow's pandas import.

    pyarrow imports pandas (about 0.35 s) to convert any zoned timestamp to Python; the columns
    are made naive UTC first, in arrow, and the zone put back on each value.
    """
    zoned = [f.name for f in table.schema if pa.types.is_timestamp(f.type) and f.type.tz is not None]
    for name in zoned:
        unit = table.schema.field(name).type.unit
        naive = table.column(name).cast(pa.timestamp(unit, tz="UTC")).cast(pa.timestamp(unit))
        table = table.set_column(table.schema.get_field_index(name), name, naive)
    rows = table.to_pylist()
    for row in rows:
        for name in zoned:
            if row[name] is not None:
                row[name] = row[name].replace(tzinfo=UTC)
    return rows

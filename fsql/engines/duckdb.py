"""The embedded DuckDB engine: runs compiled SQL, returns arrow.

Every session runs with TimeZone 'UTC' (so naive timestamps compare as UTC instants) and
with file_search_path at the project root (so relative file paths in sources resolve the
same wherever fsql is started). The target's `settings:` (memory_limit, temp_directory,
threads, ...) are DuckDB's configuration at connect; DuckDB judges their names and values,
and a refusal is reported at the setting's line in profiles.yml.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlalchemy.engine import make_url

from fsql.engines import ROWS_PER_BATCH
from fsql.errors import ExecutionError, ProjectError, did_you_mean
from fsql.project import EngineSetting


class DuckDBEngine:
    dialect = "duckdb"

    def __init__(self, url: str, *, root: Path, settings: tuple[EngineSetting, ...] = ()) -> None:
        self.url = url
        import duckdb

        self._duckdb = duckdb
        database = make_url(url).database or ":memory:"
        if database != ":memory:":
            path = Path(database)
            path = path if path.is_absolute() else root / path
            path.parent.mkdir(parents=True, exist_ok=True)
            database = str(path)
        # A database file stays closed between calls: an open connection would hold its lock
        # against other processes (`fsql build` from a shell) and other configurations.
        self.keepable = database == ":memory:"
        config: dict[str, Any] = {setting.name: setting.value for setting in settings}
        _make_parent_of_temp_directory(config)
        try:
            self.connection = duckdb.connect(database, config=config)
        except duckdb.Error as exc:
            refused = _refused_setting(duckdb, settings) if settings else None
            raise refused or ProjectError(f"cannot open DuckDB database {database}: {exc}") from None
        self.connection.execute("SET TimeZone = 'UTC'")
        self.connection.execute("SET file_search_path = ?", [str(root)])

    def register_arrow(self, name: str, table: Any) -> None:
        self.connection.register(name, table)

    def result_columns(self, sql: str) -> tuple[str, ...]:
        return tuple(self.query_arrow(sql).column_names)

    def result_types(self, sql: str) -> tuple[tuple[str, str], ...]:
        """Bound, not run: a parquet footer, a CSV sniff or a catalog lookup."""
        try:
            relation = self.connection.sql(sql)
            return tuple(zip(relation.columns, map(str, relation.types), strict=True))
        except self._duckdb.Error as exc:
            raise ExecutionError(f"DuckDB failed: {exc}") from None

    def query_arrow(
        self, sql: str, *, params: dict[str, Any] | None = None, sql_path: Path | None = None, node: str | None = None
    ) -> pa.Table:
        try:
            return self.connection.sql(sql, params=params).to_arrow_table()
        except self._duckdb.Error as exc:
            raise ExecutionError(f"DuckDB failed: {exc}", node=node, sql_path=sql_path) from None

    def query_batches(
        self,
        sql: str,
        *,
        params: dict[str, Any] | None = None,
        sql_path: Path | None = None,
        node: str | None = None,
        rows_per_batch: int = ROWS_PER_BATCH,
    ) -> pa.RecordBatchReader:
        """DuckDB streams its result: the batches are made as they are read, never all at once."""
        try:
            reader = self.connection.sql(sql, params=params).to_arrow_reader(rows_per_batch)
        except self._duckdb.Error as exc:
            raise ExecutionError(f"DuckDB failed: {exc}", node=node, sql_path=sql_path) from None
        return pa.RecordBatchReader.from_batches(reader.schema, self._read(reader, node=node, sql_path=sql_path))

    def _read(self, reader: pa.RecordBatchReader, *, node: str | None, sql_path: Path | None) -> Iterator[Any]:
        # An error while the query runs (a cast, a file gone) comes out of the arrow stream.
        try:
            yield from reader
        except (self._duckdb.Error, pa.ArrowException, OSError) as exc:
            raise ExecutionError(f"DuckDB failed: {exc}", node=node, sql_path=sql_path) from None
        finally:
            reader.close()

    def execute(self, sql: str) -> None:
        try:
            self.connection.execute(sql).fetchall()
        except self._duckdb.Error as exc:
            raise ExecutionError(f"DuckDB failed: {exc}") from None

    def is_database(self, postgres_url: str) -> bool:
        return False

    def broken(self) -> bool:
        return False

    def close(self) -> None:
        self.connection.close()


def _make_parent_of_temp_directory(config: dict[str, Any]) -> None:
    """DuckDB makes its temp directory when it first spills (and removes it on close), but
    not the directories above it: target/ may not exist yet."""
    temp = next((value for name, value in config.items() if name.lower() == "temp_directory"), "")
    if isinstance(temp, str) and temp:
        with contextlib.suppress(OSError):  # read-only: DuckDB says so if it ever needs to spill
            Path(temp).parent.mkdir(parents=True, exist_ok=True)


def _refused_setting(duckdb: Any, settings: tuple[EngineSetting, ...]) -> ProjectError | None:
    """The error for the first setting DuckDB refuses on its own (None: they all pass alone)."""
    for setting in settings:
        try:
            duckdb.connect(":memory:", config={setting.name: setting.value}).close()
        except duckdb.Error as exc:
            return ProjectError(_refusal(duckdb, setting, exc))
    return None


def _refusal(duckdb: Any, setting: EngineSetting, exc: Exception) -> str:
    names = [row[0] for row in duckdb.connect(":memory:").sql("SELECT name FROM duckdb_settings()").fetchall()]
    if setting.name.lower() not in names:
        return (
            f"{setting.origin}: unknown DuckDB setting '{setting.name}'.{did_you_mean(setting.name, names)} "
            f"The names DuckDB knows: SELECT name FROM duckdb_settings()"
        )
    return f"{setting.origin}: DuckDB refused {setting.name} {setting.value!r}: {exc}"

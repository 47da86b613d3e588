"""Runners that put the PIT bank (tests/pit_harness.py) on the window strategy.

- `run_bigquery_on_duckdb`: compile for BigQuery, check the SQL parses back with sqlglot's
  BigQuery dialect, transpile it to DuckDB and execute it there. The live BigQuery path
  is checked this way, not against BigQuery itself.
- `run_spark`: build the training set through fsql's API on a Spark target, in one local
  pyspark session shared by the whole test session (`spark_session()`).

Both lay the case's sources out as tables named the way those engines name tables, and
return a `PitResult` like the harness's DuckDB runner, so every check of the bank applies.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
import tempfile
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot
from pit_harness import ENGINES, PitCase, PitResult, SpineForm

import fsql

BQ_PROJECT = "fsql-pit"  # a BigQuery project id with a hyphen, as many have
BQ_DATASET = "features"
SPARK_DATABASE = "fsql_pit"


Runner = Callable[[Path, PitCase, pa.Table, SpineForm, dict[str, Any]], PitResult]


@contextlib.contextmanager
def registered(name: str, runner: Runner) -> Iterator[str]:
    """The harness's runner registry holding `runner` as `name`, for one call of its helpers.

    Registered for the duration only: the bank's own modules read the registry when they
    are collected and run, and must keep running on DuckDB alone.
    """
    ENGINES[name] = runner
    try:
        yield name
    finally:
        del ENGINES[name]


def write_case_project(root: Path, case: PitCase, *, dialect: str, table_of: Any, offline: str | None = None) -> None:
    """fsql_project.yml (sources' SQL in `dialect`), profiles.yml and the definitions of a case."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "fsql_project.yml").write_text(f"name: t\nprofile: t\ndialect: {dialect}\n")
    if offline is not None:
        profile = {"t": {"target": "dev", "outputs": {"dev": {"offline": offline}}}}
        (root / "profiles.yml").write_text(json.dumps(profile) + "\n")
    definitions = case.definitions(lambda view: {"table": table_of(view)})
    (root / "definitions").mkdir(exist_ok=True)
    (root / "definitions" / "defs.yml").write_text(json.dumps(definitions, indent=2, default=str) + "\n")


def _split_request(request: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    rest = {k: v for k, v in request.items() if k != "spine_timestamp"}
    return request.get("spine_timestamp", "ts"), rest


def _skip_spine_files(spine_form: SpineForm) -> None:
    if spine_form == "parquet":
        pytest.skip("a spine file is read by engines that scan files (DuckDB, Spark); fsql refuses it here")


# --- BigQuery, transpiled to DuckDB and executed -----------------------------------------


def bigquery_table(name: str) -> str:
    return f"{BQ_PROJECT}.{BQ_DATASET}.{name}"


def to_duckdb(bigquery_sql: str) -> str:
    """The BigQuery query as DuckDB runs it; `identify` quotes the hyphenated project id."""
    parsed = sqlglot.parse_one(bigquery_sql, read="bigquery")
    return parsed.sql("duckdb", identify=True)


def duckdb_with_bigquery_tables(tables: dict[str, pa.Table]) -> duckdb.DuckDBPyConnection:
    """A DuckDB session (UTC) holding each table at its BigQuery name project.dataset.table."""
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute(f"ATTACH ':memory:' AS \"{BQ_PROJECT}\"")
    connection.execute(f'CREATE SCHEMA "{BQ_PROJECT}"."{BQ_DATASET}"')
    for name, table in tables.items():
        connection.register("_fsql_load", table)
        connection.execute(f'CREATE TABLE "{BQ_PROJECT}"."{BQ_DATASET}"."{name}" AS SELECT * FROM _fsql_load')
        connection.unregister("_fsql_load")
    return connection


def run_bigquery_on_duckdb(
    root: Path, case: PitCase, spine: pa.Table, spine_form: SpineForm, request: dict[str, Any]
) -> PitResult:
    _skip_spine_files(spine_form)
    write_case_project(root, case, dialect="bigquery", table_of=lambda v: bigquery_table(v.source_name))
    spine_timestamp, rest = _split_request(request)
    spine_sql = bigquery_table("spine")
    if spine_form == "sql":
        columns = ", ".join(f"`{name}`" for name in spine.column_names)
        spine_sql = f"SELECT {columns} FROM `{BQ_PROJECT}`.{BQ_DATASET}.spine"
    compiled, _ = fsql.load_project(root).compile(
        dialect="bigquery", spine=spine_sql, spine_timestamp=spine_timestamp, **rest
    )
    assert compiled.strategy == "window"
    check_bigquery_sql(compiled.sql)
    tables = {v.source_name: v.table() for v in case.views}
    tables["spine"] = spine
    connection = duckdb_with_bigquery_tables(tables)
    try:
        result = connection.sql(to_duckdb(compiled.sql)).to_arrow_table()
    finally:
        connection.close()
    return PitResult(result, compiled.sql)


def check_bigquery_sql(sql: str) -> None:
    """The query parses back with sqlglot's BigQuery dialect and never uses DATETIME."""
    parsed = sqlglot.parse_one(sql, read="bigquery")
    assert isinstance(parsed, sqlglot.exp.Query)
    assert "DATETIME" not in sql.upper(), "BigQuery timestamps must be TIMESTAMP (UTC instants)"


# --- Spark, local --------------------------------------------------------------------------


@functools.cache
def spark_session() -> Any:
    """One local Spark session for the test session (UTC, small shuffles, no UI)."""
    if os.environ.get("CI"):
        import pyspark.sql as pyspark_sql  # CI runs the Spark tests: a missing pyspark fails them
    else:
        pyspark_sql = pytest.importorskip("pyspark.sql", reason="pyspark is not installed (pip install 'fsql[spark]')")
    os.environ.setdefault("TZ", "UTC")
    return (
        pyspark_sql.SparkSession.builder.master("local[2]")
        .appName("fsql-tests")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.warehouse.dir", tempfile.mkdtemp(prefix="fsql-spark-warehouse-"))
        .getOrCreate()
    )


def spark_view(name: str, table: pa.Table) -> None:
    """Make an arrow table a temporary view of the shared session, types kept (see the engine)."""
    from fsql.engines.spark import SparkEngine

    SparkEngine.from_session(spark_session()).register_arrow(name, table)


def run_spark(root: Path, case: PitCase, spine: pa.Table, spine_form: SpineForm, request: dict[str, Any]) -> PitResult:
    prefix = f"pit{abs(hash(root)) % 10**8}_"  # temporary views are per session: keep cases apart
    for view in case.views:
        spark_view(prefix + view.source_name, view.table())
    write_case_project(root, case, dialect="spark", table_of=lambda v: prefix + v.source_name, offline="spark://local")
    project = fsql.load_project(root)
    spine_timestamp, rest = _split_request(request)
    given: Any = spine.to_pandas() if spine_form == "pandas" else spine
    if spine_form == "sql":
        spark_view(prefix + "spine", spine)
        given = f"SELECT {', '.join(f'`{c}`' for c in spine.column_names)} FROM {prefix}spine"
    elif spine_form == "parquet":
        pq.write_table(spine, root / "spine.parquet")  # Spark scans a parquet spine as parquet.`path`
        given = str(root / "spine.parquet")
    table = project.training_set(spine=given, spine_timestamp=spine_timestamp, **rest)
    sql = project.training_sql(spine="spine", spine_timestamp=spine_timestamp, **rest)
    return PitResult(table, sql)


# --- BigQuery through its client: a real endpoint or the local emulator ------------------------

BIGQUERY_URL_VARIABLE = "FSQL_TEST_BIGQUERY_URL"


def bigquery_url() -> str:
    """The BigQuery target of the tests, e.g. bigquery://demo/fsql_pit?api_endpoint=http://127.0.0.1:9050."""
    url = os.environ.get(BIGQUERY_URL_VARIABLE)
    if not url:
        message = f"set {BIGQUERY_URL_VARIABLE} to a BigQuery URL with a dataset (a bqemulator will do)"
        if os.environ.get("CI"):  # CI starts an emulator (.ci/bigquery-emulator): these tests must run there
            pytest.fail(message)
        pytest.skip(message)
    return url


@functools.cache
def bigquery_engine() -> Any:
    """One engine on the test dataset (created if missing), for loading case tables."""
    from fsql.engines.bigquery import BigQueryEngine

    engine = BigQueryEngine(bigquery_url(), root=Path.cwd())
    assert engine.dataset is not None, f"{BIGQUERY_URL_VARIABLE} must name a dataset: bigquery://<project>/<dataset>"
    engine.client.create_dataset(engine.dataset, exists_ok=True)
    return engine


def run_bigquery(
    root: Path, case: PitCase, spine: pa.Table, spine_form: SpineForm, request: dict[str, Any]
) -> PitResult:
    """The case through fsql's API on a BigQuery target: tables loaded, spine loaded, SQL run by the client."""
    _skip_spine_files(spine_form)
    engine = bigquery_engine()
    prefix = f"pit{abs(hash(root)) % 10**8}_"
    for view in case.views:
        engine.register_arrow(prefix + view.source_name, view.table())
    table_of = lambda v: f"{engine.dataset}.{prefix}{v.source_name}"  # noqa: E731
    write_case_project(root, case, dialect="bigquery", table_of=table_of, offline=bigquery_url())
    project = fsql.load_project(root)
    spine_timestamp, rest = _split_request(request)
    given: Any = spine.to_pandas() if spine_form == "pandas" else spine
    if spine_form == "sql":
        engine.register_arrow(prefix + "spine", spine)
        given = f"SELECT {', '.join(f'`{c}`' for c in spine.column_names)} FROM {engine.dataset}.{prefix}spine"
    table = project.training_set(spine=given, spine_timestamp=spine_timestamp, **rest)
    return PitResult(table, project.training_sql(spine="spine", spine_timestamp=spine_timestamp, **rest))


def rule_tests(module: ModuleType, *, marks: dict[str, Any] | None = None) -> dict[str, Callable[..., Any]]:
    """Copies of a module's tests that take the `run` fixture, to collect again under another runner.

    Copies, because a mark set on a function object would mark it in its own module too;
    `marks` maps a test name to extra marks for this copy only (e.g. an xfail).
    """
    copies: dict[str, Callable[..., Any]] = {}
    for name, test in vars(module).items():
        if not (name.startswith("test_") and "run" in inspect.signature(test).parameters):
            continue
        copy = types.FunctionType(test.__code__, test.__globals__, name, test.__defaults__, test.__closure__)
        copy.__dict__.update({**test.__dict__, "pytestmark": list(getattr(test, "pytestmark", []))})
        copy.__kwdefaults__ = test.__kwdefaults__
        for mark in (marks or {}).get(name, ()):
            copy = mark(copy)
        copies[name] = copy
    return copies

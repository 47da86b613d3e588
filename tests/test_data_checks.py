"""Definitions checked against their data: files exist, declared columns hold their types, spine keys join safely.

`fsql validate` (and compile, train, build) reads the schema of every file and table
source on the target's offline engine (no scan) and refuses, at the source's file:line, a
missing file, a missing column, or a type its declaration does not accept; a training
spine whose key is text against a number key is refused before the query runs.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import fsql
from fsql.cli import app
from fsql.errors import CompileError, DefinitionError, ProjectError

T = datetime(2024, 3, 10, 12)
DEFINITIONS = """
entities:
  - name: driver
    join_keys: [{name: driver_id, type: bigint}]
sources:
  - name: stats
    path: data/stats.parquet
    timestamp: event_ts
    columns: {driver_id: bigint, event_ts: timestamp, trips: bigint, rate: double}
feature_views:
  - name: driver_stats
    entities: [driver]
    source: stats
    features:
      - {name: trips, type: bigint}
      - {name: rate, type: double}
"""
# What each declared column holds in the file unless a test says otherwise.
COLUMNS: dict[str, tuple[pa.DataType, Any]] = {
    "driver_id": (pa.int64(), 7),
    "event_ts": (pa.timestamp("us"), T),
    "trips": (pa.int64(), 3),
    "rate": (pa.float64(), 0.5),
}
SPINE = pa.table({"driver_id": pa.array([7], pa.int64()), "event_timestamp": pa.array([T], pa.timestamp("us"))})
runner = CliRunner()


def write_project(root: Path, definitions: str = DEFINITIONS, *, offline: str = "duckdb:///:memory:") -> Path:
    (root / "definitions").mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    (root / "fsql_project.yml").write_text("name: t\n")
    (root / "profiles.yml").write_text(f"t:\n  target: dev\n  outputs:\n    dev:\n      offline: '{offline}'\n")
    (root / "definitions" / "defs.yml").write_text(definitions)
    return root


def write_stats(root: Path, **changed: tuple[pa.DataType, Any] | None) -> None:
    """data/stats.parquet with one row: COLUMNS, with some (type, value) changed, or dropped (None)."""
    columns = {**COLUMNS, **changed}
    arrays = {name: pa.array([value], kind) for name, spec in columns.items() if spec for kind, value in [spec]}
    pq.write_table(pa.table(arrays), root / "data" / "stats.parquet")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "p")


# --- files and columns ------------------------------------------------------------------------------


def test_validate_refuses_a_missing_file_at_the_sources_line(project: Path) -> None:
    with pytest.raises(DefinitionError) as raised:
        fsql.load_project(project).validate()
    assert str(raised.value) == (
        f"definitions/defs.yml:6:5: source 'stats' reads file data/stats.parquet, which does not exist (relative "
        f"paths are relative to the project directory, {project}). Create the file, or fix 'path:'; to check the "
        f"definitions without their data, pass --no-data-checks."
    )
    assert fsql.load_project(project, data_checks=False).validate().sources["stats"].location == "data/stats.parquet"


def test_cli_validate_exits_2_on_a_missing_file_and_no_data_checks_skips_the_check(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failed = runner.invoke(app, ["--project-dir", str(project), "validate"])
    assert failed.exit_code == 2
    assert (
        "definitions/defs.yml:6:5: source 'stats' reads file data/stats.parquet, which does not exist" in failed.stderr
    )
    skipped = runner.invoke(app, ["--project-dir", str(project), "validate", "--no-data-checks"])
    assert skipped.exit_code == 0, skipped.output
    assert "checked" not in skipped.stderr
    monkeypatch.setenv("FSQL_NO_DATA_CHECKS", "1")
    assert runner.invoke(app, ["--project-dir", str(project), "validate"]).exit_code == 0
    write_stats(project)
    monkeypatch.delenv("FSQL_NO_DATA_CHECKS")
    checked = runner.invoke(app, ["--project-dir", str(project), "validate"])
    assert checked.exit_code == 0, checked.output
    assert "checked 1 file or table source against the data on duckdb in " in checked.stderr


def test_a_column_declared_bigint_that_holds_strings_is_refused_naming_both_types(project: Path) -> None:
    write_stats(project, trips=(pa.string(), "3"))
    expected = (
        "definitions/defs.yml:6:5: source 'stats' declares column 'trips' as bigint, but file data/stats.parquet "
        "holds VARCHAR there. Declare it as string, or read the file through a SQL source that casts it, e.g. "
        "CAST(trips AS BIGINT) AS trips."
    )
    with pytest.raises(DefinitionError) as raised:
        fsql.load_project(project).validate()
    assert str(raised.value) == expected
    # Training used to return the strings as they were, in a column fsql had called bigint.
    with pytest.raises(DefinitionError) as raised:
        fsql.load_project(project).training_set(features=["driver_stats"], spine=SPINE)
    assert str(raised.value) == expected
    unchecked = fsql.load_project(project, data_checks=False).training_set(features=["driver_stats"], spine=SPINE)
    assert unchecked.column("trips").to_pylist() == ["3"]


def test_a_declared_column_the_file_lacks_is_named_with_the_files_columns(project: Path) -> None:
    definitions = DEFINITIONS.replace("rate: double}", "rate: double, tips: double}")
    (project / "definitions" / "defs.yml").write_text(definitions)
    write_stats(project)
    with pytest.raises(DefinitionError) as raised:
        fsql.load_project(project).validate()
    assert str(raised.value) == (
        "definitions/defs.yml:6:5: source 'stats' declares column 'tips' (double), but file data/stats.parquet has "
        "no such column. Did you mean 'trips'? The file's columns: driver_id, event_ts, trips, rate. Put the column "
        "back in the file, or remove it from 'columns:'."
    )
    # A run checks only what it reads: 'tips' is read by no feature.
    assert fsql.load_project(project).training_set(features=["driver_stats"], spine=SPINE).num_rows == 1


@pytest.mark.parametrize(
    ("column", "kind", "value"),
    [
        ("trips", pa.int32(), 3),
        ("trips", pa.int8(), 3),
        ("trips", pa.uint32(), 3),
        ("driver_id", pa.int16(), 7),
        ("rate", pa.float32(), 0.5),
        ("rate", pa.int64(), 1),
        ("rate", pa.decimal128(10, 2), Decimal("0.50")),
        ("event_ts", pa.timestamp("ns", tz="Europe/Berlin"), T),
        ("event_ts", pa.date32(), T.date()),
    ],
    ids=lambda v: str(v),
)
def test_compatible_types_pass(project: Path, column: str, kind: pa.DataType, value: Any) -> None:
    write_stats(project, **{column: (kind, value)})
    fsql.load_project(project).validate()
    assert fsql.load_project(project).training_set(features=["driver_stats"], spine=SPINE).num_rows == 1


@pytest.mark.parametrize(
    ("column", "kind", "value", "holds", "declare"),
    [
        ("trips", pa.uint64(), 3, "UBIGINT", "double"),
        ("trips", pa.float64(), 3.0, "DOUBLE", "double"),
        ("rate", pa.string(), "0.5", "VARCHAR", "string"),
        ("rate", pa.bool_(), True, "BOOLEAN", "bool"),
        ("event_ts", pa.string(), "2024-03-10", "VARCHAR", "string"),
        ("driver_id", pa.list_(pa.int64()), [7], "BIGINT[]", None),
    ],
    ids=lambda v: str(v),
)
def test_incompatible_types_are_refused(
    project: Path, column: str, kind: pa.DataType, value: Any, holds: str, declare: str | None
) -> None:
    write_stats(project, **{column: (kind, value)})
    with pytest.raises(DefinitionError) as raised:
        fsql.load_project(project).validate()
    message = str(raised.value)
    assert f"declares column '{column}' as " in message
    assert f"but file data/stats.parquet holds {holds} there." in message
    assert (f"Declare it as {declare}, or read" if declare else "fsql has no type for it: read") in message


def test_a_source_key_holding_text_is_refused_against_a_bigint_entity_key(project: Path) -> None:
    (project / "definitions" / "defs.yml").write_text(DEFINITIONS.replace("{driver_id: bigint,", "{driver_id: string,"))
    write_stats(project, driver_id=(pa.string(), "007"))
    with pytest.raises(DefinitionError) as raised:
        fsql.load_project(project).validate()
    assert str(raised.value) == (
        "definitions/defs.yml:6:5: feature view 'driver_stats': its join key 'driver_id' is bigint, but source "
        "'stats' reads it from file data/stats.parquet, which holds VARCHAR there; keys of different kinds do not "
        "join safely (text against numbers would match '007' to 7). Cast it in a SQL source, e.g. "
        "CAST(driver_id AS BIGINT) AS driver_id, or change the entity's key type."
    )


def test_compile_checks_the_sources_it_reads_for_the_targets_own_dialect_only(project: Path) -> None:
    with pytest.raises(DefinitionError, match="which does not exist"):
        fsql.load_project(project).compile(features=["driver_stats"])
    compiled, _ = fsql.load_project(project).compile(features=["driver_stats"], dialect="bigquery")
    assert compiled.dialect == "bigquery"  # SQL for another warehouse: its data is not the target's


def test_a_duckdb_table_source_missing_from_the_database(project: Path) -> None:
    definitions = DEFINITIONS.replace("path: data/stats.parquet", "table: analytics.stats")
    write_project(project, definitions, offline="duckdb:///wh.duckdb")
    with pytest.raises(DefinitionError) as raised:
        fsql.load_project(project).validate()
    assert str(raised.value) == (
        "definitions/defs.yml:6:5: source 'stats' reads table analytics.stats, which cannot be read (DuckDB failed: "
        'Catalog Error: Table with name "analytics.stats" does not exist because schema "analytics" does not exist). '
        "Fix 'table:', or create it; to check the definitions without their data, pass --no-data-checks."
    )


def test_the_report_says_what_was_checked(project: Path) -> None:
    sql_source = (
        "\n  - name: doubled\n    sql: SELECT driver_id, event_ts, trips * 2 AS trips FROM {{ source('stats') }}"
        "\n    timestamp: event_ts\n"
    )
    (project / "definitions" / "defs.yml").write_text(
        DEFINITIONS.replace("\nfeature_views:", sql_source + "feature_views:")
    )
    write_stats(project)
    validated = fsql.load_project(project)
    validated.validate()
    assert validated.data_report is not None
    assert (validated.data_report.engine, validated.data_report.checked) == ("duckdb", ["stats"])
    assert validated.data_report.skipped == {}
    assert validated.data_report.seconds < 1


def test_build_reports_a_missing_file_on_its_node_without_an_online_store(project: Path) -> None:
    from fsql.build import BuildOptions

    result = fsql.load_project(project).build(BuildOptions(end=T))
    assert [(n.view, n.status) for n in result.nodes] == [("driver_stats", "error")]
    assert "reads file data/stats.parquet, which does not exist" in result.nodes[0].message
    skipped = fsql.load_project(project, data_checks=False).build(BuildOptions(end=T))
    assert [n.status for n in skipped.nodes] == ["skipped"]


# --- engines that fsql does not run here, or runs only when cheap -----------------------------------


def test_spark_without_a_session_reads_parquet_footers(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fsql.schema_readers

    monkeypatch.setattr(fsql.schema_readers, "_spark_session_active", lambda: False)
    table_source = (
        "  - name: other\n    table: db.other\n    timestamp: ts\n    columns: {driver_id: bigint, ts: timestamp}\n"
    )
    write_project(project, DEFINITIONS.replace("feature_views:", table_source + "feature_views:"), offline="spark://")
    write_stats(project, trips=(pa.string(), "3"))
    with pytest.raises(DefinitionError, match=r"'trips' as bigint, but file data/stats.parquet holds string there"):
        fsql.load_project(project).validate()
    write_stats(project)
    validated = fsql.load_project(project)
    validated.validate()
    assert validated.data_report is not None
    assert validated.data_report.checked == ["stats"]
    assert validated.data_report.skipped == {
        "other": "Spark reads it from a table, and no Spark session is active (fsql train checks it)"
    }


def test_an_unreachable_bigquery_target_is_not_checked_and_says_so(project: Path) -> None:
    write_project(project, offline="bigquery://no-such-project/features")
    result = runner.invoke(app, ["--project-dir", str(project), "validate"])
    assert result.exit_code == 0, result.output
    assert "checked 0 file and table sources against the data on bigquery" in result.stderr
    assert "Warning: not checked against the data: stats: bigquery is not reachable (" in result.stderr


def test_an_unreachable_postgres_target_fails_and_says_how_to_skip(project: Path) -> None:
    write_project(project, offline="postgresql+psycopg://nobody@127.0.0.1:1/none")
    with pytest.raises(
        ProjectError,
        match=r"(?s)cannot connect to Postgres .*; to check the definitions without their data, pass --no-data-checks",
    ):
        fsql.load_project(project).validate()


# --- spine keys ---------------------------------------------------------------------------------------


def spine_of(key: pa.Array, ts: pa.Array | None = None) -> pa.Table:
    return pa.table(
        {"driver_id": key, "event_timestamp": ts if ts is not None else pa.array([T] * len(key), pa.timestamp("us"))}
    )


def test_a_text_spine_key_against_a_bigint_key_is_refused(project: Path) -> None:
    write_stats(project)
    spine = spine_of(pa.array(["007", "7", " 7"]))
    with pytest.raises(CompileError) as raised:
        fsql.load_project(project).training_set(features=["driver_stats"], spine=spine)
    # DuckDB used to match all three to driver 7, silently.
    assert str(raised.value) == (
        "the spine's column 'driver_id' is VARCHAR, but feature view 'driver_stats' joins it to its bigint join key "
        "'driver_id': keys of different kinds do not join safely (text against numbers would match '007' to 7, or "
        "one spine row to several). Cast it in the spine's SELECT, e.g. CAST(driver_id AS BIGINT) AS driver_id"
    )
    sql = "SELECT '007' AS driver_id, TIMESTAMP '2024-03-10 12:00' AS event_timestamp"
    with pytest.raises(CompileError, match="the spine's column 'driver_id' is VARCHAR"):
        fsql.load_project(project).training_set(features=["driver_stats"], spine=sql)


@pytest.mark.parametrize("key", [pa.array([7], pa.int32()), pa.array([7], pa.uint16()), pa.array([7.0, None])], ids=str)
def test_spine_keys_of_any_number_type_join_a_bigint_key(project: Path, key: pa.Array) -> None:
    write_stats(project)
    table = fsql.load_project(project).training_set(features=["driver_stats"], spine=spine_of(key))
    assert {row["driver_id"]: row["trips"] for row in table.to_pylist()} == {**dict.fromkeys(key.to_pylist()), 7: 3}


def test_a_spine_timestamp_that_is_text_is_refused(project: Path) -> None:
    write_stats(project)
    spine = spine_of(pa.array([7]), pa.array(["2024-03-10 12:00:00"]))
    with pytest.raises(CompileError, match=r"the spine's timestamp column 'event_timestamp' is VARCHAR, not a time"):
        fsql.load_project(project).training_set(features=["driver_stats"], spine=spine)
    aware = spine_of(pa.array([7]), pa.array([T], pa.timestamp("us", tz="UTC")))
    assert fsql.load_project(project).training_set(features=["driver_stats"], spine=aware).num_rows == 1


# --- Postgres as the offline engine -------------------------------------------------------------------


@pytest.fixture
def postgres_project(tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> Path:
    import psycopg

    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        connection.execute(
            f'CREATE TABLE "{postgres_schema}".stats (driver_id bigint, event_ts timestamp, trips text, rate real)'
        )
        connection.execute(f"INSERT INTO \"{postgres_schema}\".stats VALUES (7, '2024-03-10 11:00', '3', 0.5)")
    definitions = DEFINITIONS.replace("path: data/stats.parquet", f"table: {postgres_schema}.stats")
    return write_project(
        tmp_path / "pg", definitions, offline=postgres_dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    )


def test_postgres_tables_are_checked_through_the_result_description(
    postgres_project: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    import psycopg

    with pytest.raises(DefinitionError) as raised:
        fsql.load_project(postgres_project).validate()
    assert str(raised.value) == (
        f"definitions/defs.yml:6:5: source 'stats' declares column 'trips' as bigint, but table "
        f"{postgres_schema}.stats holds text there. Declare it as string, or read the table through a SQL source "
        f"that casts it, e.g. CAST(trips AS BIGINT) AS trips."
    )
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        connection.execute(f'ALTER TABLE "{postgres_schema}".stats ALTER trips TYPE int USING trips::int')
    project = fsql.load_project(postgres_project)
    project.validate()  # int4 for bigint, real for double
    table = project.training_set(features=["driver_stats"], spine=SPINE)
    assert table.column("trips").to_pylist() == [3]
    with pytest.raises(CompileError, match="the spine's column 'driver_id' is text, but feature view 'driver_stats'"):
        project.training_set(features=["driver_stats"], spine=spine_of(pa.array(["7"])))
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        connection.execute(f'DROP TABLE "{postgres_schema}".stats')
    with pytest.raises(DefinitionError) as raised:
        fsql.load_project(postgres_project).validate()
    assert f'which cannot be read (Postgres failed: relation "{postgres_schema}.stats" does not exist)' in str(
        raised.value
    )


def test_a_file_source_on_postgres_is_checked_in_the_table_named_after_it(tmp_path: Path, postgres_dsn: str) -> None:
    root = write_project(tmp_path / "pg", offline=postgres_dsn.replace("postgresql://", "postgresql+psycopg://", 1))
    with pytest.raises(DefinitionError) as raised:
        fsql.load_project(root).validate()
    assert str(raised.value).startswith(
        "definitions/defs.yml:6:5: source 'stats' reads file data/stats.parquet, which postgres reads from the table "
        '"stats" (named after it), which cannot be read (Postgres failed: relation "stats" does not exist). '
        'Load the file into the table "stats"; to check the definitions without their data, pass --no-data-checks.'
    )


def test_a_spine_file_is_read_where_the_engine_scans_its_format() -> None:
    from fsql.compile.spine import spine_relation

    assert spine_relation("/d/spine.parquet", "spark").sql("spark") == "parquet.`/d/spine.parquet`"
    with pytest.raises(CompileError, match=r"a csv spine file \('s.csv'\): spark reads parquet spine files only"):
        spine_relation("s.csv", "spark")
    with pytest.raises(CompileError, match=r"a parquet spine file \('s.parquet'\): postgres cannot scan files"):
        spine_relation("s.parquet", "postgres")

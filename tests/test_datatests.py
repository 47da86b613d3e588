"""Each kind of data test passes and fails as it should, on DuckDB, a real Postgres, BigQuery
(transpiled to DuckDB and run there) and Spark, with the same results everywhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
import sqlglot
from datatests_helpers import AT, EXPECTED, load_postgres_table, online_url, table, write_project
from pit_window import check_bigquery_sql

import fsql
from fsql.datatests.run import DataTestResult, project_tests, run_test, run_tests
from fsql.datatests.sql import FAILURES


def outcomes(results: list[DataTestResult]) -> dict[str, tuple[str, int]]:
    return {r.test.name: (r.status, r.failures) for r in results}


def test_every_kind_passes_and_fails_on_duckdb(tmp_path: Path) -> None:
    project = fsql.load_project(write_project(tmp_path / "p"))
    run = run_tests(project, at=AT)
    assert outcomes(run.results) == EXPECTED
    assert {r.test.kind for r in run.results} == {
        "not_null", "unique", "accepted_values", "accepted_range", "row_count", "expression", "freshness"
    }  # fmt: skip


def test_failures_say_what_failed_and_bring_a_few_rows(tmp_path: Path) -> None:
    project = fsql.load_project(write_project(tmp_path / "p"))
    by_name = {r.test.name: r for r in run_tests(project, at=AT).results}
    not_null = by_name["not_null_stats_driver_id"]
    assert not_null.message == "1 row with NULL driver_id"
    assert [row["driver_id"] for row in not_null.samples] == [None]
    assert [row["label"] for row in not_null.samples] == ["a"]
    unique = by_name["unique_stats_driver_id_event_ts_created_ts"]
    assert unique.samples == [
        {"driver_id": 1, "event_ts": AT.replace(hour=1), "created_ts": AT.replace(hour=1), "n_records": 2}
    ]
    assert by_name["accepted_range_driver_stats_rate"].message == "1 row with rate not >= 0 and <= 1, e.g. rate=1.5"
    assert by_name["row_count_driver_stats"].message == "4 rows, expected <= 3"
    assert by_name["freshness_stats"].message == (
        "newest event 2024-03-01T04:00:00Z is 3h 0m old at 2024-03-01T07:00:00Z (warn after 2h, error after 1d)"
    )
    assert by_name["expression_driver_stats"].message == "1 row where NOT (rate <= 1)"


def test_no_more_than_a_few_rows_leave_the_engine(tmp_path: Path) -> None:
    rows = [(i, AT, AT, None, "a") for i in range(50)]
    project = fsql.load_project(write_project(tmp_path / "p", rows=rows))
    (result,) = [r for r in run_tests(project, at=AT).results if r.test.name == "not_null_driver_stats_rate"]
    assert result.failures == 50
    assert len(result.samples) == 5


def test_each_test_writes_its_compiled_sql_and_a_dbt_like_result(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p")
    run_tests(fsql.load_project(root), at=AT)
    document = json.loads((root / "target" / "run_results.json").read_text())
    assert set(document["metadata"]) >= {"fsql_schema_version", "generated_at", "invocation_id"}
    results = {r["unique_id"]: r for r in document["results"]}
    assert len(results) == len(EXPECTED)
    result = results["test.accepted_values_driver_stats_label"]
    assert result["status"] == "fail" and result["failures"] == 1
    assert result["compiled_path"] == "target/compiled/duckdb/tests/accepted_values_driver_stats_label.sql"
    assert result["test"] == {
        "kind": "accepted_values",
        "attached_node": "feature_view.driver_stats",
        "feature": "label",
        "columns": ["label"],
        "severity": "error",
        "defined_at": result["test"]["defined_at"],
    }
    _, line, col = result["test"]["defined_at"].split(":")
    written = (root / "definitions" / "defs.yml").read_text().splitlines()[int(line) - 1]
    assert written[int(col) - 1 :].startswith("accepted_values: [a, b, c]")
    sql = (root / result["compiled_path"]).read_text()
    assert "NOT (\n      \"label\" IN ('a', 'b', 'c')" in sql
    # The compiled file runs as it is, from the project directory (relative paths, no parameters).
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute("SET file_search_path = ?", [str(root)])
    assert connection.sql(sql).fetchall()[0][0] == 1


def test_freshness_is_measured_at_the_time_given_and_reads_only_rows_up_to_it(tmp_path: Path) -> None:
    from datatests_helpers import h

    project = fsql.load_project(write_project(tmp_path / "p"))
    freshness = next(t for t in project_tests(project.definitions) if t.name == "freshness_stats")
    engine = _duckdb(project)

    def judged(at: Any) -> tuple[str, str]:
        result = run_test(project, freshness, engine, at=at)
        return result.status, result.message

    assert judged(h(5))[0] == "pass"  # 1h old
    assert judged(h(6))[0] == "pass"  # exactly 2h old: not past warn_after
    assert judged(h(6.5))[0] == "warn"
    assert judged(h(4 + 24))[0] == "warn"  # exactly 1d old: not past error_after
    assert judged(h(4 + 24.5))[0] == "fail"
    assert judged(h(2.5)) == (
        "pass",
        "newest event 2024-03-01T02:00:00Z is 0h 30m old at 2024-03-01T02:30:00Z (warn after 2h, error after 1d)",
    )  # rows after the time measured at are not read
    assert judged(h(0)) == ("fail", "no rows at or before 2024-03-01T00:00:00Z (warn after 2h, error after 1d)")
    engine.close()


def _duckdb(project: Any) -> Any:
    from fsql.engines import open_engine

    return open_engine(project.config.target, project.config.root)


# --- Postgres -----------------------------------------------------------------------------


def test_every_kind_gives_the_same_results_on_postgres(tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> None:
    load_postgres_table(postgres_dsn, postgres_schema, "stats", table())
    profile = f"t:\n  target: pg\n  outputs:\n    pg:\n      offline: '{online_url(postgres_dsn)}'\n"
    root = write_project(tmp_path / "p", location=f"table: {postgres_schema}.stats", profile=profile)
    project = fsql.load_project(root)
    assert project.config.target.dialect == "postgres"
    run = run_tests(project, at=AT)
    assert outcomes(run.results) == EXPECTED
    assert (root / "target" / "compiled" / "postgres" / "tests" / "unique_stats_driver_id_label.sql").is_file()


# --- BigQuery, transpiled to DuckDB -------------------------------------------------------


class BigQueryOnDuckDB:
    """An engine of dialect bigquery whose queries are checked as BigQuery SQL, then transpiled
    to DuckDB and run there on the source's rows (loaded as a table named after the source)."""

    dialect = "bigquery"
    url = "bigquery-on-duckdb"

    def __init__(self, tables: dict[str, pa.Table]) -> None:
        self.connection = duckdb.connect()
        self.connection.execute("SET TimeZone = 'UTC'")
        for name, data in tables.items():
            self.connection.register(name, data)
        self.executed: list[str] = []

    def query_arrow(self, sql: str, **_: Any) -> pa.Table:
        check_bigquery_sql(sql)
        self.executed.append(sql)
        duck = sqlglot.parse_one(sql, read="bigquery").sql("duckdb")
        return self.connection.sql(duck).to_arrow_table()

    def close(self) -> None:
        self.connection.close()


def test_every_kind_gives_the_same_results_in_bigquery_sql(tmp_path: Path) -> None:
    project = fsql.load_project(write_project(tmp_path / "p"))
    engine = BigQueryOnDuckDB({"stats": table()})
    try:
        results = [run_test(project, t, engine, at=AT) for t in project_tests(project.definitions)]  # type: ignore[arg-type]
    finally:
        engine.close()
    assert outcomes(results) == EXPECTED
    assert len(engine.executed) == len(EXPECTED)
    assert all("READ_PARQUET" not in sql and "`stats`" in sql for sql in engine.executed)  # a table on BigQuery
    freshness = next(sql for sql in engine.executed if "freshness_stats'" in sql)
    assert "CAST('2024-03-01 07:00:00.000000+00:00' AS TIMESTAMP)" in freshness


# --- Spark --------------------------------------------------------------------------------


@pytest.mark.spark
def test_every_kind_gives_the_same_results_on_spark(tmp_path: Path) -> None:
    profile = "t:\n  target: spark\n  outputs:\n    spark:\n      offline: 'spark://local'\n"
    project = fsql.load_project(write_project(tmp_path / "p", profile=profile))
    run = run_tests(project, at=AT)
    assert outcomes(run.results) == EXPECTED
    assert all(FAILURES not in s for r in run.results for s in r.samples)

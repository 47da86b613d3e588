"""`fsql build` runs a view's data tests (and its source's) before materializing it."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
from online_helpers import t, write_project, write_rows
from typer.testing import CliRunner

from fsql.cli import app

runner = CliRunner()

DEFINITIONS = """
entities:
  - name: driver
    join_keys: [{name: driver_id, type: bigint}]
sources:
  - name: stats
    path: data/stats.parquet
    timestamp: event_ts
    created_timestamp: created_ts
    columns: {driver_id: bigint, event_ts: timestamp, created_ts: timestamp, rate: double, label: string}
    tests: SOURCE_TESTS
  - name: other
    path: data/stats.parquet
    timestamp: event_ts
    columns: {driver_id: bigint, event_ts: timestamp, rate: double}
feature_views:
  - name: driver_stats
    entities: [driver]
    source: stats
    online: true
    features:
      - {name: rate, type: double, tests: RATE_TESTS}
      - {name: label, type: string}
  - name: driver_other
    entities: [driver]
    source: other
    online: true
    features:
      - {name: other_rate, type: double, expr: rate}
"""
ROWS = [(1, t(1), t(1), 0.2, "a"), (2, t(2), t(2), 1.4, "b")]  # 1.4 is out of [0, 1]


def project(root: Path, dsn: str, schema: str, *, rate: str = "[]", source: str = "[]") -> Path:
    definitions = DEFINITIONS.replace("RATE_TESTS", rate).replace("SOURCE_TESTS", source)
    write_project(root, dsn, schema, definitions)
    write_rows(root, ROWS)
    return root


def build(root: Path, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["--project-dir", str(root), "build", "--end", "2024-03-02T01:00:00Z", *args])


def results(root: Path) -> dict[str, dict[str, object]]:
    document = json.loads((root / "target" / "run_results.json").read_text())
    return {r["unique_id"]: r for r in document["results"]}


def online_rows(dsn: str, schema: str, table: str) -> int | None:
    with psycopg.connect(dsn) as connection:
        exists = connection.execute("SELECT to_regclass(%s)", (f'"{schema}"."{table}"',)).fetchone()
        if exists is None or exists[0] is None:
            return None
        row = connection.execute(f'SELECT count(*) FROM "{schema}"."{table}"').fetchone()
        return int(row[0]) if row else None


def test_a_failing_error_test_stops_its_view_and_says_which_and_why(
    tmp_path: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    root = project(tmp_path / "p", postgres_dsn, postgres_schema, rate="[{accepted_range: {min: 0, max: 1}}]")
    result = build(root)
    assert result.exit_code == 1, result.output
    said = " ".join(result.stderr.split())
    assert (
        "Error: driver_stats: not materialized: data test 'accepted_range_driver_stats_rate' failed: 1 row with rate "
        "not >= 0 and <= 1, e.g. rate=1.4 (--skip-tests builds without tests)"
    ) in said
    by_id = results(root)
    assert by_id["feature_view.driver_stats"]["status"] == "error"
    assert by_id["feature_view.driver_other"]["status"] == "success"  # the other view still runs
    assert by_id["test.accepted_range_driver_stats_rate"]["status"] == "fail"
    assert online_rows(postgres_dsn, postgres_schema, "driver_stats") is None  # nothing written
    assert online_rows(postgres_dsn, postgres_schema, "driver_other") == 2


def test_skip_tests_materializes_without_running_them(tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> None:
    root = project(tmp_path / "p", postgres_dsn, postgres_schema, rate="[{accepted_range: {min: 0, max: 1}}]")
    result = build(root, "--skip-tests")
    assert result.exit_code == 0, result.output
    assert set(results(root)) == {"feature_view.driver_stats", "feature_view.driver_other"}
    assert online_rows(postgres_dsn, postgres_schema, "driver_stats") == 2


def test_a_failing_warn_test_does_not_stop_the_view(tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> None:
    root = project(
        tmp_path / "p", postgres_dsn, postgres_schema, rate="[{accepted_range: {min: 0, max: 1}, severity: warn}]"
    )
    assert build(root).exit_code == 0
    by_id = results(root)
    assert by_id["test.accepted_range_driver_stats_rate"]["status"] == "warn"
    assert by_id["feature_view.driver_stats"]["status"] == "success"
    assert online_rows(postgres_dsn, postgres_schema, "driver_stats") == 2


def test_freshness_is_measured_against_the_builds_end(tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> None:
    """The newest row is at 2024-03-02T00:00: fresh for a build up to 01:00, stale for one up to the 5th."""
    root = project(tmp_path / "p", postgres_dsn, postgres_schema, source="[{freshness: {error_after: 1d}}]")
    assert build(root).exit_code == 0
    assert results(root)["test.freshness_stats"]["status"] == "pass"
    late = runner.invoke(app, ["--project-dir", str(root), "build", "--end", "2024-03-05T00:00:00Z"])
    assert late.exit_code == 1
    assert "data test 'freshness_stats' failed: newest event 2024-03-02T00:00:00Z is 3d 0h 0m old" in late.stderr
    assert results(root)["feature_view.driver_stats"]["status"] == "error"

"""`fsql test` on the command line: exit codes, severity, selection, and the definitions' errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from datatests_helpers import write_project
from typer.testing import CliRunner

from fsql.cli import app

runner = CliRunner()
AT = "2024-03-01T07:00:00Z"

BASE = """
entities:
  - name: driver
    join_keys: [{name: driver_id, type: bigint}]
sources:
  - name: stats
    path: data/stats.parquet
    timestamp: event_ts
    created_timestamp: created_ts
    columns: {driver_id: bigint, event_ts: timestamptz, created_ts: timestamptz, rate: double, label: string}
    tests: SOURCE_TESTS
feature_views:
  - name: driver_stats
    entities: [driver]
    source: stats
    features:
      - {name: rate, type: double, tests: FEATURE_TESTS}
      - {name: label, type: string}
    tests: VIEW_TESTS
"""


def project(root: Path, source: str = "[]", view: str = "[]", feature: str = "[]") -> Path:
    text = BASE.replace("SOURCE_TESTS", source).replace("VIEW_TESTS", view).replace("FEATURE_TESTS", feature)
    return write_project(root, definitions=text)


def invoke(root: Path, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["--project-dir", str(root), "test", "--at", AT, *args])


def results(root: Path) -> dict[str, str]:
    document = json.loads((root / "target" / "run_results.json").read_text())
    return {r["unique_id"]: r["status"] for r in document["results"]}


def test_all_passing_exits_0_with_a_summary(tmp_path: Path) -> None:
    root = project(tmp_path / "p", source="[{not_null: event_ts}]", feature="[{accepted_range: {min: 0, max: 2}}]")
    result = invoke(root)
    assert result.exit_code == 0, result.output
    assert "fsql test" in result.stderr and "2 pass, 0 warn, 0 fail, 0 error" in result.stderr
    assert results(root) == {"test.not_null_stats_event_ts": "pass", "test.accepted_range_driver_stats_rate": "pass"}


def test_a_failing_warn_test_exits_0_and_an_error_test_exits_1(tmp_path: Path) -> None:
    warned = project(tmp_path / "w", feature="[{not_null: {severity: warn}}]")
    result = invoke(warned)
    assert result.exit_code == 0, result.output
    assert "Warning: not_null_driver_stats_rate (definitions/defs.yml:17:45): 1 row with NULL rate" in result.stderr
    assert results(warned) == {"test.not_null_driver_stats_rate": "warn"}

    failed = project(tmp_path / "f", feature="[not_null]")
    result = invoke(failed)
    assert result.exit_code == 1, result.output
    assert "Error: not_null_driver_stats_rate (definitions/defs.yml:17:44): 1 row with NULL rate" in result.stderr
    assert results(failed) == {"test.not_null_driver_stats_rate": "fail"}


def test_severity_beside_the_test_or_inside_it_is_the_same(tmp_path: Path) -> None:
    root = project(
        tmp_path / "p", view='[{expression: "rate <= 1", severity: warn}, {row_count: {max: 1, severity: warn}}]'
    )
    assert invoke(root).exit_code == 0
    assert set(results(root).values()) == {"warn"}


def test_a_query_that_cannot_run_is_an_error_and_exits_1(tmp_path: Path) -> None:
    root = project(tmp_path / "p", source="[{not_null: event_ts}]")
    (root / "data" / "stats.parquet").unlink()
    result = invoke(root, "--no-data-checks")
    assert result.exit_code == 1, result.output
    assert results(root) == {"test.not_null_stats_event_ts": "error"}
    assert "(see target/compiled/duckdb/tests/not_null_stats_event_ts.sql)" in result.stderr
    # With the data checks on, the missing file is a definition error found before any test runs.
    assert invoke(root).exit_code == 2


def test_freshness_is_measured_against_now_without_at(tmp_path: Path) -> None:
    root = project(tmp_path / "p", source="[{freshness: {warn_after: 2h, error_after: 1d}}]")
    assert invoke(root).exit_code == 0  # at 07:00 on the day of the data: 3h old, a warning
    assert results(root) == {"test.freshness_stats": "warn"}
    result = runner.invoke(app, ["--project-dir", str(root), "test"])  # now: years later
    assert result.exit_code == 1
    assert results(root) == {"test.freshness_stats": "fail"}


SELECTION = {"source": "[{not_null: event_ts}]", "view": "[{row_count: {min: 1}}]", "feature": "[not_null]"}


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        (["--select", "stats"], set()),  # a source's name is not a view's: see source:
        (
            ["--select", "source:stats"],
            {"not_null_stats_event_ts", "row_count_driver_stats", "not_null_driver_stats_rate"},
        ),
        (["--select", "driver_stats"], {"row_count_driver_stats", "not_null_driver_stats_rate"}),
        (
            ["--select", "+driver_stats"],
            {"not_null_stats_event_ts", "row_count_driver_stats", "not_null_driver_stats_rate"},
        ),
        (["--select", "source:stats", "--exclude", "driver_stats"], {"not_null_stats_event_ts"}),
    ],
    ids=["bare-source-name", "source", "view", "view-and-upstream", "exclude"],
)
def test_selection_picks_the_tests_of_the_nodes_it_selects(
    tmp_path: Path, selection: list[str], expected: set[str]
) -> None:
    root = project(tmp_path / "p", **SELECTION)
    result = invoke(root, *selection)
    if not expected:
        assert result.exit_code == 2 and "there is no feature view 'stats'" in result.stderr
        return
    failing = "not_null_driver_stats_rate" in expected  # it fails when selected
    assert result.exit_code == (1 if failing else 0), result.output
    assert {name.removeprefix("test.") for name in results(root)} == expected


def test_a_selection_without_tests_is_nothing_to_do(tmp_path: Path) -> None:
    root = project(tmp_path / "p", source="[{not_null: event_ts}]")
    result = invoke(root, "--select", "driver_stats")
    assert result.exit_code == 0
    assert "nothing to do: the selection 'driver_stats' has no data tests" in result.stderr


# --- mistakes in the definitions: exit 2, at their file and line, with a fix --------------

MISTAKES = [
    ("[not_nul]", "source", "defs.yml:11:13: source 'stats': unknown test 'not_nul'. Did you mean 'not_null'?"),
    (
        "[{unique: [driver_id, event_tz]}]",
        "source",
        "defs.yml:11:14: source 'stats': test 'unique': unknown column 'event_tz' in source 'stats'. "
        "Did you mean 'event_ts'?",
    ),
    (
        '[{expression: "rate >= 0 AND lable IS NOT NULL"}]',
        "view",
        "defs.yml:19:41: feature view 'driver_stats': test 'expression': unknown column 'lable' in view "
        "'driver_stats'. Did you mean 'label'?",
    ),
    ("[{freshness: {warn_after: 2h}}]", "feature", "'freshness' tests a whole relation, not a feature"),
    ("[{accepted_range: {}}]", "feature", "test 'accepted_range': give 'min', 'max' or both"),
    ("[{accepted_range: {min: 1, max: 0}}]", "feature", "'min' (1) is greater than 'max' (0)"),
    ("[not_null]", "view", "test 'not_null': name the column(s) it tests, e.g. {not_null: [driver_id]}"),
    ("[{freshness: {warn_after: 2 hours}}]", "source", "'2 hours' is not a duration"),
    ("[{freshness: {warn_after: 1d, error_after: 2h}}]", "source", "warn_after (1d) is longer than error_after (2h)"),
    ("[{row_count: {min: 1}, severity: fatal}]", "source", "severity must be 'error' or 'warn', not 'fatal'"),
    ("[{row_count: {minimum: 1}}]", "source", "unknown key 'minimum'. Did you mean 'min'?"),
    ("[{not_null: event_ts, unique: event_ts}]", "source", "a test mapping names exactly one test, found 2"),
    ('[{expression: "count(*) > 0"}]', "view", "'COUNT(*)' is not row-level"),
]


@pytest.mark.parametrize(("tests", "where", "message"), MISTAKES, ids=[m[2][:40] for m in MISTAKES])
def test_a_mistake_in_a_test_is_an_error_at_its_line(tmp_path: Path, tests: str, where: str, message: str) -> None:
    root = project(tmp_path / "p", **{where: tests})
    result = runner.invoke(app, ["--project-dir", str(root), "validate"])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split())

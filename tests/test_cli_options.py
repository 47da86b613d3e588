"""The project options are accepted after the command, as dbt accepts them, and before it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fsql.cli import app

runner = CliRunner()


def test_target_after_the_command(example_copy: Path) -> None:
    result = runner.invoke(app, ["validate", "--project-dir", str(example_copy), "--target", "x"])
    assert result.exit_code == 2
    assert "profile 'rides' has no target 'x'" in result.stderr


def test_build_with_short_target_and_project_dir_after_the_command(example_copy: Path) -> None:
    result = runner.invoke(app, ["build", "-t", "file", "--project-dir", str(example_copy), "--no-data-checks"])
    assert result.exit_code == 0, result.output
    assert (example_copy / "target" / "run_results.json").is_file()


@pytest.mark.parametrize(
    ("before", "after", "code"),
    [(["-t", "nope"], ["-t", "dev"], 0), (["-t", "dev"], ["-t", "nope"], 2), ([], ["-t", "nope"], 2)],
    ids=["after-wins", "after-wins-the-other-way", "after-alone"],
)
def test_a_value_after_the_command_wins(example_copy: Path, before: list[str], after: list[str], code: int) -> None:
    result = runner.invoke(app, ["--project-dir", str(example_copy), *before, "validate", *after, "--no-data-checks"])
    assert result.exit_code == code, result.output


def test_the_command_line_before_the_command_beats_the_environment(example_copy: Path) -> None:
    args = ["--project-dir", str(example_copy), "-t", "dev", "validate", "--no-data-checks"]  # no data seeded
    result = runner.invoke(app, args, env={"FSQL_TARGET": "nope"})
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, [*args[:2], "validate"], env={"FSQL_TARGET": "nope"}).exit_code == 2


def test_vars_after_the_command_reach_the_templates(example_copy: Path) -> None:
    args = ["compile", "--features", "rider_trip_windows", "--project-dir", str(example_copy)]
    result = runner.invoke(app, [*args, "--vars", "{min_trip_km: 7.25}"])
    assert result.exit_code == 0, result.output
    assert "7.25" in result.stdout


def test_profiles_dir_after_the_command(example_copy: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "profiles"
    elsewhere.mkdir()
    (elsewhere / "profiles.yml").write_text(
        "rides:\n  target: other\n  outputs:\n    other: {offline: 'duckdb:///:memory:'}\n"
    )
    found = runner.invoke(
        app, ["ls", "-o", "json", "--project-dir", str(example_copy), "--profiles-dir", str(elsewhere)]
    )
    assert found.exit_code == 0, found.output
    assert "zone_demand" in json.loads(found.stdout)["feature_views"]
    result = runner.invoke(
        app, ["validate", "--project-dir", str(example_copy), "--profiles-dir", str(elsewhere), "-t", "dev"]
    )
    assert result.exit_code == 2
    assert "profile 'rides' has no target 'dev'" in result.stderr


def test_debug_after_the_command_shows_the_traceback(example_copy: Path) -> None:
    (example_copy / "definitions" / "zones.yml").write_text("feature_views: [{name: x}]\n")
    result = runner.invoke(app, ["validate", "--project-dir", str(example_copy), "--debug"])
    assert result.exit_code == 2
    assert "Traceback" in result.stderr

"""Exit codes as documented: 0 success, 1 a node ran and failed, 2 it could not run."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from online_helpers import DEFINITIONS, t, write_project, write_rows
from typer.testing import CliRunner

from fsql.cli import app

runner = CliRunner()


def invoke(project: Path, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["--project-dir", str(project), *args])


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unreachable_store(example_copy: Path) -> Path:
    profiles = example_copy / "profiles.yml"
    url = f"postgresql+psycopg://fsql:s3cret-pw@127.0.0.1:{closed_port()}/nowhere"
    profiles.write_text(profiles.read_text() + f"    down:\n      online: '{url}'\n")
    return example_copy


def statuses(project: Path) -> list[str]:
    results = json.loads((project / "target" / "run_results.json").read_text())["results"]
    return [r["status"] for r in results]


def test_an_unreachable_online_store_is_one_message_and_exit_2(example_copy: Path) -> None:
    result = invoke(unreachable_store(example_copy), "-t", "down", "build")
    assert result.exit_code == 2, result.output
    assert result.stderr.count("Error:") == 1
    assert "cannot connect to the online store of target 'down' at postgresql+psycopg://fsql:***@127.0.0.1" in (
        result.stderr
    )
    assert "s3cret-pw" not in result.stderr
    assert "zone_demand" not in result.stderr  # no error per view


def test_a_lookup_on_an_unreachable_store_is_one_message_without_pool_warnings(example_copy: Path) -> None:
    project = unreachable_store(example_copy)
    result = invoke(project, "-t", "down", "get", "--features", "driver_profile", "-e", "driver_id=1")
    assert result.exit_code == 2, result.output
    assert result.stderr.count("cannot connect") == 1
    assert "pool" not in result.stderr


def test_a_migration_that_needs_full_refresh_exits_2(tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> None:
    project = write_project(tmp_path / "p", postgres_dsn, postgres_schema)
    write_rows(project, [(1, t(2), None, 0.2, "a")])
    assert invoke(project, "build", "--end", "2024-03-05").exit_code == 0
    (project / "definitions" / "defs.yml").write_text(
        DEFINITIONS.replace("{name: rate, type: double}", "{name: rate, type: string}")
    )
    result = invoke(project, "build", "--end", "2024-03-05")
    assert result.exit_code == 2, result.output
    assert "fsql build --full-refresh --select driver_stats" in result.stderr
    assert statuses(project) == ["error"]
    assert invoke(project, "build", "--end", "2024-03-05", "--full-refresh").exit_code == 0


def test_a_node_that_ran_and_failed_exits_1(tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> None:
    project = write_project(tmp_path / "p", postgres_dsn, postgres_schema)  # no rows written: the file is missing
    checked = invoke(project, "build", "--end", "2024-03-05")  # the node's check against the data fails it
    assert checked.exit_code == 1, checked.output
    assert "reads file data/stats.parquet, which does not exist" in checked.stderr
    result = invoke(project, "build", "--end", "2024-03-05", "--no-data-checks")  # the node's query fails it
    assert result.exit_code == 1, result.output
    assert "driver_stats" in result.stderr and "DuckDB failed" in result.stderr
    assert statuses(project) == ["error"]


def test_success_and_nothing_to_do_exit_0(example_copy: Path) -> None:
    assert invoke(example_copy, "validate", "--no-data-checks").exit_code == 0  # no data seeded
    assert invoke(example_copy, "build", "--select", "tag:zone,tag:driver", "--no-data-checks").exit_code == 0

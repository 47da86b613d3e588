"""The invariant of DESIGN.md: after materializing up to t, an online lookup equals the
offline point-in-time result for a spine at t, for every entity of the example project."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from online_helpers import online_url
from typer.testing import CliRunner

import fsql
from fsql.build import BuildOptions
from fsql.cli import app

T = datetime(2024, 3, 18, 9, 30, tzinfo=UTC)


@pytest.fixture
def online_example(seeded_example: Path, tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> Path:
    root = tmp_path / "example"
    shutil.copytree(seeded_example, root, ignore=shutil.ignore_patterns("target"))
    (root / "profiles.yml").write_text(
        "rides:\n  target: pg\n  outputs:\n    pg:\n      offline: 'duckdb:///:memory:'\n"
        f"      online: '{online_url(postgres_dsn)}'\n      online_schema: {postgres_schema}\n"
    )
    return root


def _all_entities(project: fsql.Project, view: str) -> pa.Table:
    """Every key combination the view's source has, plus one that does not exist, at T."""
    definition = project.definitions.feature_views[view]
    keys = [k.name for k in definition.join_keys]
    from fsql.compile.latest import compile_latest_rows

    latest = compile_latest_rows(project.definitions, view, dialect="duckdb", file_root=project.config.root)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    params = {"start": None, "start_created": None, "end": T}
    found = con.sql(latest.sql, params={k: params[k] for k in latest.parameters}).to_arrow_table()
    found = found.select(keys).to_pylist()
    missing = {k.name: (-1 if k.type.value == "BIGINT" else "missing") for k in definition.join_keys}
    rows = [*found, missing]
    return pa.table({**{k: [r[k] for r in rows] for k in keys}, "event_timestamp": pa.array([T] * len(rows))})


def test_online_equals_offline_at_t_for_every_entity(online_example: Path) -> None:
    project = fsql.load_project(online_example)
    result = project.build(BuildOptions(end=T))
    assert {n.status for n in result.nodes} == {"success"}, [n.message for n in result.nodes]
    online_views = [name for name, v in project.definitions.feature_views.items() if v.online]
    with project.online_store() as store:
        for view in online_views:
            spine = _all_entities(project, view)
            offline = project.training_set(features=[view], spine=spine).to_pylist()
            keys = [k.name for k in project.definitions.feature_views[view].join_keys]
            online = store.get_online_features([{k: row[k] for k in keys} for row in offline], features=[view], now=T)
            expected = [{k: v for k, v in row.items() if k != "event_timestamp"} for row in offline]
            assert online == expected, view
            assert any(v is not None for row in online for k, v in row.items() if k not in keys), view


def test_cli_build_and_get(online_example: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["--project-dir", str(online_example), "build", "--end", T.isoformat()])
    assert result.exit_code == 0, result.output
    run_results = json.loads((online_example / "target" / "run_results.json").read_text())
    statuses = {r["unique_id"]: r["status"] for r in run_results["results"]}
    assert statuses["feature_view.driver_hourly_stats"] == "success"
    assert statuses["feature_view.rider_profile"] == "success"
    assert (online_example / "target" / "compiled" / "duckdb" / "materialize" / "zone_demand.sql").is_file()
    for service in ("ride_acceptance", "driver_quality"):  # both of the example's services are served online
        served = runner.invoke(
            app, ["--project-dir", str(online_example), "get", "--service", service, "--entity",
                  "driver_id=1001,rider_id=5,zone_id=z03", "--now", T.isoformat()],
        )  # fmt: skip
        assert served.exit_code == 0, served.output
    got = runner.invoke(
        app,
        [
            "--project-dir",
            str(online_example),
            "get",
            "--features",
            "driver_profile:vehicle_type,zone_demand",
            "--entity",
            "driver_id=1001,zone_id=z03",
            "--entity",
            "driver_id=999999,zone_id=z03",
            "--now",
            T.isoformat(),
        ],
    )
    assert got.exit_code == 0, got.output
    values = json.loads(got.stdout)
    assert [v["driver_id"] for v in values] == [1001, 999999]
    assert values[0]["vehicle_type"] is not None and values[1]["vehicle_type"] is None
    bad = runner.invoke(
        app, ["--project-dir", str(online_example), "get", "--service", "driver_quality", "--entity", "driver_id=abc"]
    )
    assert bad.exit_code == 2
    assert "'abc' is not a valid bigint for 'driver_id'" in bad.stderr


def test_build_without_an_online_store_still_writes_artifacts(seeded_example: Path, tmp_path: Path) -> None:
    root = tmp_path / "p"
    shutil.copytree(seeded_example, root, ignore=shutil.ignore_patterns("target"))
    result = CliRunner().invoke(app, ["--project-dir", str(root), "-t", "file", "build"])  # a target without one
    assert result.exit_code == 0, result.output
    assert "no online store is configured for target 'file'" in result.stderr
    assert (root / "target" / "manifest.json").is_file()
    assert (root / "target" / "compiled" / "duckdb" / "ride_acceptance.sql").is_file()
    statuses = {r["status"] for r in json.loads((root / "target" / "run_results.json").read_text())["results"]}
    assert statuses == {"skipped"}

"""The CLI end to end through typer's CliRunner, on copies of the example project."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
from typer.testing import CliRunner

from fsql.cli import app

runner = CliRunner()


def invoke(project: Path, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["--project-dir", str(project), *args])


def test_validate_reports_what_it_read(example_copy: Path, seeded_example: Path) -> None:
    shutil.copytree(seeded_example / "data", example_copy / "data")
    result = invoke(example_copy, "validate")
    assert result.exit_code == 0, result.output
    assert "OK: 3 entities, 7 sources, 8 feature views, 1 derived view, 3 feature services" in result.stderr
    assert "checked 5 file and table sources against the data on duckdb in " in result.stderr
    manifest = json.loads((example_copy / "target" / "manifest.json").read_text())
    assert manifest["metadata"]["fsql_schema_version"].endswith("/v1.json")
    assert set(manifest["feature_views"]) >= {"driver_hourly_stats", "rider_driver_affinity"}
    offer = manifest["derived_views"]["ride_offer"]  # derived views, their request fields and inputs too
    assert set(offer["request"]) == {"offered_fare", "offered_at", "pickup_eta_at"}
    assert "rider_trip_windows:spend_30d" in offer["inputs"] and offer["features"]
    assert manifest["feature_services"]["ride_offer_scoring"]["features"]


def test_validate_exits_2_with_the_error_and_no_traceback(example_copy: Path) -> None:
    views = example_copy / "definitions" / "zones.yml"
    views.write_text(views.read_text().replace("expr: requests /", "expr: requestz /"))
    result = invoke(example_copy, "validate")
    assert result.exit_code == 2
    assert "Error:" in result.stderr
    assert "definitions/zones.yml:" in result.stderr
    assert "unknown column 'requestz' in source 'zone_demand'. Did you mean 'requests'?" in result.stderr
    assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback(example_copy: Path) -> None:
    (example_copy / "definitions" / "zones.yml").write_text("feature_views: [{name: x}]\n")
    result = invoke(example_copy, "--debug", "validate")
    assert result.exit_code == 2
    assert "Traceback" in result.stderr


def test_compile_prints_sql_and_writes_it(example_copy: Path) -> None:
    result = invoke(example_copy, "compile", "--service", "driver_quality", "--no-data-checks")  # no data seeded
    assert result.exit_code == 0, result.output
    written = example_copy / "target" / "compiled" / "duckdb" / "driver_quality.sql"
    assert result.stdout == written.read_text()
    assert "ASOF LEFT JOIN" in result.stdout
    assert '"driver_hourly_stats__conv_rate"' in result.stdout  # the service asks for full feature names


def test_compile_a_feature_list(example_copy: Path) -> None:
    result = invoke(
        example_copy, "compile", "--features", "zone_demand:zone_pressure, driver_profile", "--no-data-checks"
    )
    assert result.exit_code == 0, result.output
    assert '"zone_pressure"' in result.stdout and '"vehicle_type"' in result.stdout
    projection = result.stdout.split('FROM "spine"')[0].split('SELECT\n  "spine".*')[-1]
    assert '"zone_requests"' not in projection and '"zone_requests_15m"' not in projection


def test_compile_unknown_service_exits_2_with_a_suggestion(example_copy: Path) -> None:
    result = invoke(example_copy, "compile", "--service", "ride_accept")
    assert result.exit_code == 2
    assert "unknown feature service 'ride_accept'. Did you mean 'ride_acceptance'?" in result.stderr


def test_compile_needs_exactly_one_of_service_and_features(example_copy: Path) -> None:
    result = invoke(example_copy, "compile")
    assert result.exit_code == 2
    assert "exactly one of a feature service (--service) or a feature list (--features)" in result.stderr


def test_train_writes_a_parquet_training_set(seeded_example: Path, tmp_path: Path) -> None:
    out = tmp_path / "train.parquet"
    spine = str(seeded_example / "data" / "ride_requests.parquet")
    result = invoke(seeded_example, "train", "--service", "ride_acceptance", "--spine", spine, "--out", str(out))
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    spine_rows = pq.read_table(spine).num_rows
    assert table.num_rows == spine_rows
    assert table.column_names[:6] == ["request_id", "rider_id", "driver_id", "zone_id", "event_timestamp", "accepted"]
    assert "zone_pressure" in table.column_names
    assert table.column("zone_pressure").null_count < spine_rows  # features were found
    assert f"{spine_rows:,} rows" in result.stderr


def test_train_with_a_sql_spine(seeded_example: Path, tmp_path: Path) -> None:
    out = tmp_path / "train.parquet"
    spine = "SELECT 1001 AS driver_id, TIMESTAMP '2024-03-20 12:00:00' AS event_timestamp"
    result = invoke(seeded_example, "train", "--features", "driver_profile", "--spine", spine, "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = pq.read_table(out).to_pylist()
    assert len(rows) == 1 and rows[0]["vehicle_type"] is not None


def test_train_spine_missing_a_key_is_a_clear_error(seeded_example: Path, tmp_path: Path) -> None:
    spine = "SELECT TIMESTAMP '2024-03-20' AS event_timestamp"
    result = invoke(seeded_example, "train", "--features", "driver_profile", "--spine", spine)
    assert result.exit_code == 2
    assert "the spine lacks column(s) driver_id" in result.stderr


def test_a_failing_query_exits_1_and_points_at_the_run_file(example_copy: Path, tmp_path: Path) -> None:
    # No data was seeded: checked against the data, the definitions fail at the source's line (exit 2) ...
    spine = "SELECT 1001 AS driver_id, TIMESTAMP '2024-03-20' AS event_timestamp"
    checked = invoke(example_copy, "train", "--features", "driver_profile", "--spine", spine)
    assert checked.exit_code == 2
    assert (
        "definitions/drivers.yml:" in checked.stderr and "reads file data/drivers.csv, which does not" in checked.stderr
    )
    # ... and unchecked, the query fails in DuckDB, after compiling.
    result = invoke(example_copy, "train", "--features", "driver_profile", "--spine", spine, "--no-data-checks")
    assert result.exit_code == 1
    assert "DuckDB failed" in result.stderr
    assert "see target/run/duckdb/features_driver_profile.sql" in result.stderr
    assert (example_copy / "target" / "run" / "duckdb" / "features_driver_profile.sql").is_file()


def test_ls_json_lists_every_definition(example_copy: Path) -> None:
    result = invoke(example_copy, "ls", "--output", "json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert listed["feature_views"]["rider_driver_affinity"]["entities"] == ["rider", "driver"]
    assert listed["feature_views"]["zone_demand"]["ttl"] == "1h"
    assert listed["feature_services"]["driver_quality"]["full_feature_names"] is True


def test_ls_table(example_copy: Path) -> None:
    result = invoke(example_copy, "ls")
    assert result.exit_code == 0, result.output
    assert "rider_driver_affinity" in result.stdout and "Feature services" in result.stdout


def test_ls_table_lists_derived_features_with_their_inputs(example_copy: Path) -> None:
    result = runner.invoke(app, ["--project-dir", str(example_copy), "ls"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    derived = result.stdout.split("Derived features", 1)[1].split("Feature services", 1)[0]
    assert "ride_offer" in derived and "fare_vs_usual" in derived
    assert "offered_fare / (spend_30d / trips_30d)" in derived
    assert "offered_fare (double)" in derived


def test_unknown_target_exits_2(example_copy: Path) -> None:
    result = invoke(example_copy, "-t", "prod", "validate")
    assert result.exit_code == 2
    assert "profile 'rides' has no target 'prod'" in result.stderr


def test_seed_is_deterministic(tmp_path: Path, example_copy: Path) -> None:
    first = invoke(example_copy, "seed", "--scale", "0.05", "--seed", "3")
    assert first.exit_code == 0, first.output
    data = example_copy / "data" / "driver_stats.parquet"
    before = pq.read_table(data)
    again = invoke(example_copy, "seed", "--scale", "0.05", "--seed", "3")
    assert again.exit_code == 0
    assert pq.read_table(data).equals(before)

"""The Python API on the example project: spines of every kind, table sources, vars."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import fsql
from fsql.errors import CompileError


def _sorted(table: pa.Table) -> list[dict]:
    return sorted(table.to_pylist(), key=lambda row: row["request_id"])


def test_every_spine_kind_gives_the_same_training_set(seeded_example: Path) -> None:
    project = fsql.load_project(seeded_example)
    path = seeded_example / "data" / "ride_requests.parquet"
    spine = pq.read_table(path).slice(0, 300)
    small = seeded_example / "spine.parquet"
    pq.write_table(spine, small)
    by_arrow = project.training_set(service="ride_acceptance", spine=spine)
    by_pandas = project.training_set(service="ride_acceptance", spine=spine.to_pandas())
    by_path = project.training_set(service="ride_acceptance", spine=str(small))
    by_sql = project.training_set(service="ride_acceptance", spine=f"SELECT * FROM read_parquet('{small}')")
    assert by_arrow.num_rows == 300
    assert _sorted(by_arrow) == _sorted(by_path) == _sorted(by_sql)
    assert _sorted(by_pandas) == _sorted(by_arrow)


def test_a_spine_of_another_type_is_refused(seeded_example: Path) -> None:
    with pytest.raises(CompileError, match="a spine must be a SELECT, a table name"):
        fsql.load_project(seeded_example).training_set(service="driver_quality", spine=42)


def test_table_sources_on_a_duckdb_database_target(seeded_example: Path, tmp_path: Path) -> None:
    database = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(database)) as con:
        con.execute("CREATE SCHEMA analytics")
        con.execute(
            "CREATE TABLE analytics.zone_demand AS SELECT * FROM read_parquet(?)",
            [str(seeded_example / "data" / "zone_demand.parquet")],
        )
    project_dir = tmp_path / "wh"
    (project_dir / "definitions").mkdir(parents=True)
    (project_dir / "fsql_project.yml").write_text("name: wh\n")
    (project_dir / "profiles.yml").write_text(
        f"wh:\n  target: prod\n  outputs:\n    prod:\n      offline: duckdb:///{database}\n"
    )
    (project_dir / "definitions" / "zones.yml").write_text(
        """
entities:
  - {name: zone, join_keys: [{name: zone_id, type: string}]}
sources:
  - name: zone_demand
    table: analytics.zone_demand
    timestamp: window_end
    columns: {zone_id: string, window_end: timestamp, requests: bigint, idle_drivers: bigint}
feature_views:
  - name: zone_demand
    entities: [zone]
    source: zone_demand
    ttl: 1h
    features: [{name: requests, type: bigint}]
"""
    )
    project = fsql.load_project(project_dir)
    assert project.config.target.name == "prod"
    spine = pa.table(
        {
            "zone_id": ["z01", "z01", "nope"],
            "event_timestamp": pa.array([None, "2024-03-10 08:07:00", "2024-03-10 08:07:00"], pa.string()).cast(
                pa.timestamp("us")
            ),
        }
    )
    rows = project.training_set(features=["zone_demand"], spine=spine).to_pylist()
    with duckdb.connect(str(database), read_only=True) as con:
        expected = con.execute(
            "SELECT requests FROM analytics.zone_demand WHERE zone_id = 'z01' AND window_end <= "
            "TIMESTAMP '2024-03-10 08:07:00' AND window_end >= TIMESTAMP '2024-03-10 07:07:00' "
            "ORDER BY window_end DESC LIMIT 1"
        ).fetchall()
    by_spine = {(r["zone_id"], r["event_timestamp"]): r["requests"] for r in rows}
    assert len(rows) == 3
    assert by_spine[("z01", None)] is None
    assert by_spine[("nope", rows[2]["event_timestamp"])] is None
    assert [v for (z, t), v in by_spine.items() if z == "z01" and t is not None] == [
        expected[0][0] if expected else None
    ]


def test_vars_override_the_project_file(seeded_example: Path) -> None:
    loose = fsql.load_project(seeded_example, vars={"min_trip_km": 0})
    strict = fsql.load_project(seeded_example, vars={"min_trip_km": 1000})
    assert "distance_km >= 0" in loose.training_sql(service="ride_acceptance")
    spine = pq.read_table(seeded_example / "data" / "ride_requests.parquet").slice(0, 500)
    none_left = strict.training_set(features=["rider_trip_windows"], spine=spine)
    assert none_left.column("trips_30d").to_pylist() == [0] * 500  # a count over no trips is 0, not NULL
    assert none_left.column("spend_30d").null_count == 500
    some = loose.training_set(features=["rider_trip_windows"], spine=spine)
    assert sum(some.column("trips_30d").to_pylist()) > 0

"""The invariant of DESIGN.md: after materializing up to t, an online lookup equals the
offline point-in-time result for a spine at t, for every entity of the example project."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import psycopg
import pyarrow as pa
import pytest
from online_helpers import online_url
from sqlglot import exp
from tile_helpers import close
from typer.testing import CliRunner

import fsql
from fsql.build import BuildOptions
from fsql.cli import app
from fsql.compile import render
from fsql.compile.context import EVENT_TS, column
from fsql.compile.latest import bound, compile_latest_rows, for_engine
from fsql.compile.tiles import source_rows
from fsql.durations import Duration
from fsql.online.result import FeatureStatus

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


def _source_keys(project: fsql.Project, view: str) -> list[dict]:
    """Every key combination the view's source has before T."""
    definitions = project.definitions
    definition = definitions.feature_views[view]
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if definition.aggregations:  # the latest-row query refuses aggregate views: read the keys from the source
        rows = source_rows(definition, definitions.sources[definition.source], definitions.dialect)
        keyed = exp.select(*(column(k.name) for k in definition.join_keys)).distinct().from_(rows.subquery("rows"))
        keyed = keyed.where(exp.LT(this=column(EVENT_TS), expression=bound("end")))
        query = render(for_engine(keyed, definitions, "duckdb", project.config.root), "duckdb", [])
        return con.sql(query, params={"end": T}).to_arrow_table().to_pylist()
    latest = compile_latest_rows(definitions, view, dialect="duckdb", file_root=project.config.root)
    params = {"start": None, "start_created": None, "end": T}
    found = con.sql(latest.sql, params={k: params[k] for k in latest.parameters}).to_arrow_table()
    return found.select([k.name for k in definition.join_keys]).to_pylist()


def _spine(project: fsql.Project, view: str, at: datetime) -> pa.Table:
    """Every key of the view's source, plus one that does not exist, at `at`."""
    join_keys = project.definitions.feature_views[view].join_keys
    keys = [k.name for k in join_keys]
    missing = {k.name: (-1 if k.type.value == "BIGINT" else "missing") for k in join_keys}
    rows = [*_source_keys(project, view), missing]
    return pa.table({**{k: [r[k] for r in rows] for k in keys}, "event_timestamp": pa.array([at] * len(rows))})


def _floor(moment: datetime, granularity: Duration) -> datetime:
    step = granularity.seconds
    return datetime.fromtimestamp(int(moment.timestamp()) // step * step, tz=UTC)


# Before T (on and off every granularity's boundary), at T, and after T, when the online
# window stops sliding at the watermark.
LOOKUP_TIMES = [
    T - timedelta(days=2, minutes=7),
    T - timedelta(hours=1, minutes=30),
    T - timedelta(minutes=30),  # floor(T, 1h): the oldest lookup the 1h views' tiles answer, on a boundary
    T - timedelta(minutes=20),  # between it and T: as_of 09:00 for 1h views, too early for the 15m view
    T,
    T + timedelta(minutes=1),
    T + timedelta(hours=3, minutes=20),
]


def _offline_time(project: fsql.Project, view: str, lookup_at: datetime) -> datetime:
    """The spine time whose offline value a lookup at `lookup_at` must return (DESIGN.md)."""
    definition = project.definitions.feature_views[view]
    if not definition.aggregations:
        return T
    assert definition.granularity is not None
    return _floor(min(lookup_at, T), definition.granularity)


def test_online_equals_offline_for_every_entity_and_view(online_example: Path) -> None:
    project = fsql.load_project(online_example)
    result = project.build(BuildOptions(end=T))
    assert {n.status for n in result.nodes} == {"success"}, [n.message for n in result.nodes]
    online_views = [name for name, v in project.definitions.feature_views.items() if v.online]
    assert any(project.definitions.feature_views[v].aggregations for v in online_views)
    with project.online_store() as store:
        for view in online_views:
            aggregate = bool(project.definitions.feature_views[view].aggregations)
            keys = [k.name for k in project.definitions.feature_views[view].join_keys]
            for lookup_at in LOOKUP_TIMES if aggregate else [T]:
                spine = _spine(project, view, _offline_time(project, view, lookup_at))
                offline = project.training_set(features=[view], spine=spine).to_pylist()
                entity_rows = [{k: row[k] for k in keys} for row in offline]
                looked_up = store.lookup(entity_rows, features=[view], now=lookup_at)
                expected = [{k: v for k, v in row.items() if k != "event_timestamp"} for row in offline]
                statuses = {status for row in looked_up.statuses() for status in row.values()}
                if aggregate:
                    assert looked_up.as_of() == {view: _offline_time(project, view, lookup_at)}, (view, lookup_at)
                if aggregate and lookup_at < _floor(T, project.definitions.feature_views[view].granularity):
                    # The build kept the tiles of lookups from floor(T, g) on: earlier ones say so.
                    assert statuses == {FeatureStatus.OUTSIDE_MAX_AGE}, (view, lookup_at)
                    assert all(v is None for row in looked_up.rows() for k, v in row.items() if k not in keys)
                    continue
                rows = looked_up.rows()
                assert len(rows) == len(expected) and all(map(close, rows, expected)), (view, lookup_at)
                assert FeatureStatus.OUTSIDE_MAX_AGE not in statuses or not aggregate, (view, lookup_at)
                assert any(v for row in looked_up.rows() for k, v in row.items() if k not in keys), (view, lookup_at)


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


def test_descriptions_reach_the_online_tables_as_comments(online_example: Path, postgres_dsn: str) -> None:
    project = fsql.load_project(online_example)
    project.build(BuildOptions(end=T, select="driver_trip_windows zone_demand"))
    schema = project.config.target.online_schema

    def columns(connection: psycopg.Connection, table: str) -> dict[str, str | None]:
        return dict(
            connection.execute(
                "SELECT a.attname, col_description(a.attrelid, a.attnum) FROM pg_attribute a "
                "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0",
                (f'"{schema}"."{table}"',),
            ).fetchall()
        )

    with psycopg.connect(postgres_dsn) as connection:
        tables = dict(
            connection.execute(
                "SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s",
                (schema,),
            ).fetchall()
        )
        zone, windows = columns(connection, "zone_demand"), columns(connection, "driver_trip_windows")
    assert tables["driver_trip_windows"] == (
        "Trips the driver completed over the last day and week, and how many riders they served. owner: "
        "dispatch-ml@rides.example. fsql feature view from source 'completed_trips', written by fsql build"
    )
    assert tables["zone_demand"] is None  # no description written: nothing said, nothing overwritten
    assert zone["zone_pressure"] == "Requests per idle driver; above 1 means riders wait."
    assert zone["zone_id"] is None
    assert "count_distinct" in (windows["riders_served__distinct"] or "")

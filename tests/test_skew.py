"""`fsql skew` against a real Postgres: zero disagreements on the built example, and every
planted difference (a latest row, an event time, a tile, a row online only or offline only)
found and named, through the Python API and the CLI."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from online_helpers import build, online_url, t, write_project, write_rows
from typer.testing import CliRunner

import fsql
from fsql.build import BuildOptions
from fsql.cli import app
from fsql.online.result import FeatureStatus
from fsql.skew.online_side import entity_rows
from fsql.skew.report import EVENT_TIME, ROW, SkewReport

T = datetime(2024, 3, 20, 12, 0, tzinfo=UTC)  # the README's `fsql build --end 2024-03-20T12:00:00Z`
ALL = 100_000  # a sample larger than any online table of the example: every entity


@pytest.fixture
def built_example(seeded_example: Path, tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> Path:
    root = tmp_path / "example"
    shutil.copytree(seeded_example, root, ignore=shutil.ignore_patterns("target"))
    (root / "profiles.yml").write_text(
        "rides:\n  target: pg\n  outputs:\n    pg:\n      offline: 'duckdb:///:memory:'\n"
        f"      online: '{online_url(postgres_dsn)}'\n      online_schema: {postgres_schema}\n"
        "    file:\n      offline: 'duckdb:///:memory:'\n"
    )
    result = fsql.load_project(root).build(BuildOptions(end=T))
    assert {n.status for n in result.nodes} == {"success"}, [n.message for n in result.nodes]
    return root


def _sql(dsn: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as connection:
        cursor = connection.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def _skew(root: Path, service: str = "ride_acceptance", **kwargs: Any) -> SkewReport:
    return fsql.load_project(root).skew(service=service, **kwargs)


@pytest.mark.parametrize("service", ["ride_acceptance", "driver_quality"])
def test_no_disagreement_on_the_example_after_a_build(built_example: Path, service: str) -> None:
    report = _skew(built_example, service, sample=ALL)
    assert report.ok, [d.as_json() for d in report.disagreements[:5]]
    assert report.at == T  # now, clamped to the newest build end
    for view in report.views:
        assert view.lookup_at == T and view.offline_at == T, view  # as_of = floor(T, g) = T for these
        assert view.sampled > 0 and view.compared >= view.sampled, view
    results = json.loads((built_example / "target" / "run_results.json").read_text())
    assert {r["unique_id"]: r["status"] for r in results["results"]} == {
        f"skew.{service}.{v.view}": "pass" for v in report.views
    }


def test_a_service_with_a_derived_view_compares_its_inputs_and_says_so(built_example: Path) -> None:
    report = _skew(built_example, "ride_offer_scoring", sample=ALL)
    assert report.ok, [d.as_json() for d in report.disagreements[:5]]
    assert {v.view for v in report.views} == {"rider_trip_windows", "driver_hourly_stats"}  # the inputs
    assert any("derived view 'ride_offer': not compared itself" in note for note in report.notes)


def test_a_mixed_service_reads_every_views_sample_and_real_pairs(built_example: Path, postgres_dsn: str) -> None:
    """ride_acceptance mixes latest-value and aggregate views, keyed by driver, rider, zone and the
    (rider, driver) pair: every sampled entity of every view is looked up, pairs stay real pairs."""
    report = _skew(built_example, sample=25, seed=3)
    assert {v.kind for v in report.views} == {"latest", "aggregate"}
    project = fsql.load_project(built_example)
    schema = project.config.target.online_schema
    for view in report.views:
        keys = ", ".join(k.name for k in project.definitions.feature_views[view.view].join_keys)
        (count,) = _sql(postgres_dsn, f'SELECT count(*) FROM (SELECT DISTINCT {keys} FROM "{schema}"."{view.view}") k')[
            0
        ]
        assert view.compared >= view.sampled == min(25, count), view
    pairs = set(_sql(postgres_dsn, f'SELECT rider_id, driver_id FROM "{schema}".rider_driver_affinity'))
    rows = [(e["rider_id"], e["driver_id"]) for e in report.entities]
    assert sum(pair in pairs for pair in rows) >= 25  # the pair view's sample, as sampled
    assert all(set(e) == {"driver_id", "rider_id", "zone_id"} for e in report.entities)
    assert all(e["zone_id"] is not None for e in report.entities)
    again = _skew(built_example, sample=25, seed=3)
    assert again.entities == report.entities  # deterministic for a seed
    assert _skew(built_example, sample=25, seed=4).entities != report.entities


def test_entity_rows_cover_every_sample(built_example: Path) -> None:
    views = fsql.load_project(built_example).definitions.feature_views
    pair, driver, zone = views["rider_driver_affinity"], views["driver_profile"], views["zone_demand"]
    rows = entity_rows(
        [
            (driver, [{"driver_id": 1}, {"driver_id": 9}]),
            (pair, [{"rider_id": 5, "driver_id": 1}]),
            (zone, []),
        ]
    )
    assert rows == [{"rider_id": 5, "driver_id": 1, "zone_id": None}, {"driver_id": 9, "rider_id": 5, "zone_id": None}]


def test_sample_larger_than_the_entity_count(built_example: Path, postgres_dsn: str) -> None:
    report = _skew(built_example, "driver_quality", sample=ALL)
    schema = fsql.load_project(built_example).config.target.online_schema
    for view in report.views:
        (count,) = _sql(postgres_dsn, f'SELECT count(DISTINCT driver_id) FROM "{schema}"."{view.view}"')[0]
        assert view.sampled == count > 0, view
    assert len(report.entities) == len({e["driver_id"] for e in report.entities})
    assert report.ok


def test_a_latest_value_updated_by_hand_is_found(built_example: Path, postgres_dsn: str) -> None:
    schema = fsql.load_project(built_example).config.target.online_schema
    (driver, rate) = _sql(
        postgres_dsn,
        f'SELECT driver_id, conv_rate FROM "{schema}".driver_hourly_stats '
        "WHERE conv_rate IS NOT NULL ORDER BY 1 LIMIT 1",
    )[0]
    _sql(
        postgres_dsn,
        f'UPDATE "{schema}".driver_hourly_stats SET conv_rate = %s WHERE driver_id = %s',
        (rate + 0.25, driver),
    )
    (zone,) = _sql(postgres_dsn, f'SELECT zone_id FROM "{schema}".zone_demand ORDER BY 1 LIMIT 1')[0]
    _sql(postgres_dsn, f"UPDATE \"{schema}\".zone_demand SET feature_ts = feature_ts - interval '5 minutes' "
         "WHERE zone_id = %s", (zone,))  # fmt: skip
    report = _skew(built_example, sample=ALL)
    found = {(d.view, d.feature, tuple(d.entity.items())): d for d in report.disagreements}
    assert set(found) == {
        ("driver_hourly_stats", "conv_rate", (("driver_id", driver),)),
        ("zone_demand", EVENT_TIME, (("zone_id", zone),)),
    }
    said = found[("driver_hourly_stats", "conv_rate", (("driver_id", driver),))]
    assert said.online == pytest.approx(rate + 0.25) and said.offline == pytest.approx(rate)
    assert said.online_status == "PRESENT"
    event = found[("zone_demand", EVENT_TIME, (("zone_id", zone),))]
    assert event.offline - event.online == timedelta(minutes=5)
    # The full feature names of driver_quality name the same value.
    quality = _skew(built_example, "driver_quality", sample=ALL)
    assert {d.feature for d in quality.disagreements} == {"driver_hourly_stats__conv_rate"}


def test_a_tile_edited_by_hand_is_found(built_example: Path, postgres_dsn: str) -> None:
    schema = fsql.load_project(built_example).config.target.online_schema
    (rider, bucket) = _sql(
        postgres_dsn,
        f'SELECT rider_id, max(bucket_start) FROM "{schema}".rider_trip_windows '
        "WHERE spend__sum IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1",
    )[0]
    assert bucket >= T - timedelta(days=7)
    _sql(postgres_dsn, f'UPDATE "{schema}".rider_trip_windows SET spend__sum = spend__sum + 10 '
         "WHERE rider_id = %s AND bucket_start = %s", (rider, bucket))  # fmt: skip
    report = _skew(built_example, sample=ALL)
    found = {(d.view, d.feature): d for d in report.disagreements}
    assert set(found) == {("rider_trip_windows", "spend_7d"), ("rider_trip_windows", "spend_30d")}
    for said in found.values():
        assert said.entity == {"rider_id": rider}
        assert said.online == pytest.approx(said.offline + 10)
    (view,) = [v for v in report.views if v.view == "rider_trip_windows"]
    assert view.offline_at == T and view.status == "fail"


def test_an_entitys_tiles_gone_online_are_found_through_training(built_example: Path, postgres_dsn: str) -> None:
    """A service of one aggregate view: no other view's keys bring the rider in, training's do."""
    services = built_example / "definitions" / "services.yml"
    services.write_text(services.read_text() + "\n  - name: windows\n    features: [rider_trip_windows]\n")
    schema = fsql.load_project(built_example).config.target.online_schema
    assert _skew(built_example, "windows", sample=ALL).ok
    (rider,) = _sql(
        postgres_dsn,
        f'SELECT rider_id FROM "{schema}".rider_trip_windows WHERE bucket_start >= %s ORDER BY 1 LIMIT 1',
        (T - timedelta(days=7),),
    )[0]
    _sql(postgres_dsn, f'DELETE FROM "{schema}".rider_trip_windows WHERE rider_id = %s', (rider,))
    report = _skew(built_example, "windows", sample=ALL)
    assert report.views[0].from_training == 1
    found = {d.feature: d for d in report.disagreements}
    assert {"trips_7d", "trips_30d", "spend_7d", "spend_30d"} <= set(found)
    assert all(d.entity == {"rider_id": rider} for d in found.values())
    assert found["trips_7d"].online == 0 and found["trips_7d"].offline > 0


def test_rows_online_only_or_offline_only_are_skew(built_example: Path, postgres_dsn: str) -> None:
    schema = fsql.load_project(built_example).config.target.online_schema
    _sql(postgres_dsn, f"INSERT INTO \"{schema}\".driver_profile (driver_id, vehicle_type, feature_ts) "
         "VALUES (999999, NULL, %s)", (T - timedelta(days=1),))  # fmt: skip
    (rider,) = _sql(postgres_dsn, f'SELECT rider_id FROM "{schema}".rider_profile ORDER BY 1 LIMIT 1')[0]
    _sql(postgres_dsn, f'DELETE FROM "{schema}".rider_profile WHERE rider_id = %s', (rider,))
    report = _skew(built_example, sample=ALL)
    found = {(d.view, d.feature, tuple(d.entity.values())): d for d in report.disagreements}
    assert set(found) == {("driver_profile", ROW, (999999,)), ("rider_profile", ROW, (rider,))}
    online_only = found[("driver_profile", ROW, (999999,))]
    assert online_only.online_status == "PRESENT" and online_only.offline == "no row within the ttl"
    offline_only = found[("rider_profile", ROW, (rider,))]
    assert offline_only.online_status == "NOT_FOUND" and offline_only.offline.startswith("row at ")


def test_not_found_and_null_agree_when_both_say_no_value(built_example: Path, postgres_dsn: str) -> None:
    """Pairs of the pair view that do not exist (filled from other views' samples): NOT_FOUND
    online, NULL offline. That is no skew."""
    project = fsql.load_project(built_example)
    report = _skew(built_example, sample=10, at=T)
    assert report.ok
    looked_up = project.lookup(list(report.entities), service="ride_acceptance", now=T)
    statuses = {view.name: set(view.statuses) for view in looked_up.views}
    assert FeatureStatus.NOT_FOUND in statuses["rider_driver_affinity"]  # pairs filled from other views' samples


def test_outside_max_age_and_a_null_value_agree_with_training(
    tmp_path: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    """Driver 1's row is older than the 1d ttl (OUTSIDE_MAX_AGE online, no row offline), driver
    2's label is NULL in a fresh row (PRESENT with None online, NULL offline): both agree."""
    root = _one_view_project(tmp_path / "p", postgres_dsn, postgres_schema)
    write_rows(root, [(1, t(18, 10), t(18, 10), 0.5, "a"), (2, t(20, 11), t(20, 11), 0.25, None)])
    end = datetime(2024, 3, 20, 12)
    assert {n.status for n in build(root, end).nodes} == {"success"}
    project = fsql.load_project(root)
    report = project.skew(service="s")
    assert report.ok and report.views[0].compared == 2
    looked_up = project.lookup(list(report.entities), service="s", now=report.views[0].lookup_at)
    assert {e["driver_id"]: s for e, s in zip(looked_up.entities, looked_up.views[0].statuses, strict=True)} == {
        1: FeatureStatus.OUTSIDE_MAX_AGE,
        2: FeatureStatus.PRESENT,
    }
    # Made fresh by hand online, the stale row is a row training does not have at that time.
    _sql(postgres_dsn, f'UPDATE "{postgres_schema}".driver_stats SET feature_ts = %s WHERE driver_id = 1', (end,))
    (said,) = fsql.load_project(root).skew(service="s").disagreements
    assert (said.feature, said.entity, said.online_status) == (ROW, {"driver_id": 1}, "PRESENT")


def _one_view_project(root: Path, dsn: str, schema: str) -> Path:
    write_project(root, dsn, schema)
    definitions = root / "definitions" / "defs.yml"
    definitions.write_text(definitions.read_text() + "feature_services:\n  - name: s\n    features: [driver_stats]\n")
    return root


def test_an_emptied_online_table_is_skew_and_an_empty_source_is_not(
    tmp_path: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    root = _one_view_project(tmp_path / "p", postgres_dsn, postgres_schema)
    write_rows(root, [(1, t(20, 10), t(20, 10), 0.5, "a"), (2, t(20, 11), t(20, 11), 0.25, None)])
    end = datetime(2024, 3, 20, 12)
    assert {n.status for n in build(root, end).nodes} == {"success"}
    assert fsql.load_project(root).skew(service="s").ok
    # One row gone: no other view has driver keys, so it is met through training's entities.
    _sql(postgres_dsn, f'DELETE FROM "{postgres_schema}".driver_stats WHERE driver_id = 2')
    report = fsql.load_project(root).skew(service="s")
    assert (report.views[0].sampled, report.views[0].from_training) == (1, 1)
    assert [(d.feature, d.entity, d.online_status) for d in report.disagreements] == [
        (ROW, {"driver_id": 2}, "NOT_FOUND")
    ]
    _sql(postgres_dsn, f'DELETE FROM "{postgres_schema}".driver_stats')
    report = fsql.load_project(root).skew(service="s")
    assert {(d.feature, d.entity["driver_id"], d.online_status) for d in report.disagreements} == {
        (ROW, 1, "NOT_FOUND"),
        (ROW, 2, "NOT_FOUND"),
    }
    assert "its online table is empty" in report.notes[0]

    empty = _one_view_project(tmp_path / "q", postgres_dsn, postgres_schema + "_q")
    write_rows(empty, [(1, t(21, 10), t(21, 10), 0.5, "a")])  # after the build's end: nothing online
    try:
        assert {n.status for n in build(empty, end).nodes} == {"success"}
        report = fsql.load_project(empty).skew(service="s")
        assert report.ok and report.entities == () and report.views[0].sampled == 0
        assert "no entity was sampled" in report.notes[0]
    finally:
        _sql(postgres_dsn, f'DROP SCHEMA IF EXISTS "{postgres_schema}_q" CASCADE')


def test_at_after_the_build_and_before_the_kept_tiles(built_example: Path) -> None:
    later = _skew(built_example, sample=50, at=T + timedelta(hours=1, minutes=20))
    assert later.ok
    kinds = {v.view: (v.kind, v.lookup_at, v.offline_at) for v in later.views}
    assert kinds["driver_profile"] == ("latest", T, T)  # its rows answer for the build's end
    assert kinds["rider_trip_windows"] == ("aggregate", T + timedelta(hours=1, minutes=20), T)  # as_of
    with pytest.raises(fsql.errors.ProjectError, match="before the watermark of feature view 'driver_hourly_stats'"):
        _skew(built_example, at=T - timedelta(minutes=30))
    services = built_example / "definitions" / "services.yml"
    services.write_text(services.read_text() + "\n  - name: windows\n    features: [rider_trip_windows]\n")
    with pytest.raises(fsql.errors.ProjectError, match="before the oldest lookup the online tiles of feature view"):
        _skew(built_example, "windows", at=T - timedelta(minutes=30))
    assert _skew(built_example, "windows", at=T - timedelta(minutes=30) + timedelta(minutes=30)).ok


def test_cli_exit_codes_json_and_run_results(built_example: Path, postgres_dsn: str) -> None:
    runner = CliRunner()
    base = ["--project-dir", str(built_example), "skew"]
    ok = runner.invoke(app, [*base, "--service", "driver_quality", "--sample", "20", "--output", "json"])
    assert ok.exit_code == 0, ok.output
    document = json.loads(ok.stdout)
    assert document["ok"] is True and document["disagreements"] == [] and len(document["entities"]) == 20
    assert "0 disagreement(s)" in ok.stderr

    table = runner.invoke(app, [*base, "--service", "driver_quality", "--sample", "5"])
    assert table.exit_code == 0 and "fsql skew driver_quality" in table.stderr

    schema = fsql.load_project(built_example).config.target.online_schema
    _sql(postgres_dsn, f'UPDATE "{schema}".driver_profile SET seats = seats + 1')
    bad = runner.invoke(app, [*base, "--service", "driver_quality", "--sample", "3", "-o", "json"])
    assert bad.exit_code == 1, bad.output
    said = json.loads(bad.stdout)
    assert said["ok"] is False
    assert {d["feature"] for d in said["disagreements"]} <= {"driver_profile__seats", "driver_profile__is_xl"}
    assert "driver_profile__seats" in {d["feature"] for d in said["disagreements"]}
    assert all(d["online"] == d["offline"] + 1 for d in said["disagreements"] if d["feature"].endswith("seats"))
    results = json.loads((built_example / "target" / "run_results.json").read_text())["results"]
    statuses = {r["unique_id"]: r["status"] for r in results}
    assert statuses["skew.driver_quality.driver_profile"] == "fail"
    assert statuses["skew.driver_quality.driver_hourly_stats"] == "pass"

    unknown = runner.invoke(app, [*base, "--service", "ride_acceptanse"])
    assert unknown.exit_code == 2 and "unknown feature service 'ride_acceptanse'" in unknown.stderr
    assert "Did you mean" in unknown.stderr or "ride_acceptance" in unknown.stderr
    no_store = runner.invoke(app, [*base, "--service", "driver_quality", "-t", "file"])
    assert no_store.exit_code == 2 and "has no online store" in no_store.stderr
    for wrong, said_so in (
        (["--output", "yaml"], "--output must be 'table' or 'json', not 'yaml'"),
        (["--at", "yesterday"], "--at 'yesterday' is not an ISO 8601 time"),
    ):
        refused = runner.invoke(app, [*base, "--service", "driver_quality", *wrong])
        assert refused.exit_code == 2 and said_so in refused.stderr, refused.stderr
    zero = runner.invoke(app, [*base, "--service", "driver_quality", "--sample", "0"])
    assert zero.exit_code == 2 and "--sample must be at least 1" in zero.stderr
    early = runner.invoke(app, [*base, "--service", "driver_quality", "--at", "2024-03-01T00:00:00Z"])
    assert early.exit_code == 2 and "--at 2024-03-01T00:00:00+00:00 is before" in early.stderr


def test_cli_a_view_not_built(seeded_example: Path, tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> None:
    root = tmp_path / "example"
    shutil.copytree(seeded_example, root, ignore=shutil.ignore_patterns("target"))
    (root / "profiles.yml").write_text(
        "rides:\n  target: pg\n  outputs:\n    pg:\n      offline: 'duckdb:///:memory:'\n"
        f"      online: '{online_url(postgres_dsn)}'\n      online_schema: {postgres_schema}\n"
    )
    runner = CliRunner()
    before = runner.invoke(app, ["--project-dir", str(root), "skew", "--service", "driver_quality"])
    assert before.exit_code == 2 and "have not been built online" in before.stderr
    assert "fsql build --select" in before.stderr
    fsql.load_project(root).build(BuildOptions(end=T, select="driver_hourly_stats driver_profile"))
    partly = runner.invoke(app, ["--project-dir", str(root), "skew", "--service", "driver_quality"])
    assert partly.exit_code == 2 and "'driver_trip_windows'" in partly.stderr
    assert "'driver_profile'" not in partly.stderr.split("Run")[0]

"""Selecting feature views with dbt's graph operators, on the example project."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from typer.testing import CliRunner

import fsql
from fsql.cli import app
from fsql.errors import SelectionError
from fsql.graph import project_graph, select_views
from fsql.spec import Definitions

runner = CliRunner()


@pytest.fixture(scope="module")
def definitions(tmp_path_factory: pytest.TempPathFactory) -> Definitions:
    from conftest import copy_example_project

    return fsql.load_project(copy_example_project(tmp_path_factory.mktemp("selection"))).definitions


def test_the_graph_runs_source_to_view_to_service(definitions: Definitions) -> None:
    graph = project_graph(definitions)
    assert graph.parents[("view", "driver_profile")] == {("source", "drivers")}
    assert graph.children[("view", "driver_profile")] == {("service", "ride_acceptance"), ("service", "driver_quality")}
    assert graph.upstream([("service", "driver_quality")]) == {
        ("service", "driver_quality"),
        ("view", "driver_hourly_stats"),
        ("view", "driver_profile"),
        ("view", "driver_trip_windows"),
        ("source", "driver_stats"),
        ("source", "drivers"),
        ("source", "completed_trips"),
    }


@pytest.mark.parametrize(
    ("select", "views"),
    [
        ("driver_profile", ["driver_profile"]),
        ("view:driver_profile", ["driver_profile"]),
        # Upstream of a view is its source, downstream are services: neither is built.
        ("+driver_profile", ["driver_profile"]),
        ("driver_profile+", ["driver_profile"]),
        ("+driver_profile+", ["driver_profile"]),
        ("source:driver_stats", ["driver_hourly_stats"]),
        ("source:driver_stats+", ["driver_hourly_stats"]),
        ("service:driver_quality", ["driver_hourly_stats", "driver_profile", "driver_trip_windows"]),
        ("+service:driver_quality", ["driver_hourly_stats", "driver_profile", "driver_trip_windows"]),
        ("tag:realtime", ["driver_hourly_stats", "zone_demand", "zone_request_windows"]),
        ("entity:rider", ["rider_driver_affinity", "rider_trip_windows", "rider_profile"]),
        (
            "tag:driver,service:ride_acceptance",
            ["rider_driver_affinity", "driver_hourly_stats", "driver_profile", "driver_trip_windows"],
        ),
        (
            "service:driver_quality zone_demand",
            ["driver_hourly_stats", "driver_profile", "driver_trip_windows", "zone_demand"],
        ),
    ],
)
def test_selectors(definitions: Definitions, select: str, views: list[str]) -> None:
    assert select_views(definitions, select=select) == views


def test_exclude_takes_the_same_syntax(definitions: Definitions) -> None:
    picked = select_views(definitions, select="service:ride_acceptance", exclude="+tag:rider source:zone_demand+")
    assert picked == ["driver_hourly_stats", "driver_profile", "driver_trip_windows", "zone_request_windows"]


@pytest.mark.parametrize(
    ("select", "views"),
    [("source:trips", []), ("tag:zone,tag:driver", []), ("source:trips+", [])],
    ids=["source-without-views", "empty-intersection", "source-without-views+"],
)
def test_known_names_that_match_no_view_are_an_empty_selection(
    definitions: Definitions, select: str, views: list[str]
) -> None:
    # Every source of the example feeds a view; a source nobody reads yet is a real project's first day.
    unread_trips = {name: view for name, view in definitions.feature_views.items() if view.source != "trips"}
    unread_trips_services = {
        name: service
        for name, service in definitions.feature_services.items()
        if all(ref.view in unread_trips for ref in service.features)
    }
    without = dataclasses.replace(definitions, feature_views=unread_trips, feature_services=unread_trips_services)
    assert select_views(without, select=select) == views


@pytest.mark.parametrize(
    ("select", "message"),
    [
        ("driver_profil", "'driver_profil': there is no feature view 'driver_profil'. Did you mean 'driver_profile'?"),
        ("+service:ride_accept", "there is no feature service 'ride_accept'. Did you mean 'ride_acceptance'?"),
        ("source:tripz+", "'source:tripz+': there is no source 'tripz'. Did you mean 'trips'?"),
        ("tag:realtim", "no feature view has the tag 'realtim'. Did you mean 'realtime'?"),
        ("entity:ridr", "there is no entity 'ridr'. Did you mean 'rider'?"),
        ("model:x", "unknown selector method 'model:' in 'model:x'"),
        (
            "service:zzz",
            "there is no feature service 'zzz'. Known: driver_quality, ride_acceptance, ride_offer_scoring.",
        ),
    ],
)
def test_an_unknown_name_is_an_error_with_a_suggestion(definitions: Definitions, select: str, message: str) -> None:
    with pytest.raises(SelectionError) as raised:
        select_views(definitions, select=select)
    assert message in str(raised.value)


def test_build_of_an_empty_selection_says_nothing_to_do_and_runs_nothing(example_copy: Path) -> None:
    result = runner.invoke(app, ["build", "--project-dir", str(example_copy), "--select", "tag:zone,tag:driver"])
    assert result.exit_code == 0, result.output
    assert "nothing to do: the selection 'tag:zone,tag:driver' matches no feature view" in result.stderr
    assert "fsql build" not in result.stderr  # no empty summary table
    assert not (example_copy / "target" / "run_results.json").exists()


def test_build_excluding_everything_says_nothing_to_do(example_copy: Path) -> None:
    args = ["materialize", "--start", "2024-01-01", "--exclude", "entity:driver entity:rider entity:zone"]
    result = runner.invoke(app, [*args, "--project-dir", str(example_copy)])
    assert result.exit_code == 0, result.output
    assert "the selection of every feature view minus --exclude 'entity:driver" in result.stderr


def test_build_of_an_unknown_name_exits_2_with_a_suggestion(example_copy: Path) -> None:
    result = runner.invoke(app, ["build", "--project-dir", str(example_copy), "-s", "service:driver_qualty+"])
    assert result.exit_code == 2
    assert "Did you mean 'driver_quality'?" in result.stderr

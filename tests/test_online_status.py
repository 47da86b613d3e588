"""Lookups that tell the truth: each value's status (PRESENT, NOT_FOUND, OUTSIDE_MAX_AGE), its
event time and each view's as_of, from the same single read as the values."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from online_helpers import TWO_VIEWS, build, t, write_project, write_rider_rows, write_rows
from typer.testing import CliRunner

import fsql
from fsql.cli import app
from fsql.online.result import FeatureStatus

PRESENT, NOT_FOUND, OUTSIDE = FeatureStatus.PRESENT, FeatureStatus.NOT_FOUND, FeatureStatus.OUTSIDE_MAX_AGE


def utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC)


@pytest.fixture
def project(tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> Path:
    root = write_project(tmp_path / "p", postgres_dsn, postgres_schema, TWO_VIEWS)
    # driver 1: a day old at t(3), exactly the 1d ttl; driver 2: a row whose rate is NULL.
    write_rows(root, [(1, t(2), None, 0.1, "one"), (2, t(3), None, None, "two")])
    write_rider_rows(root, [(7, t(1), 70), (8, t(3), 80)])
    build(root, t(4))
    return root


def test_each_status_with_its_event_time_and_rows_in_the_order_asked(project: Path) -> None:
    rows = [{"driver_id": 2}, {"driver_id": 404}, {"driver_id": 1}, {"driver_id": 2}]
    result = fsql.load_project(project).lookup(rows, features=["driver_stats"], now=utc(t(3, 12)))
    assert result.rows() == [
        {"driver_id": 2, "rate": None, "label": "two"},
        {"driver_id": 404, "rate": None, "label": None},
        {"driver_id": 1, "rate": None, "label": None},
        {"driver_id": 2, "rate": None, "label": "two"},
    ]
    # A NULL value in a row within the ttl is PRESENT (value None), as Feast's Python server says.
    assert [s["rate"] for s in result.statuses()] == [PRESENT, NOT_FOUND, OUTSIDE, PRESENT]
    assert [s["label"] for s in result.statuses()] == [PRESENT, NOT_FOUND, OUTSIDE, PRESENT]
    # The event time of the row read, also when the ttl hides its values; None when there is none.
    assert [e["rate"] for e in result.event_timestamps()] == [utc(t(3)), None, utc(t(2)), utc(t(3))]
    assert result.as_of() == {"driver_stats": None}


def test_the_ttl_bound_is_inclusive_and_one_microsecond_later_is_outside(project: Path) -> None:
    loaded = fsql.load_project(project)
    at_ttl = loaded.lookup([{"driver_id": 1}], features=["driver_stats:rate"], now=utc(t(3)))
    assert (at_ttl.rows(), at_ttl.statuses()) == ([{"driver_id": 1, "rate": 0.1}], [{"rate": PRESENT}])
    later = utc(t(3)) + timedelta(microseconds=1)
    past = loaded.lookup([{"driver_id": 1}], features=["driver_stats:rate"], now=later)
    assert (past.rows(), past.statuses()) == ([{"driver_id": 1, "rate": None}], [{"rate": OUTSIDE}])
    assert past.event_timestamps() == [{"rate": utc(t(2))}]


def test_a_service_of_several_views_gives_each_view_its_own_status_and_time(project: Path) -> None:
    rows = [{"driver_id": 1, "rider_id": 9}, {"driver_id": 2, "rider_id": 7}, {"driver_id": 404, "rider_id": 8}]
    with fsql.load_project(project).online_store() as store:
        result = store.lookup(rows, service="both", now=utc(t(3, 12)))
        plain = store.get_online_features(rows, service="both", now=utc(t(3, 12)))
    assert plain == result.rows()
    assert result.feature_names == ("rate", "label", "trips")
    assert result.rows() == [
        {"driver_id": 1, "rider_id": 9, "rate": None, "label": None, "trips": None},
        {"driver_id": 2, "rider_id": 7, "rate": None, "label": "two", "trips": 70},
        {"driver_id": 404, "rider_id": 8, "rate": None, "label": None, "trips": 80},
    ]
    assert result.statuses() == [
        {"rate": OUTSIDE, "label": OUTSIDE, "trips": NOT_FOUND},
        {"rate": PRESENT, "label": PRESENT, "trips": PRESENT},  # rider_stats has no ttl: 2.5 days old is fine
        {"rate": NOT_FOUND, "label": NOT_FOUND, "trips": PRESENT},
    ]
    drivers, riders = result.views
    assert (drivers.name, drivers.features, riders.name, riders.features) == (
        "driver_stats",
        ("rate", "label"),
        "rider_stats",
        ("trips",),
    )
    assert drivers.event_timestamps == (utc(t(2)), utc(t(3)), None)
    assert riders.event_timestamps == (None, utc(t(1)), utc(t(3)))
    assert result.as_of() == {"driver_stats": None, "rider_stats": None}


def test_full_feature_names_name_statuses_and_times_as_the_values(project: Path) -> None:
    result = fsql.load_project(project).lookup(
        [{"driver_id": 1, "rider_id": 7}], service="both", full_feature_names=True, now=utc(t(2, 1))
    )
    assert list(result.statuses()[0]) == ["driver_stats__rate", "driver_stats__label", "rider_stats__trips"]
    assert list(result.event_timestamps()[0]) == list(result.rows()[0])[2:]


def test_get_with_status_prints_statuses_event_times_and_as_of_as_json(project: Path) -> None:
    args = ["--project-dir", str(project), "get", "--service", "both", "--now", "2024-03-03T12:00:00Z"]
    entities = ["--entity", "driver_id=2,rider_id=9", "--entity", "driver_id=1,rider_id=7"]
    result = CliRunner().invoke(app, [*args, *entities, "--with-status"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "as_of": {"driver_stats": None, "rider_stats": None},
        "rows": [
            {
                "entity": {"driver_id": 2, "rider_id": 9},
                "values": {"rate": None, "label": "two", "trips": None},
                "statuses": {"rate": "PRESENT", "label": "PRESENT", "trips": "NOT_FOUND"},
                "event_timestamps": {
                    "rate": "2024-03-03T00:00:00+00:00",
                    "label": "2024-03-03T00:00:00+00:00",
                    "trips": None,
                },
            },
            {
                "entity": {"driver_id": 1, "rider_id": 7},
                "values": {"rate": None, "label": None, "trips": 70},
                "statuses": {"rate": "OUTSIDE_MAX_AGE", "label": "OUTSIDE_MAX_AGE", "trips": "PRESENT"},
                "event_timestamps": {
                    "rate": "2024-03-02T00:00:00+00:00",
                    "label": "2024-03-02T00:00:00+00:00",
                    "trips": "2024-03-01T00:00:00+00:00",
                },
            },
        ],
    }
    plain = CliRunner().invoke(app, [*args, *entities])
    assert json.loads(plain.stdout)[0] == {"driver_id": 2, "rider_id": 9, "rate": None, "label": "two", "trips": None}

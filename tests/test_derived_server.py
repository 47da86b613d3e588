"""POST /get-online-features with derived features: request fields are extra entity columns (as
Feast's clients send request data), timestamps as ISO 8601; the answer equals the Python API's,
and a missing or mistyped request field is a 400 naming it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from online_helpers import serving_client
from test_derived_invariant import SERVICE, T, online_example  # noqa: F401 (a fixture)

import fsql
from fsql.build import BuildOptions
from fsql.server.app import ServerOptions, create_app
from fsql.server.feast_json import NO_TIME

pytestmark = pytest.mark.postgres


def test_derived_features_over_http_equal_the_python_api(online_example: Path) -> None:  # noqa: F811
    project = fsql.load_project(online_example)
    project.build(BuildOptions(end=T))
    offered = T - timedelta(minutes=1)
    rows = [
        {"rider_id": 1, "driver_id": 1001, "offered_fare": 12.5, "offered_at": offered, "pickup_eta_at": T},
        {"rider_id": -1, "driver_id": -1, "offered_fare": 0.0, "offered_at": offered, "pickup_eta_at": None},
    ]
    body = {
        "feature_service": SERVICE,
        "entities": {
            "rider_id": [1, -1],
            "driver_id": [1001, -1],
            "offered_fare": [12.5, 0],  # JSON's 0 is an int: a double field takes it
            "offered_at": [offered.isoformat(), offered.strftime("%Y-%m-%dT%H:%M:%SZ")],
            "pickup_eta_at": [T.isoformat(), None],
        },
    }
    with project.online_store() as store:
        expected = store.lookup(rows, service=SERVICE)
        http = serving_client(create_app(store, ServerOptions()))
        response = http.post("/get-online-features", json=body)
        assert response.status_code == 200, response.text
        answer = response.json()
        names = answer["metadata"]["feature_names"]
        assert names == ["rider_id", "driver_id", *expected.feature_names]
        by_name = dict(zip(names, answer["results"], strict=True))
        for name, values in zip(expected.feature_names, zip(*expected.values, strict=True), strict=True):
            assert by_name[name]["values"] == list(values), name
        assert by_name["pickup_wait_s"]["values"] == [60.0, None]
        assert by_name["log_fare"]["values"][1] is None  # ln(0)
        assert by_name["pickup_wait_s"]["statuses"] == ["PRESENT", "PRESENT"]
        assert by_name["pickup_wait_s"]["event_timestamps"] == [NO_TIME, NO_TIME]

        missing = {**body, "entities": {k: v for k, v in body["entities"].items() if k != "offered_fare"}}
        response = http.post("/get-online-features", json=missing)
        assert response.status_code == 400
        assert "lacks request field 'offered_fare'" in response.json()["error"]
        wrong = {**body, "entities": {**body["entities"], "offered_fare": ["a lot", 1.0]}}
        response = http.post("/get-online-features", json=wrong)
        assert response.status_code == 400
        assert "request field 'offered_fare' is double, not str" in response.json()["error"]
        bad_time = {**body, "entities": {**body["entities"], "offered_at": ["yesterday", None]}}
        response = http.post("/get-online-features", json=bad_time)
        assert response.status_code == 400 and "'offered_at'" in response.json()["error"]


def test_fsql_get_reads_request_fields_as_their_declared_types(online_example: Path) -> None:  # noqa: F811
    import json

    from typer.testing import CliRunner

    from fsql.cli import app

    fsql.load_project(online_example).build(BuildOptions(end=T))
    runner = CliRunner()
    entity = (
        "rider_id=1,driver_id=1001,offered_fare=10,offered_at=2024-03-18T09:00:00,pickup_eta_at=2024-03-18T09:02:30Z"
    )
    got = runner.invoke(
        app,
        ["--project-dir", str(online_example), "get", "--service", SERVICE, "--entity", entity, "--now", T.isoformat()],
    )
    assert got.exit_code == 0, got.output
    (row,) = json.loads(got.stdout)
    assert row["pickup_wait_s"] == 150.0  # a naive time is UTC
    assert row["log_fare"] == pytest.approx(2.302585092994046)
    bad = runner.invoke(
        app,
        ["--project-dir", str(online_example), "get", "--service", SERVICE, "--entity", "rider_id=1,offered_fare=x"],
    )
    assert bad.exit_code == 2
    assert "'x' is not a valid double for 'offered_fare'" in bad.stderr

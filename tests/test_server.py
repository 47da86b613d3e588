"""`fsql serve`: Feast's JSON over the same lookup as the Python API, on a real Postgres;
every bad input a 4xx naming the problem; /health, /metrics, the bearer token, a SELECT-only role."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from online_helpers import TWO_VIEWS, build, online_url, serving_client, write_project, write_rider_rows, write_rows
from starlette.testclient import TestClient

import fsql
from fsql.online.lookup import OnlineStore
from fsql.server.app import ServerOptions, create_app
from fsql.server.feast_json import NO_TIME

NOW = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
FRESH, STALE, OLD = NOW - timedelta(hours=2), NOW - timedelta(days=3), NOW - timedelta(days=30)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def project(tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> Path:
    root = write_project(tmp_path / "p", postgres_dsn, postgres_schema, TWO_VIEWS)
    # driver 1 fresh, driver 2 past the 1d ttl, driver 3 fresh with a NULL rate; riders have no ttl.
    write_rows(root, [(1, FRESH, None, 0.5, "one"), (2, STALE, None, 0.2, "two"), (3, FRESH, None, None, "three")])
    write_rider_rows(root, [(7, OLD, 70)])
    build(root, NOW + timedelta(seconds=1))
    return root


@pytest.fixture
def store(project: Path) -> Iterator[OnlineStore]:
    with fsql.load_project(project).online_store(max_connections=2) as opened:
        yield opened


def client(store: OnlineStore, **options: Any) -> TestClient:
    return serving_client(create_app(store, ServerOptions(**options)))


def test_answers_feast_shape_with_statuses_and_event_times(store: OnlineStore) -> None:
    body = {"feature_service": "both", "entities": {"driver_id": [1, 2, 3, 404], "rider_id": [7, 7, 8, 7]}}
    response = client(store).post("/get-online-features", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "metadata": {"feature_names": ["driver_id", "rider_id", "rate", "label", "trips"]},
        "results": [
            {"values": [1, 2, 3, 404], "statuses": ["PRESENT"] * 4, "event_timestamps": [NO_TIME] * 4},
            {"values": [7, 7, 8, 7], "statuses": ["PRESENT"] * 4, "event_timestamps": [NO_TIME] * 4},
            {
                "values": [0.5, None, None, None],
                "statuses": ["PRESENT", "OUTSIDE_MAX_AGE", "PRESENT", "NOT_FOUND"],
                "event_timestamps": [iso(FRESH), iso(STALE), iso(FRESH), NO_TIME],
            },
            {
                "values": ["one", None, "three", None],
                "statuses": ["PRESENT", "OUTSIDE_MAX_AGE", "PRESENT", "NOT_FOUND"],
                "event_timestamps": [iso(FRESH), iso(STALE), iso(FRESH), NO_TIME],
            },
            {
                "values": [70, 70, None, 70],
                "statuses": ["PRESENT", "PRESENT", "NOT_FOUND", "PRESENT"],
                "event_timestamps": [iso(OLD), iso(OLD), NO_TIME, iso(OLD)],
            },
        ],
    }


def test_features_by_name_with_full_feature_names_equal_the_python_api(store: OnlineStore) -> None:
    body = {"features": ["rider_stats:trips", "driver_stats:rate"], "entities": {"rider_id": [7], "driver_id": [1]}}
    response = client(store).post("/get-online-features", json={**body, "full_feature_names": True})
    assert response.status_code == 200, response.text
    names = response.json()["metadata"]["feature_names"]
    assert names == ["rider_id", "driver_id", "rider_stats__trips", "driver_stats__rate"]
    python = store.get_online_features(
        [{"rider_id": 7, "driver_id": 1}], features=body["features"], full_feature_names=True
    )
    assert [column["values"][0] for column in response.json()["results"]] == list(python[0].values())


ONE = {"driver_id": [1]}


def views(entities: Any, **fields: Any) -> dict[str, Any]:
    """A request for the driver_stats view (unless `fields` says otherwise) for `entities`."""
    return {"features": ["driver_stats"], "entities": entities, **fields}


BAD_INPUTS = [
    ("unknown-service", {"feature_service": "nope", "entities": ONE}, 400, "unknown feature service 'nope'"),
    ("unknown-view", {"features": ["drivers:rate"], "entities": ONE}, 400, "'drivers:rate' names no feature view"),
    ("unknown-feature", {"features": ["driver_stats:rat"], "entities": ONE}, 400, "no feature 'rat'"),
    ("missing-key", {"feature_service": "both", "entities": ONE}, 400, "lacks key 'rider_id'"),
    ("key-type", views({"driver_id": ["1"]}), 400, "'driver_id' is bigint, not str"),
    ("key-float", views({"driver_id": [1.5]}), 400, "is bigint, not float"),
    ("key-list", views({"driver_id": [[1]]}), 400, "is bigint, not list"),
    ("key-range", views({"driver_id": [2**63]}), 400, "out of that range"),
    ("key-beyond-64-bits", views({"driver_id": [2**70]}), 400, "is bigint, not float"),  # JSON parsers read a float
    ("no-rows", views({"driver_id": []}), 400, "no entity rows"),
    ("ragged", views({"driver_id": [1], "rider_id": [1, 2]}), 400, "'rider_id' has 2"),
    ("no-entities", {"features": ["driver_stats"]}, 400, "'entities' must be an object"),
    ("column-not-list", views({"driver_id": 1}), 400, "must be a list"),
    ("neither", {"entities": ONE}, 400, "exactly one of a feature service"),
    ("both", views(ONE, feature_service="both"), 400, "exactly one"),
    ("features-str", views(ONE, features="driver_stats"), 400, "'features' must be a list"),
    ("full-names", views(ONE, full_feature_names=1), 400, "must be true or false"),
    ("unknown-field", {"feature": ["driver_stats"], "entities": ONE}, 400, "unknown field(s) 'feature'"),
    ("not-object", [1, 2], 400, "must be a JSON object"),
    ("too-many", views({"driver_id": list(range(11))}), 413, "at most 10"),
]


@pytest.mark.parametrize(("body", "status", "words"), [case[1:] for case in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_a_4xx_naming_the_problem(store: OnlineStore, body: Any, status: int, words: str) -> None:
    response = client(store, max_entities=10).post("/get-online-features", json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert words in response.json()["error"]
    assert "Traceback" not in response.text


def test_invalid_json_and_a_body_too_large_are_4xx(store: OnlineStore) -> None:
    http = client(store, max_body_bytes=100)
    response = http.post("/get-online-features", content=b'{"features": [')
    assert (response.status_code, "not valid JSON" in response.json()["error"]) == (400, True)
    large = b'{"features": ["driver_stats"], "entities": {"driver_id": [' + b"1," * 100 + b"1]}}"
    response = http.post("/get-online-features", content=large)
    assert (response.status_code, "at most 100" in response.json()["error"]) == (413, True)

    def chunked() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
        yield large[:60]
        yield large[60:]

    response = http.post("/get-online-features", content=chunked())
    assert (response.status_code, "over 100 bytes" in response.json()["error"]) == (413, True)


def test_a_view_that_is_not_online_is_refused_with_a_4xx(
    tmp_path: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    offline = TWO_VIEWS.replace("    ttl: 1d\n    online: true\n", "    ttl: 1d\n    online: false\n")
    root = write_project(tmp_path / "p", postgres_dsn, postgres_schema, offline)
    with fsql.load_project(root).online_store(max_connections=1) as opened:
        response = client(opened).post("/get-online-features", json={"feature_service": "both", "entities": {}})
        assert response.status_code == 400  # an empty entities object: refused before the views are read
        body = {"feature_service": "both", "entities": {"driver_id": [1], "rider_id": [1]}}
        response = client(opened).post("/get-online-features", json=body)
    assert response.status_code == 400
    assert "'driver_stats'" in response.json()["error"] and "online: false" in response.json()["error"]


def test_a_token_is_required_on_every_route_but_health(store: OnlineStore) -> None:
    http = client(store, token="s3cret")
    body = {"features": ["driver_stats"], "entities": {"driver_id": [1]}}
    assert http.post("/get-online-features", json=body).status_code == 401
    wrong = http.post("/get-online-features", json=body, headers={"authorization": "Bearer nope"})
    assert (wrong.status_code, "bearer token" in wrong.json()["error"]) == (401, True)
    assert http.get("/metrics").status_code == 401
    assert http.get("/health").status_code == 200
    right = http.post("/get-online-features", json=body, headers={"authorization": "Bearer s3cret"})
    assert right.status_code == 200


def test_health_is_ready_only_while_the_pool_reaches_postgres(project: Path, postgres_dsn: str) -> None:
    with fsql.load_project(project).online_store(max_connections=1) as opened:
        http = client(opened)
        assert http.get("/health").json() == {"status": "ok"}
        pids = http.portal.call(http.app.state.lookups.backend_pids)  # type: ignore[attr-defined,union-attr]
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS t(pid)", (pids,))
        down = http.get("/health")
        assert down.status_code == 503
        assert "does not answer" in down.json()["error"]
        assert http.get("/health").status_code == 200  # the pool replaced the broken connection


def test_metrics_count_requests_by_endpoint_errors_and_pool_use(store: OnlineStore) -> None:
    http = client(store)
    body = {"features": ["driver_stats"], "entities": {"driver_id": [1]}}
    for _ in range(3):
        assert http.post("/get-online-features", json=body).status_code == 200
    assert http.post("/get-online-features", json={"feature_service": "nope", "entities": {}}).status_code == 400
    text = http.get("/metrics").text
    lines = set(text.splitlines())
    assert 'fsql_request_duration_seconds_count{endpoint="/get-online-features"} 4' in lines
    assert 'fsql_request_duration_seconds_bucket{endpoint="/get-online-features",le="+Inf"} 4' in lines
    assert 'fsql_responses_total{endpoint="/get-online-features",code="200"} 3' in lines
    assert 'fsql_errors_total{endpoint="/get-online-features",code="400"} 1' in lines
    assert "# TYPE fsql_request_duration_seconds histogram" in lines
    assert "fsql_pool_connections_max 2" in lines
    assert any(line.startswith("fsql_pool_connections_idle ") for line in lines)


@pytest.fixture
def lookup_role(postgres_dsn: str, postgres_schema: str) -> Iterator[str]:
    role = f"fsql_serve_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        yield role
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            admin.execute(f'DROP OWNED BY "{role}"')
            admin.execute(f'DROP ROLE "{role}"')


def test_serves_with_a_role_that_can_only_select_the_online_schema(
    project: Path, postgres_dsn: str, postgres_schema: str, lookup_role: str
) -> None:
    from sqlalchemy.engine import make_url

    with psycopg.connect(postgres_dsn, autocommit=True) as admin:  # the README's GRANTs
        admin.execute(f'GRANT USAGE ON SCHEMA "{postgres_schema}" TO "{lookup_role}"')
        admin.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{postgres_schema}" TO "{lookup_role}"')
    url = make_url(online_url(postgres_dsn)).set(username=lookup_role).render_as_string(hide_password=False)
    definitions = fsql.load_project(project).definitions
    with OnlineStore(url, schema=postgres_schema, definitions=definitions, max_connections=1) as readonly:
        with readonly.pool.connection() as connection, pytest.raises(psycopg.errors.InsufficientPrivilege):
            connection.execute(f'DELETE FROM "{postgres_schema}".driver_stats')
        http = client(readonly)
        assert http.get("/health").status_code == 200
        body = {"feature_service": "both", "entities": {"driver_id": [1], "rider_id": [7]}}
        response = http.post("/get-online-features", json=body)
    assert response.status_code == 200, response.text
    assert [column["values"][0] for column in response.json()["results"]] == [1, 7, 0.5, "one", 70]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_fsql_serve_runs_uvicorn_on_loopback_with_a_token_from_the_environment(project: Path) -> None:
    port = free_port()
    env = {**os.environ, "FSQL_SERVE_TOKEN": "tok"}
    command = [str(Path(sys.executable).with_name("fsql")), "--project-dir", str(project), "serve", "--port", str(port)]
    server = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        while True:  # until it listens (or dies: then say why)
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            try:
                if httpx.get(f"{base}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        body = {"feature_service": "both", "entities": {"driver_id": [1], "rider_id": [7]}}
        assert httpx.post(f"{base}/get-online-features", json=body).status_code == 401
        answer = httpx.post(f"{base}/get-online-features", json=body, headers={"authorization": "Bearer tok"})
        assert answer.status_code == 200
        assert answer.json()["results"][2]["statuses"] == ["PRESENT"]
    finally:
        server.terminate()
        server.wait()

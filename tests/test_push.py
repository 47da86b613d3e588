"""Push: rows written into the online table through the build's never-back-in-time upsert, on a
real Postgres; pushes and builds of one view in threads; bad rows refused by name; POST /push
(token, a SELECT-only role); offline pushes appended to a folder source and read by training."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from online_helpers import DEFINITIONS, build, online_url, serving_client, stored, t, write_project
from starlette.testclient import TestClient

import fsql
from fsql.errors import CompileError, DefinitionError
from fsql.online.lookup import OnlineStore
from fsql.server.app import ServerOptions, create_app

# driver_stats takes pushes and reads a folder of parquet files (offline pushes add one).
PUSHED = DEFINITIONS.replace("path: data/stats.parquet", "path: data/stats/*.parquet").replace(
    "    online: true\n", "    online: true\n    push: true\n", 1
)
AFTER = t(20)  # builds run up to here


def utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC)


def write_source(root: Path, rows: list[tuple[Any, ...]], name: str = "base.parquet") -> None:
    """Rows of (driver_id, event_ts, created_ts, rate, label) as one file of the source's folder."""
    columns = list(zip(*rows, strict=True)) if rows else [[], [], [], [], []]
    table = pa.table(
        {
            "driver_id": pa.array(columns[0], pa.int64()),
            "event_ts": pa.array(columns[1], pa.timestamp("us")),
            "created_ts": pa.array(columns[2], pa.timestamp("us")),
            "rate": pa.array(columns[3], pa.float64()),
            "label": pa.array(columns[4], pa.string()),
        }
    )
    (root / "data" / "stats").mkdir(parents=True, exist_ok=True)
    pq.write_table(table, root / "data" / "stats" / name)


@pytest.fixture
def project(tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> Path:
    root = write_project(tmp_path / "p", postgres_dsn, postgres_schema, PUSHED)
    write_source(root, [(1, t(1), None, 0.1, "built")])
    return root


def row(driver: int, when: datetime, rate: float | None, label: str, created: datetime | None = None) -> dict:
    return {"driver_id": driver, "event_ts": when, "created_ts": created, "rate": rate, "label": label}


def values(dsn: str, schema: str) -> dict[int, tuple[Any, ...]]:
    return {k: (v[0], v[1], v[2]) for k, v in stored(dsn, schema).items()}  # rate, label, feature_ts


def test_an_older_push_after_a_newer_one_changes_nothing(
    project: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    p = fsql.load_project(project)
    first = p.push("driver_stats", [row(5, t(10), 0.9, "new")])  # before any build: the table is made
    assert (first.rows, first.written) == (1, 1)
    older = p.push("driver_stats", [row(5, t(9), 0.1, "old"), row(6, t(9), 0.6, "six")])
    assert (older.rows, older.written) == (2, 1)  # driver 6 is new; driver 5's stored row is newer
    assert values(postgres_dsn, postgres_schema) == {5: (0.9, "new", utc(t(10))), 6: (0.6, "six", utc(t(9)))}


def test_equal_versions_follow_the_build_rule_the_later_write_wins(
    project: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    p = fsql.load_project(project)
    p.push("driver_stats", [row(5, t(10), 0.9, "first", created=t(10, 1))])
    p.push("driver_stats", [row(5, t(10), 0.8, "second", created=t(10, 1))])  # same (event, created): replaces
    assert values(postgres_dsn, postgres_schema)[5] == (0.8, "second", utc(t(10)))
    p.push("driver_stats", [row(5, t(10), 0.7, "earlier correction", created=t(10, 0))])  # older created time
    p.push("driver_stats", [row(5, t(10), 0.6, "no created time")])  # NULL created ranks lowest
    assert values(postgres_dsn, postgres_schema)[5] == (0.8, "second", utc(t(10)))
    # In one push, one row per entity survives: the newest, and of equal ones the last.
    p.push(
        "driver_stats", [row(7, t(3), 0.3, "a"), row(7, t(4), 0.4, "b"), row(7, t(4), 0.5, "c"), row(7, t(2), 0.2, "d")]
    )
    assert values(postgres_dsn, postgres_schema)[7] == (0.5, "c", utc(t(4)))


def test_a_pushed_row_and_a_later_build_agree(project: Path, postgres_dsn: str, postgres_schema: str) -> None:
    p = fsql.load_project(project)
    p.push("driver_stats", [row(1, t(5), 0.5, "pushed"), row(2, t(8), 0.8, "pushed two")])
    # The source has driver 1 at t(1) (older than the push) and now driver 2's same row, and 3.
    write_source(
        project, [(1, t(1), None, 0.1, "built"), (2, t(8), None, 0.8, "pushed two"), (3, t(2), None, 0.3, "c")]
    )
    result = build(project, AFTER)
    assert [n.status for n in result.nodes] == ["success"]
    assert values(postgres_dsn, postgres_schema) == {
        1: (0.5, "pushed", utc(t(5))),  # the build's older row does not go back in time
        2: (0.8, "pushed two", utc(t(8))),
        3: (0.3, "c", utc(t(2))),
    }


def test_a_push_older_than_the_build_does_nothing_and_a_newer_one_wins(
    project: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    build(project, AFTER)
    p = fsql.load_project(project)
    assert p.push("driver_stats", [row(1, t(1) - timedelta(hours=1), 0.0, "older")]).written == 0
    assert values(postgres_dsn, postgres_schema) == {1: (0.1, "built", utc(t(1)))}
    assert p.push("driver_stats", [row(1, t(2), 0.2, "newer")]).written == 1
    build(project, AFTER)  # a rerun reads the source again (nothing new): the pushed row stays
    assert values(postgres_dsn, postgres_schema) == {1: (0.2, "newer", utc(t(2)))}


def test_a_full_refresh_rebuilds_from_the_source_so_online_only_pushes_go(
    project: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    p = fsql.load_project(project)
    build(project, AFTER)
    p.push("driver_stats", [row(1, t(2), 0.2, "online only")])
    p.push("driver_stats", [row(2, t(2), 0.4, "both")], to="online_and_offline")
    build(project, AFTER, full_refresh=True)
    assert values(postgres_dsn, postgres_schema) == {1: (0.1, "built", utc(t(1))), 2: (0.4, "both", utc(t(2)))}


def test_concurrent_pushes_and_a_build_lose_nothing_and_never_regress(
    project: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    drivers, versions, threads_n = 20, 6, 4
    # The source holds version 3 of every driver; builds must not undo newer pushed versions.
    write_source(project, [(d, t(1, 3), None, 3.0, f"{d}@3") for d in range(drivers)])
    build(project, t(1, 0))  # nothing in range yet: the table exists and is empty
    errors: list[BaseException] = []
    start = threading.Barrier(threads_n + 1)

    def pusher(worker: int) -> None:
        p = fsql.load_project(project)
        start.wait()
        try:
            for version in range(versions):  # each worker pushes every version of its own share of drivers
                batch = [
                    row(d, t(1, version), float(version), f"{d}@{version}")
                    for d in range(drivers)
                    if d % threads_n == worker
                ]
                p.push("driver_stats", list(reversed(batch)) if version % 2 else batch)
                # and each pushes older versions of everyone, which must never win
                p.push("driver_stats", [row(d, t(1, 0), -1.0, "stale") for d in range(drivers)])
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    def builder() -> None:
        start.wait()
        try:
            for _ in range(3):
                build(project, AFTER)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=pusher, args=(w,)) for w in range(threads_n)]
    threads.append(threading.Thread(target=builder))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    newest = versions - 1  # pushed version 5 is newer than the source's version 3
    expected = {d: (float(newest), f"{d}@{newest}", utc(t(1, newest))) for d in range(drivers)}
    assert values(postgres_dsn, postgres_schema) == expected
    build(project, AFTER, full_refresh=True)  # the pushes were online only: the source's version 3 again
    assert values(postgres_dsn, postgres_schema) == {d: (3.0, f"{d}@3", utc(t(1, 3))) for d in range(drivers)}


BAD_ROWS = [
    ("missing-key", [{"event_ts": t(2), "rate": 0.1, "label": "x"}], "row 0 lacks key 'driver_id'"),
    ("missing-feature", [{"driver_id": 1, "event_ts": t(2), "rate": 0.1}], "row 0 lacks column 'label'"),
    ("missing-time", [{"driver_id": 1, "rate": 0.1, "label": "x"}], "lacks column 'event_ts'"),
    ("null-key", [row(1, t(2), 0.1, "x"), {**row(1, t(2), 0.1, "x"), "driver_id": None}], "row 1: 'driver_id' is null"),
    ("key-type", [{**row(1, t(2), 0.1, "x"), "driver_id": "1"}], "'driver_id' is bigint, not str"),
    ("key-bool", [{**row(1, t(2), 0.1, "x"), "driver_id": True}], "'driver_id' is bigint, not bool"),
    ("key-range", [{**row(1, t(2), 0.1, "x"), "driver_id": 2**63}], "out of that range"),
    ("feature-type", [row(1, t(2), "high", "x")], "'rate' is double, not str"),  # type: ignore[arg-type]
    ("label-type", [row(1, t(2), 0.1, 7)], "'label' is text, not int"),  # type: ignore[arg-type]
    ("time-text", [{**row(1, t(2), 0.1, "x"), "event_ts": "yesterday"}], "'event_ts' is timestamptz"),
    ("unknown", [{**row(1, t(2), 0.1, "x"), "rat": 0.1}], "unknown column 'rat'"),
    ("nul-byte", [row(1, t(2), 0.1, "a\x00b")], "row 0: 'label' holds a NUL byte"),
    ("no-rows", [], "no rows"),
    ("not-rows", "driver_id=1", "rows must be a list"),
]


@pytest.mark.parametrize(("rows", "words"), [c[1:] for c in BAD_ROWS], ids=[c[0] for c in BAD_ROWS])
def test_bad_rows_are_refused_naming_the_column_and_nothing_is_written(
    project: Path, postgres_dsn: str, postgres_schema: str, rows: Any, words: str
) -> None:
    build(project, AFTER)
    with pytest.raises(CompileError) as caught:
        fsql.load_project(project).push("driver_stats", rows)
    assert words in str(caught.value)
    assert values(postgres_dsn, postgres_schema) == {1: (0.1, "built", utc(t(1)))}


def test_a_view_without_push_and_an_unknown_view_are_refused(project: Path) -> None:
    (project / "definitions" / "defs.yml").write_text(PUSHED.replace("    push: true\n", ""))
    p = fsql.load_project(project)
    with pytest.raises(CompileError, match=r"'driver_stats' \(definitions/defs.yml:\d+:\d+\) does not take pushes"):
        p.push("driver_stats", [row(1, t(2), 0.1, "x")])
    with pytest.raises(CompileError, match=r"unknown feature view 'driver_stat'\. Did you mean 'driver_stats'"):
        p.push("driver_stat", [row(1, t(2), 0.1, "x")])
    offline_only = PUSHED.replace("    online: true\n    push: true\n", "    online: false\n")
    (project / "definitions" / "defs.yml").write_text(offline_only)
    with pytest.raises(CompileError, match=r"'driver_stats' .* does not take pushes: add 'push: true'"):
        fsql.load_project(project).push("driver_stats", [row(1, t(2), 0.1, "x")])


def test_push_is_refused_at_validate_time_off_online_and_aggregate_views(project: Path) -> None:
    (project / "definitions" / "defs.yml").write_text(
        PUSHED.replace("online: true\n    push", "online: false\n    push")
    )
    with pytest.raises(DefinitionError, match=r"defs.yml:\d+:\d+: feature view 'driver_stats'.*needs 'online: true'"):
        fsql.load_project(project).validate(data_checks=False)
    aggregate = PUSHED.replace("    ttl: 1d\n", "").replace(
        "    features:\n      - {name: rate, type: double}\n      - {name: label, type: string}\n",
        "    granularity: 1h\n    aggregations:\n      - {name: trips, function: count, windows: [1d]}\n",
    )
    (project / "definitions" / "defs.yml").write_text(aggregate)
    with pytest.raises(DefinitionError, match="push applies to latest-value views only"):
        fsql.load_project(project).validate(data_checks=False)
    (project / "definitions" / "defs.yml").write_text(PUSHED.replace("push: true", "push: 'yes'"))
    with pytest.raises(DefinitionError, match="push"):
        fsql.load_project(project).validate(data_checks=False)


def test_offline_push_is_read_by_the_next_training_set(project: Path) -> None:
    p = fsql.load_project(project)
    spine = pa.table({"driver_id": pa.array([1, 9], pa.int64()), "event_timestamp": pa.array([t(3), t(3)])})
    before = p.training_set(spine=spine, features=["driver_stats:rate", "driver_stats:label"]).to_pylist()
    assert [(r["rate"], r["label"]) for r in before] == [(None, None), (None, None)]  # t(1) is past the 1d ttl
    result = p.push(
        "driver_stats",
        {
            "driver_id": [1, 9],
            "event_ts": [t(2, 12), t(2, 18)],
            "rate": [0.25, 0.9],
            "label": ["pushed", "nine"],
            "created_ts": [None, None],
        },
        to="online_and_offline",
    )
    assert result.offline_file is not None and result.offline_file.parent == project / "data" / "stats"
    assert result.offline_file.suffix == ".parquet" and not list(result.offline_file.parent.glob(".*"))
    after = p.training_set(spine=spine, features=["driver_stats:rate", "driver_stats:label"]).to_pylist()
    by_driver = {r["driver_id"]: (r["rate"], r["label"]) for r in after}  # a training set keeps no row order
    assert by_driver == {1: (0.25, "pushed"), 9: (0.9, "nine")}
    assert p.get_online_features([{"driver_id": 9}], features=["driver_stats:label"], now=utc(t(3))) == [
        {"driver_id": 9, "label": "nine"}
    ]


def test_offline_push_refuses_sources_it_cannot_append_to(
    project: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    single = PUSHED.replace("path: data/stats/*.parquet", "path: data/stats/base.parquet")
    (project / "definitions" / "defs.yml").write_text(single)
    with pytest.raises(CompileError, match="a glob of parquet files in a folder"):
        fsql.load_project(project).push("driver_stats", [row(1, t(2), 0.1, "x")], to="online_and_offline")
    computed = PUSHED.replace("{name: label, type: string}", "{name: label, type: string, expr: upper(label)}")
    (project / "definitions" / "defs.yml").write_text(computed)
    with pytest.raises(CompileError, match="feature\\(s\\) label are computed with 'expr'"):
        fsql.load_project(project).push("driver_stats", [row(1, t(2), 0.1, "x")], to="online_and_offline")
    with pytest.raises(CompileError, match="'to' must be one of 'online', 'online_and_offline'"):
        fsql.load_project(project).push("driver_stats", [row(1, t(2), 0.1, "x")], to="offline")
    assert list((project / "data" / "stats").iterdir()) == [project / "data" / "stats" / "base.parquet"]
    with psycopg.connect(postgres_dsn) as connection:  # refused before the online write: no table made
        assert connection.execute("SELECT to_regclass(%s)", (f'"{postgres_schema}".driver_stats',)).fetchone() == (
            None,
        )


# HTTP


@pytest.fixture
def store(project: Path) -> Iterator[OnlineStore]:
    build(project, AFTER)
    with fsql.load_project(project).online_store(max_connections=2) as opened:
        yield opened


def client(store: OnlineStore, **options: Any) -> TestClient:
    return serving_client(create_app(store, ServerOptions(**options)))


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_http_push_writes_through_the_same_upsert_and_needs_the_token(
    store: OnlineStore, project: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    http = client(store, token="s3cret", push_root=project)
    body = {"view": "driver_stats", "rows": [{"driver_id": 4, "event_ts": iso(t(3)), "rate": 0.4, "label": "four"}]}
    assert http.post("/push", json=body).status_code == 401
    auth = {"authorization": "Bearer s3cret"}
    answer = http.post("/push", json=body, headers=auth)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"view": "driver_stats", "rows": 1, "written": 1, "offline_file": None}
    old = {"view": "driver_stats", "df": {"driver_id": [4], "event_ts": [iso(t(2))], "rate": [0.0], "label": ["x"]}}
    assert http.post("/push", json=old, headers=auth).json()["written"] == 0
    offline = {**body, "rows": [{"driver_id": 8, "event_ts": "2024-03-04T00:00:00+00:00", "rate": 1, "label": "eight"}]}
    answer = http.post("/push", json={**offline, "to": "online_and_offline"}, headers=auth)
    assert answer.status_code == 200, answer.text
    assert Path(answer.json()["offline_file"]).parent == project / "data" / "stats"
    assert values(postgres_dsn, postgres_schema) == {
        1: (0.1, "built", utc(t(1))),
        4: (0.4, "four", utc(t(3))),
        8: (1.0, "eight", utc(t(4))),
    }
    lookup = {"features": ["driver_stats:label"], "entities": {"driver_id": [4]}}
    found = http.post("/get-online-features", json=lookup, headers=auth).json()["results"][1]
    assert found["event_timestamps"] == [iso(t(3))]  # the pushed row (past the ttl now, in 2024)


HTTP_BAD = [
    ("not-push-view", {"view": "nope", "rows": []}, 400, "unknown feature view 'nope'"),
    (
        "bad-type",
        {"view": "driver_stats", "rows": [{"driver_id": "1", "event_ts": "2024-03-02", "rate": 1, "label": "x"}]},
        400,
        "'driver_id' is bigint, not str",
    ),
    (
        "missing",
        {"view": "driver_stats", "rows": [{"driver_id": 1, "rate": 1, "label": "x"}]},
        400,
        "lacks column 'event_ts'",
    ),
    (
        "unknown",
        {"view": "driver_stats", "rows": [{"driver_id": 1, "event_ts": "2024-03-02", "rate": 1, "label": "x", "z": 1}]},
        400,
        "unknown column 'z'",
    ),
    ("no-view", {"rows": []}, 400, "'view' must be"),
    ("both", {"view": "driver_stats", "rows": [], "df": {}}, 400, "exactly one of 'rows'"),
    ("ragged", {"view": "driver_stats", "df": {"driver_id": [1], "rate": [1, 2]}}, 400, "'rate' has 2"),
    ("field", {"view": "driver_stats", "rows": [], "push_source_name": "x"}, 400, "unknown field(s)"),
    ("to", {"view": "driver_stats", "rows": [], "to": "offline"}, 400, "'to' must be one of"),
    ("not-object", [1], 400, "must be a JSON object"),
    ("row-not-object", {"view": "driver_stats", "rows": [1]}, 400, "row 0 is int, not an object"),
    (
        "nul",
        {"view": "driver_stats", "rows": [{"driver_id": 1, "event_ts": "2024-03-02", "rate": 1, "label": "\u0000"}]},
        400,
        "NUL byte",
    ),
]


@pytest.mark.parametrize(("body", "status", "words"), [c[1:] for c in HTTP_BAD], ids=[c[0] for c in HTTP_BAD])
def test_http_push_bad_input_is_a_4xx_naming_the_problem(
    store: OnlineStore, body: Any, status: int, words: str
) -> None:
    response = client(store).post("/push", json=body)
    assert response.status_code == status, response.text
    assert words in response.json()["error"]
    assert "Traceback" not in response.text


def test_http_offline_push_without_a_project_directory_is_refused(store: OnlineStore) -> None:
    body = {"view": "driver_stats", "rows": [{"driver_id": 1, "event_ts": "2024-03-02", "rate": 1, "label": "x"}]}
    response = client(store).post("/push", json={**body, "to": "online_and_offline"})
    assert (response.status_code, "online only" in response.json()["error"]) == (400, True)


@pytest.fixture
def select_role(postgres_dsn: str, postgres_schema: str) -> Iterator[str]:
    role = f"fsql_push_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        yield role
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            admin.execute(f'DROP OWNED BY "{role}"')
            admin.execute(f'DROP ROLE "{role}"')


def test_a_select_only_role_answers_push_with_403(
    store: OnlineStore, project: Path, postgres_dsn: str, postgres_schema: str, select_role: str
) -> None:
    from sqlalchemy.engine import make_url

    with psycopg.connect(postgres_dsn, autocommit=True) as admin:  # the README's GRANTs for lookups
        admin.execute(f'GRANT USAGE ON SCHEMA "{postgres_schema}" TO "{select_role}"')
        admin.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{postgres_schema}" TO "{select_role}"')
    url = make_url(online_url(postgres_dsn)).set(username=select_role).render_as_string(hide_password=False)
    with OnlineStore(url, schema=postgres_schema, definitions=store.definitions, max_connections=1) as readonly:
        http = client(readonly, push_root=project)
        body = {"view": "driver_stats", "rows": [{"driver_id": 1, "event_ts": "2024-03-05", "rate": 1, "label": "x"}]}
        for to in ("online", "online_and_offline"):
            response = http.post("/push", json={**body, "to": to})
            assert response.status_code == 403, response.text
            assert response.headers["content-type"] == "application/json"
            assert "may not write the online table of 'driver_stats'" in response.json()["error"]
        assert http.get("/health").status_code == 200  # the pool's connection is fine after the refusal
        lookup = {"features": ["driver_stats:label"], "entities": {"driver_id": [1]}}
        found = http.post("/get-online-features", json=lookup).json()["results"][1]
        assert found["event_timestamps"] == [iso(t(1))]  # the built row, still there
    assert list((project / "data" / "stats").iterdir()) == [project / "data" / "stats" / "base.parquet"]
    assert values(postgres_dsn, postgres_schema) == {1: (0.1, "built", utc(t(1)))}


def test_a_role_granted_insert_and_update_pushes(
    store: OnlineStore, project: Path, postgres_dsn: str, postgres_schema: str, select_role: str
) -> None:
    from sqlalchemy.engine import make_url

    with psycopg.connect(postgres_dsn, autocommit=True) as admin:  # the README's GRANTs for a pushing role
        admin.execute(f'GRANT USAGE ON SCHEMA "{postgres_schema}" TO "{select_role}"')
        admin.execute(f'GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA "{postgres_schema}" TO "{select_role}"')
    url = make_url(online_url(postgres_dsn)).set(username=select_role).render_as_string(hide_password=False)
    with OnlineStore(url, schema=postgres_schema, definitions=store.definitions, max_connections=1) as pushing:
        body = {"view": "driver_stats", "rows": [{"driver_id": 1, "event_ts": "2024-03-05", "rate": 1, "label": "x"}]}
        response = client(pushing).post("/push", json=body)
    assert (response.status_code, response.json()["written"]) == (200, 1), response.text
    assert values(postgres_dsn, postgres_schema) == {1: (1.0, "x", utc(t(5)))}


def test_fsql_serve_takes_offline_pushes_into_the_projects_folder_source(project: Path) -> None:
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    command = [str(Path(sys.executable).with_name("fsql")), "--project-dir", str(project), "serve", "--port", str(port)]
    server = subprocess.Popen(command, cwd=project.parent, stderr=subprocess.PIPE, text=True)
    try:
        while True:
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            try:
                httpx.get(f"http://127.0.0.1:{port}/health")
                break
            except httpx.TransportError:
                time.sleep(0.1)
        row = {"driver_id": 3, "event_ts": "2024-03-02T12:00:00Z", "rate": 0.3, "label": "three"}
        body = {"view": "driver_stats", "rows": [row], "to": "online_and_offline"}
        answer = httpx.post(f"http://127.0.0.1:{port}/push", json=body)
    finally:
        server.terminate()
        server.wait()
    assert answer.status_code == 200, answer.text
    assert Path(answer.json()["offline_file"]).parent == project / "data" / "stats"
    spine = pa.table({"driver_id": pa.array([3], pa.int64()), "event_timestamp": pa.array([t(3)])})
    trained = fsql.load_project(project).training_set(spine=spine, features=["driver_stats:label"]).to_pylist()
    assert trained[0]["label"] == "three"


def test_a_build_of_an_equal_version_replaces_a_push_as_a_later_push_would(
    project: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    p = fsql.load_project(project)
    p.push("driver_stats", [row(1, t(1), 0.9, "pushed")])  # the source's version of driver 1: t(1), no created time
    build(project, AFTER)
    assert values(postgres_dsn, postgres_schema) == {1: (0.1, "built", utc(t(1)))}
    p.push("driver_stats", [row(1, t(1), 0.9, "pushed again")])
    assert values(postgres_dsn, postgres_schema) == {1: (0.9, "pushed again", utc(t(1)))}


def test_a_session_in_another_time_zone_stores_the_same_instants(
    project: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    from fsql.push import push

    definitions = fsql.load_project(project).definitions
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:  # as a server's pooled session may be
        connection.execute("SET TIME ZONE 'America/New_York'")
        rows = [row(1, t(2, 12), 0.1, "naive"), row(2, datetime(2024, 3, 2, 14, tzinfo=UTC), 0.2, "aware")]
        push(connection, definitions=definitions, schema=postgres_schema, view="driver_stats", rows=rows)
        assert connection.execute("SHOW TIME ZONE").fetchone() == ("America/New_York",)  # left as it was
    assert values(postgres_dsn, postgres_schema) == {
        1: (0.1, "naive", utc(t(2, 12))),
        2: (0.2, "aware", utc(t(2, 14))),
    }

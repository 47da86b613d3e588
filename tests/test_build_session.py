"""A build's fixed cost: one online connection per build, the schema ensured once, a warm
project compiling and opening nothing again, and the guarantees kept (each view alone in its
transaction, the session in UTC, concurrent builds safe)."""

from __future__ import annotations

import threading
from datetime import UTC
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from online_helpers import TWO_VIEWS, stored, t, write_project, write_rider_rows, write_rows

import fsql
import fsql.online.materialize as materialize
import fsql.online.tables as tables
import fsql.source_schema as source_schema
from fsql.build import BuildOptions
from fsql.engines import kept
from fsql.engines.kept import KeptEngine
from fsql.online.session import BuildSession
from fsql.online.tables import OnlineTable


@pytest.fixture
def project(tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> Path:
    root = write_project(tmp_path / "p", postgres_dsn, postgres_schema, TWO_VIEWS)
    write_rows(root, [(1, t(1), None, 0.1, "a"), (2, t(1), None, 0.2, "b")])
    write_rider_rows(root, [(7, t(1), 3)])
    return root


def counted(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[int]:
    """Count the calls of `owner.name` (which still runs)."""
    calls: list[int] = []
    original = getattr(owner, name)

    def count(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, count)
    return calls


def build(project: fsql.Project, day: int) -> list[tuple[str, str]]:
    result = project.build(BuildOptions(end=t(day).replace(tzinfo=UTC)))
    return [(node.view, node.status) for node in result.nodes]


def test_a_build_of_two_views_opens_one_online_connection_and_ensures_the_schema_once(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    connections = counted(monkeypatch, psycopg, "connect")
    schema_checks = counted(monkeypatch, tables, "ensure_schema")
    assert build(fsql.load_project(project), 2) == [("driver_stats", "success"), ("rider_stats", "success")]
    assert (len(connections), len(schema_checks)) == (1, 1)  # before: 5 connections, 2 checks
    assert build(fsql.load_project(project), 3) == [("driver_stats", "success"), ("rider_stats", "success")]
    assert (len(connections), len(schema_checks)) == (2, 1)  # the schema is complete: one catalog read


def test_a_state_table_of_an_earlier_release_gets_the_columns_it_lacks(
    project: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        connection.execute(
            f'CREATE TABLE "{postgres_schema}"."_fsql_state" (view TEXT PRIMARY KEY, watermark TIMESTAMPTZ, '
            "rows BIGINT, finished_at TIMESTAMPTZ, fingerprint TEXT)"
        )
    assert build(fsql.load_project(project), 2) == [("driver_stats", "success"), ("rider_stats", "success")]
    with psycopg.connect(postgres_dsn) as connection:
        late = connection.execute(
            f'SELECT view, late_rows, requested_end FROM "{postgres_schema}"."_fsql_state" ORDER BY view'
        ).fetchall()
    assert late == [("driver_stats", 0, t(2).replace(tzinfo=UTC)), ("rider_stats", 0, t(2).replace(tzinfo=UTC))]


def test_a_warm_project_builds_again_without_compiling_or_opening_an_engine(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warm = fsql.load_project(project)
    assert build(warm, 2) == [("driver_stats", "success"), ("rider_stats", "success")]
    compiled = counted(monkeypatch, materialize, "compile_source_state")
    opened = counted(monkeypatch, kept, "open_engine")
    checked = counted(monkeypatch, source_schema, "check_sources")
    write_rows(project, [(1, t(2), None, 0.3, "c")])
    assert build(warm, 3) == [("driver_stats", "success"), ("rider_stats", "success")]
    assert (len(compiled), len(opened), len(checked)) == (0, 0, 1)  # the rewritten file is checked again
    definitions = project / "definitions" / "defs.yml"
    definitions.write_text(definitions.read_text().replace("ttl: 1d", "ttl: 2d"))
    assert build(warm, 3) == [("driver_stats", "success"), ("rider_stats", "success")]
    assert len(compiled) == 2  # an edited definition is compiled anew
    warm.close()


RIDER_WINDOWS = TWO_VIEWS.replace(
    """  - name: rider_stats
    entities: [rider]
    source: riders
    online: true
    features:
      - {name: trips, type: bigint}
""",
    """  - name: rider_stats
    entities: [rider]
    source: riders
    online: true
    granularity: 1h
    aggregations:
      - {name: trips, function: sum, expr: trips, windows: [1h, 1d]}
""",
)


def test_a_warm_project_builds_an_aggregate_view_again_without_compiling(
    tmp_path: Path, postgres_dsn: str, postgres_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fsql.online.materialize_tiles as materialize_tiles

    root = write_project(tmp_path / "p", postgres_dsn, postgres_schema, RIDER_WINDOWS)
    write_rows(root, [(1, t(1), None, 0.1, "a")])
    write_rider_rows(root, [(7, t(1), 3)])
    warm = fsql.load_project(root)
    assert build(warm, 2) == [("driver_stats", "success"), ("rider_stats", "success")]
    tiles = counted(monkeypatch, materialize_tiles, "compile_tiles")
    states = counted(monkeypatch, materialize_tiles, "compile_source_state")
    write_rider_rows(root, [(7, t(1), 3), (7, t(2), 4)])
    assert build(warm, 3) == [("driver_stats", "success"), ("rider_stats", "success")]
    assert (len(tiles), len(states)) == (0, 0)
    assert warm.get_online_features(
        [{"rider_id": 7}], features=["rider_stats:trips_1d"], now=t(3).replace(tzinfo=UTC)
    ) == [{"rider_id": 7, "trips_1d": 4}]  # the rows read with the kept queries: the new day's trip, not the old one
    warm.close()


def test_a_warm_project_builds_a_latest_value_view_again_without_compiling(
    project: Path, postgres_dsn: str, postgres_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    warm = fsql.load_project(project)
    assert build(warm, 2) == [("driver_stats", "success"), ("rider_stats", "success")]
    latest = counted(monkeypatch, materialize, "compile_latest_rows")
    states = counted(monkeypatch, materialize, "compile_source_state")
    write_rows(project, [(1, t(1), None, 0.1, "a"), (2, t(1), None, 0.2, "b"), (1, t(2), None, 0.3, "c")])
    assert build(warm, 3) == [("driver_stats", "success"), ("rider_stats", "success")]
    assert (len(latest), len(states)) == (0, 0)
    # The rows read with the kept query: driver 1's new row, driver 2's stored one kept.
    assert stored(postgres_dsn, postgres_schema) == {
        1: (0.3, "c", t(2).replace(tzinfo=UTC), None),
        2: (0.2, "b", t(1).replace(tzinfo=UTC), None),
    }
    definitions = project / "definitions" / "defs.yml"
    definitions.write_text(definitions.read_text().replace("ttl: 1d", "ttl: 2d"))
    assert build(warm, 3) == [("driver_stats", "success"), ("rider_stats", "success")]
    assert len(latest) == 2  # an edited definition is compiled anew, once per view
    warm.close()


def test_a_warm_build_checks_a_rewritten_source_file_again(project: Path) -> None:
    warm = fsql.load_project(project)
    assert build(warm, 2) == [("driver_stats", "success"), ("rider_stats", "success")]
    columns = {"driver_id": pa.array([1], pa.int64()), "event_ts": pa.array([t(2)], pa.timestamp("us"))}
    pq.write_table(pa.table(columns), project / "data" / "stats.parquet")  # no rate, label, created_ts
    result = warm.build(BuildOptions(end=t(3).replace(tzinfo=UTC)))
    assert [(n.view, n.status) for n in result.nodes] == [("driver_stats", "error"), ("rider_stats", "success")]
    assert "rate" in result.nodes[0].message
    warm.close()


def test_a_view_failing_in_the_database_leaves_the_next_view_of_the_build_whole(
    project: Path, postgres_dsn: str, postgres_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGTZ", "Asia/Tokyo")  # the server's zone for new sessions: fsql must set UTC itself
    assert build(fsql.load_project(project), 2) == [("driver_stats", "success"), ("rider_stats", "success")]
    # The table a run builds beside the live one is taken by a view: the driver run fails in Postgres.
    beside = OnlineTable(postgres_schema, fsql.load_project(project).definitions.feature_views["driver_stats"])
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        connection.execute(f'CREATE VIEW "{postgres_schema}"."{beside.new_name}" AS SELECT 1 AS x')
    write_rows(project, [(1, t(2), None, 0.3, "c")])
    write_rider_rows(project, [(7, t(2, 5), 4)])
    result = fsql.load_project(project).build(BuildOptions(end=t(3).replace(tzinfo=UTC)))
    assert [(n.view, n.status) for n in result.nodes] == [("driver_stats", "error"), ("rider_stats", "success")]
    assert "is not a table" in result.nodes[0].message
    with psycopg.connect(postgres_dsn) as connection:
        riders = connection.execute(
            f'SELECT rider_id, trips, feature_ts FROM "{postgres_schema}"."rider_stats"'
        ).fetchall()
    assert riders == [(7, 4, t(2, 5).replace(tzinfo=UTC))]  # read as UTC, as written
    assert stored(postgres_dsn, postgres_schema)[1][1] == "a"  # the failed view's rows stayed whole


def test_the_session_stays_in_utc_after_a_transaction_rolls_back(
    postgres_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGTZ", "Asia/Tokyo")
    with BuildSession(postgres_dsn, what="the test's server") as session:
        with pytest.raises(RuntimeError), session.transaction() as connection:
            connection.execute("SELECT 1")
            raise RuntimeError("a view failed")
        assert session.connection().execute("SHOW TimeZone").fetchone() == ("UTC",)


def test_a_dropped_session_connection_is_replaced(postgres_dsn: str) -> None:
    with BuildSession(postgres_dsn, what="the test's server") as session:
        first = session.connection()
        with psycopg.connect(postgres_dsn, autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s)", (first.info.backend_pid,))
        with pytest.raises(psycopg.OperationalError), session.transaction() as connection:
            connection.execute("SELECT 1")
        with session.transaction() as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)
        assert session.connection() is not first


def test_concurrent_first_builds_of_one_project_both_succeed(
    project: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA "{postgres_schema}" CASCADE')  # both builds make it
    statuses: list[list[tuple[str, str]]] = []

    def run() -> None:
        statuses.append(build(fsql.load_project(project), 2))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [[("driver_stats", "success"), ("rider_stats", "success")]] * 2
    assert sorted(stored(postgres_dsn, postgres_schema)) == [1, 2]


def test_a_borrowed_engine_makes_no_call_wait_and_is_closed_when_given_back(project: Path) -> None:
    config = fsql.load_project(project).config
    engines = KeptEngine(config.target, config.root)
    with engines.borrow() as engine:
        assert engines.run(lambda other: other) is not engine  # a call meanwhile gets its own
        with engines.borrow() as second:  # so does a second build
            assert second is not engine
        assert engine.query_arrow("SELECT 1 AS x").to_pylist() == [{"x": 1}]
    with engines.borrow() as again:
        assert again is engine  # kept between builds
        engines.close()  # while lent: it stays open until given back
        assert again.query_arrow("SELECT 2 AS x").to_pylist() == [{"x": 2}]
    assert engines.run(lambda other: other) is not engine
    engines.close()

"""A warm Project: kept definitions, queries and connections, and when it must let go of them."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pytest
from online_helpers import DEFINITIONS, build, online_url, t, write_project, write_rows

import fsql
from fsql.errors import CompileError
from fsql.online.binding import bind_keys
from fsql.online.lookup import request_keys

pytestmark = pytest.mark.postgres

NOW = datetime(2024, 3, 2, 12, tzinfo=UTC)
ROWS = [(1, t(1), t(1, 1), 0.5, "a"), (1, t(2), None, 0.7, "b"), (2, t(2), None, None, "x")]
SPINE = pa.table(
    {
        "driver_id": pa.array([1, 2, 3, 1], pa.int64()),
        "event_timestamp": pa.array([t(2, 1), t(2, 5), t(2, 5), t(1, 12)], pa.timestamp("us")),
    }
)
ENTITIES = [{"driver_id": 2}, {"driver_id": 1}, {"driver_id": 9}]


@pytest.fixture
def project_dir(tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> Path:
    root = write_project(tmp_path / "p", postgres_dsn, postgres_schema)
    write_rows(root, ROWS)
    build(root, t(3))
    return root


def training(project: fsql.Project) -> list[dict[str, Any]]:
    """The training set's rows in spine order (the engine returns them in any order)."""
    rows = project.training_set(features=["driver_stats"], spine=SPINE).to_pylist()
    return sorted(rows, key=lambda row: (row["driver_id"], row["event_timestamp"]))


def test_warm_calls_answer_as_a_fresh_project_does(project_dir: Path) -> None:
    with fsql.load_project(project_dir) as warm:
        first, second = training(warm), training(warm)
        lookups = [warm.lookup(ENTITIES, features=["driver_stats"], now=NOW) for _ in range(2)]
        rows = [warm.get_online_features(ENTITIES, features=["driver_stats"], now=NOW) for _ in range(2)]
    with fsql.load_project(project_dir) as cold:
        assert first == second == training(cold)
        assert lookups[0] == lookups[1] == cold.lookup(ENTITIES, features=["driver_stats"], now=NOW)
        assert rows[0] == rows[1] == cold.get_online_features(ENTITIES, features=["driver_stats"], now=NOW)
    assert rows[0] == [
        {"driver_id": 2, "rate": None, "label": "x"},
        {"driver_id": 1, "rate": 0.7, "label": "b"},
        {"driver_id": 9, "rate": None, "label": None},
    ]
    assert [s["rate"] for s in lookups[0].statuses()] == ["PRESENT", "PRESENT", "NOT_FOUND"]


def test_an_edited_definition_is_seen_by_the_next_call(project_dir: Path) -> None:
    definitions = project_dir / "definitions" / "defs.yml"
    with fsql.load_project(project_dir) as project:
        assert training(project)[1]["rate"] == 0.7
        assert list(project.get_online_features(ENTITIES, features=["driver_stats"], now=NOW)[1]) == [
            "driver_id",
            "rate",
            "label",
        ]
        definitions.write_text(
            DEFINITIONS.replace("      - {name: label, type: string}\n", "")
            + "\n      - {name: rate_x2, type: double, expr: rate * 2}\n"
        )
        assert training(project)[1]["rate_x2"] == 1.4
        # The online table was not rebuilt, but the lookup reads the view as it is defined now.
        assert list(project.get_online_features(ENTITIES, features=["driver_stats:rate"], now=NOW)[1]) == [
            "driver_id",
            "rate",
        ]
        with pytest.raises(CompileError, match="label"):
            project.get_online_features(ENTITIES, features=["driver_stats:label"], now=NOW)


def test_compile_on_a_warm_project_follows_an_edited_definition(project_dir: Path) -> None:
    definitions = project_dir / "definitions" / "defs.yml"
    with fsql.load_project(project_dir) as project:
        first, _ = project.compile(features=["driver_stats"], data_checks=False)
        again, _ = project.compile(features=["driver_stats"], data_checks=False)
        assert again is first  # kept: a build compiles every service on every run
        definitions.write_text(DEFINITIONS + "\n      - {name: rate_x2, type: double, expr: rate * 2}\n")
        edited, path = project.compile(features=["driver_stats"], data_checks=False)
        assert '"rate_x2"' in edited.sql and '"rate_x2"' not in first.sql
        assert path.read_text() == edited.sql


def test_recheck_files_every_looks_at_the_files_at_most_that_often(project_dir: Path) -> None:
    definitions = project_dir / "definitions" / "defs.yml"
    with fsql.load_project(project_dir, recheck_files_every=3600) as project:
        first, _ = project.compile(features=["driver_stats"], data_checks=False)
        definitions.write_text(DEFINITIONS + "\n      - {name: rate_x2, type: double, expr: rate * 2}\n")
        unseen, _ = project.compile(features=["driver_stats"], data_checks=False)
        assert unseen is first  # within the interval the files are not looked at
        assert project.refresh()  # an explicit refresh always looks
        seen, _ = project.compile(features=["driver_stats"], data_checks=False)
        assert '"rate_x2"' in seen.sql
    with pytest.raises(fsql.ProjectError, match="recheck_files_every must be 0 or more seconds"):
        fsql.load_project(project_dir, recheck_files_every=-1)


def test_a_rewritten_spine_file_is_probed_again(project_dir: Path) -> None:
    import pyarrow.parquet as pq

    spine = project_dir / "spine.parquet"
    pq.write_table(SPINE, spine)
    with fsql.load_project(project_dir) as project:
        assert "target" not in project.training_set(features=["driver_stats"], spine=str(spine)).column_names
        pq.write_table(SPINE.append_column("target", pa.array(["p", "q", "r", "s"])), spine)
        again = project.training_set(features=["driver_stats"], spine=str(spine))
    assert sorted(again.column("target").to_pylist()) == ["p", "q", "r", "s"]


def terminate(dsn: str, pids: list[int]) -> None:
    with psycopg.connect(dsn, autocommit=True) as connection:
        for pid in pids:
            assert connection.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)


def test_a_lookup_after_the_server_dropped_the_connection_succeeds(project_dir: Path, postgres_dsn: str) -> None:
    with fsql.load_project(project_dir) as project:
        before = project.get_online_features(ENTITIES, features=["driver_stats"], now=NOW)
        killed = project.kept_store().backend_pids()
        assert killed
        terminate(postgres_dsn, killed)
        assert project.get_online_features(ENTITIES, features=["driver_stats"], now=NOW) == before
        assert not set(project.kept_store().backend_pids()) & set(killed)


def test_a_training_set_after_the_offline_server_dropped_the_connection_succeeds(
    tmp_path: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    root = write_project(tmp_path / "pg", postgres_dsn, postgres_schema)
    profiles = (root / "profiles.yml").read_text()
    (root / "profiles.yml").write_text(profiles.replace("'duckdb:///:memory:'", f"'{online_url(postgres_dsn)}'"))
    definitions = DEFINITIONS.replace("path: data/stats.parquet", f"table: {postgres_schema}.stats")
    (root / "definitions" / "defs.yml").write_text(definitions)
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        connection.execute(
            f'CREATE TABLE "{postgres_schema}".stats (driver_id bigint, event_ts timestamp, created_ts timestamp, '
            "rate double precision, label text)"
        )
        connection.execute(
            f"INSERT INTO \"{postgres_schema}\".stats VALUES (1, '2024-03-02', NULL, 0.7, 'b'), "
            "(2, '2024-03-02', NULL, NULL, 'x')"
        )
    spine = "SELECT 1::bigint AS driver_id, TIMESTAMP '2024-03-02 01:00' AS event_timestamp"
    with fsql.load_project(root) as project:
        first = project.training_set(features=["driver_stats"], spine=spine).to_pylist()
        kept = project._kept.engine
        pid = kept._engine.connection.info.backend_pid  # type: ignore[union-attr]
        terminate(postgres_dsn, [pid])
        assert project.training_set(features=["driver_stats"], spine=spine).to_pylist() == first
        assert kept.reopened == 1
    assert first[0]["rate"] == 0.7


def test_two_threads_share_one_project(project_dir: Path) -> None:
    with fsql.load_project(project_dir) as project:
        expected = (training(project), project.get_online_features(ENTITIES, features=["driver_stats"], now=NOW))
        got: list[Any] = []
        failures: list[BaseException] = []

        def work() -> None:
            try:
                for _ in range(15):
                    got.append(
                        (training(project), project.get_online_features(ENTITIES, features=["driver_stats"], now=NOW))
                    )
            except BaseException as exc:  # the test reports it below
                failures.append(exc)

        threads = [threading.Thread(target=work) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
    assert len(got) == 30 and all(answer == expected for answer in got)


@pytest.mark.parametrize(
    "rows",
    [
        [{"driver_id": 1}, {"driver_id": True}],
        [{"driver_id": 1}, {"rider_id": 2}],
        [{"driver_id": 2**63}],
        [{"driver_id": "1"}],
        [],
    ],
    ids=["bool", "missing", "out-of-range", "text", "empty"],
)
def test_the_quick_key_check_refuses_what_the_full_one_does(project_dir: Path, rows: list[dict[str, Any]]) -> None:
    with fsql.load_project(project_dir) as project:
        store = project.kept_store()
        plan = store.plan(None, ("driver_stats",), None)
        with pytest.raises(CompileError) as full:
            bind_keys(request_keys(plan.request), rows)
        with pytest.raises(CompileError) as quick:
            project.get_online_features(rows, features=["driver_stats"], now=NOW)
    assert str(quick.value) == str(full.value)


def test_keys_of_a_subclass_or_none_take_the_full_check(project_dir: Path) -> None:
    class Id(int):
        pass

    with fsql.load_project(project_dir) as project:
        rows = project.get_online_features(
            [{"driver_id": Id(1)}, {"driver_id": None}], features=["driver_stats"], now=NOW
        )
    assert [row["rate"] for row in rows] == [0.7, None]

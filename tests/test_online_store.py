"""The Postgres online store: DDL, migrations, upsert ordering, atomicity, concurrency, lookups."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from online_helpers import DEFINITIONS, build, state, stored, t, write_project, write_rows

import fsql
from fsql.errors import CompileError
from fsql.online.materialize import MaterializeRequest, materialize_view


@pytest.fixture
def project(tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> Path:
    return write_project(tmp_path / "p", postgres_dsn, postgres_schema)


def utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC)


def test_first_build_creates_a_typed_table_keyed_by_the_entity(
    project: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    write_rows(project, [(1, t(1), t(1, 1), 0.5, "a"), (1, t(2), None, 0.7, "b"), (2, t(1), None, None, "")])
    result = build(project, t(3))
    assert [(n.view, n.status) for n in result.nodes] == [("driver_stats", "success")]
    with psycopg.connect(postgres_dsn) as connection:
        columns = connection.execute(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = 'driver_stats' ORDER BY ordinal_position",
            (postgres_schema,),
        ).fetchall()
        keys = connection.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary",
            (f'"{postgres_schema}"."driver_stats"',),
        ).fetchall()
    assert columns == [
        ("driver_id", "bigint", "NO"),
        ("rate", "double precision", "YES"),
        ("label", "text", "YES"),
        ("feature_ts", "timestamp with time zone", "NO"),
        ("created_ts", "timestamp with time zone", "YES"),
        ("materialized_at", "timestamp with time zone", "NO"),
    ]
    assert keys == [("driver_id",)]
    assert stored(postgres_dsn, postgres_schema) == {
        1: (0.7, "b", utc(t(2)), None),
        2: (None, "", utc(t(1)), None),  # NULL and the empty string survive the COPY apart
    }
    assert state(postgres_dsn, postgres_schema)[:2] == (utc(t(2)), 2)  # the newest event read, not --end


UPSERT, REBUILD = 1e9, 0.0  # rebuild_share: never rebuild / always rebuild and swap


@pytest.mark.parametrize("rebuild_share", [UPSERT, REBUILD], ids=["upsert", "rebuild"])
def test_newer_wins_older_is_ignored_equal_is_replaced_and_a_rerun_changes_nothing(
    project: Path, postgres_dsn: str, postgres_schema: str, rebuild_share: float
) -> None:
    write_rows(project, [(1, t(2), t(2), 0.2, "v2"), (2, t(2), t(2), 0.2, "v2"), (3, t(2), t(2), 0.2, "v2")])
    build(project, t(3))
    # A late batch arrives: driver 1 newer, driver 2 older (a late row), driver 3 equal (e, c) with a new value.
    write_rows(project, [(1, t(4), None, 0.4, "v4"), (2, t(1), t(5), 0.1, "old"), (3, t(2), t(2), 0.3, "same")])
    fsql.load_project(project)
    explicit = MaterializeRequest(
        fsql.load_project(project).definitions,
        "driver_stats",
        online_url_of(project),
        postgres_schema,
        end=utc(t(5)),
        start=utc(t(1) - timedelta(days=1)),
        rebuild_share=rebuild_share,
    )
    engine = duckdb_engine(project)
    materialize_view(explicit, engine, file_root=project)
    after = stored(postgres_dsn, postgres_schema)
    assert after[1][:2] == (0.4, "v4")  # newer event time wins
    assert after[2][:2] == (0.2, "v2")  # an older event never overwrites, even with a newer created time
    assert after[3][:2] == (0.3, "same")  # an equal version replaces
    materialize_view(explicit, engine, file_root=project)
    assert stored(postgres_dsn, postgres_schema) == after  # a rerun is a no-op for the values
    assert state(postgres_dsn, postgres_schema)[0] == utc(t(4))  # the newest event read


def test_created_time_breaks_ties_and_null_created_ranks_lowest(
    project: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    write_rows(
        project,
        [(1, t(2), t(2, 5), 0.5, "correction"), (1, t(2), t(2, 1), 0.1, "first"), (1, t(2), None, 0.0, "nocreated")],
    )
    build(project, t(3))
    assert stored(postgres_dsn, postgres_schema)[1][:2] == (0.5, "correction")
    # A NULL created time arriving later does not beat a stored row with the same event time.
    write_rows(project, [(1, t(2), None, 9.9, "late-null")])
    build(project, t(4), start=utc(t(1)))
    assert stored(postgres_dsn, postgres_schema)[1][:2] == (0.5, "correction")


def test_incremental_runs_read_from_the_watermark_minus_lateness(
    project: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    write_rows(project, [(1, t(2), None, 0.2, "a")])
    build(project, t(3))
    # The rows are rewritten in place: the count behind the watermark (t(2)) stays the same.
    write_rows(project, [(1, t(2), None, 0.25, "rewritten"), (2, t(3, 12), None, 0.35, "new")])
    build(project, t(4))
    assert set(stored(postgres_dsn, postgres_schema)) == {1, 2}
    assert stored(postgres_dsn, postgres_schema)[1][1] == "a"  # at the watermark, beyond a lateness of 0
    lenient = DEFINITIONS.replace("    ttl: 1d\n", "    ttl: 1d\n    lateness: 2d\n")
    (project / "definitions" / "defs.yml").write_text(lenient)
    write_rows(project, [(1, t(3, 6), None, 0.3, "late"), (2, t(3, 12), None, 0.35, "new")])
    result = build(project, t(5))
    assert stored(postgres_dsn, postgres_schema)[1][1] == "late"  # read within the allowed lateness
    assert result.nodes[0].late_rows == 0  # and so not counted late


@pytest.mark.parametrize("rebuild_share", [UPSERT, REBUILD], ids=["upsert", "rebuild"])
def test_a_failure_before_commit_leaves_values_and_watermark_whole(
    project: Path, postgres_dsn: str, postgres_schema: str, rebuild_share: float
) -> None:
    write_rows(project, [(1, t(2), None, 0.2, "kept")])
    build(project, t(3))
    before_values, before_state = stored(postgres_dsn, postgres_schema), state(postgres_dsn, postgres_schema)
    write_rows(project, [(1, t(4), None, 0.4, "lost"), (2, t(4), None, 0.4, "lost")])

    def crash() -> None:
        raise RuntimeError("injected: the process dies after COPY and upsert, before commit")

    request = MaterializeRequest(
        fsql.load_project(project).definitions,
        "driver_stats",
        online_url_of(project),
        postgres_schema,
        end=utc(t(5)),
        rebuild_share=rebuild_share,
    )
    with pytest.raises(RuntimeError, match="injected"):
        materialize_view(request, duckdb_engine(project), file_root=project, before_commit=crash)
    assert stored(postgres_dsn, postgres_schema) == before_values
    assert state(postgres_dsn, postgres_schema) == before_state
    with pytest.raises(RuntimeError, match="injected"):  # also when the table is being rebuilt
        materialize_view(
            replace(request, full_refresh=True), duckdb_engine(project), file_root=project, before_commit=crash
        )
    assert stored(postgres_dsn, postgres_schema) == before_values


def test_two_runs_of_one_view_are_serialised(project: Path, postgres_dsn: str, postgres_schema: str) -> None:
    write_rows(project, [(i, t(2), None, float(i), "x") for i in range(1, 50)])
    build(project, t(3))  # create the table first, so both runs below are upserts
    spans: list[tuple[float, float]] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def run() -> None:
        began = time.perf_counter()

        def hold() -> None:
            time.sleep(0.5)  # keep the transaction open: the other run must wait for it
            with lock:
                spans.append((began, time.perf_counter()))

        try:
            request = MaterializeRequest(
                fsql.load_project(project).definitions,
                "driver_stats",
                online_url_of(project),
                postgres_schema,
                end=utc(t(4)),
                start=utc(t(1)),
            )
            materialize_view(request, duckdb_engine(project), file_root=project, before_commit=hold)
        except BaseException as exc:  # re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    (_, first_end), (_, second_end) = sorted(spans, key=lambda s: s[1])
    assert second_end - first_end >= 0.45  # the second held its lock only after the first committed
    assert len(stored(postgres_dsn, postgres_schema)) == 49


def test_a_new_feature_adds_a_column_and_fills_it(project: Path, postgres_dsn: str, postgres_schema: str) -> None:
    write_rows(project, [(1, t(2), None, 0.2, "a"), (2, t(2), None, 0.3, "b")])
    build(project, t(3))
    more = DEFINITIONS.replace(
        "      - {name: label, type: string}\n",
        "      - {name: label, type: string}\n      - {name: rate_x2, type: double, expr: rate * 2}\n",
    )
    (project / "definitions" / "defs.yml").write_text(more)
    result = build(project, t(3))
    assert result.nodes[0].status == "success", result.nodes[0].message
    with psycopg.connect(postgres_dsn) as connection:
        values = connection.execute(
            f'SELECT driver_id, rate_x2 FROM "{postgres_schema}".driver_stats ORDER BY 1'
        ).fetchall()
    assert values == [(1, 0.4), (2, 0.6)]


def test_a_changed_type_asks_for_a_full_refresh_which_swaps_the_table(
    project: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    write_rows(project, [(1, t(2), None, 0.2, "a")])
    build(project, t(3))
    (project / "definitions" / "defs.yml").write_text(
        DEFINITIONS.replace("{name: rate, type: double}", "{name: rate, type: string}")
    )
    result = build(project, t(3))
    assert result.nodes[0].status == "error"
    assert "column 'rate' is double precision but the definition says text" in result.nodes[0].message
    assert "fsql build --full-refresh --select driver_stats" in result.nodes[0].message
    assert stored(postgres_dsn, postgres_schema)[1][0] == 0.2  # untouched
    refreshed = build(project, t(3), full_refresh=True)
    assert refreshed.nodes[0].status == "success", refreshed.nodes[0].message
    assert stored(postgres_dsn, postgres_schema)[1][0] == "0.2"
    build(project, t(3), full_refresh=True)  # a second swap finds no leftovers (index names included)


def test_lookups_keep_order_null_unknowns_and_apply_the_ttl_at_read_time(
    project: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    write_rows(project, [(1, t(2), None, 0.1, "one"), (2, t(3), None, 0.2, "two")])
    build(project, t(4))
    project_ = fsql.load_project(project)
    rows = [{"driver_id": 2}, {"driver_id": 404}, {"driver_id": 1}, {"driver_id": 2}]
    at = utc(t(3, 12))
    assert project_.get_online_features(rows, features=["driver_stats"], now=at) == [
        {"driver_id": 2, "rate": 0.2, "label": "two"},
        {"driver_id": 404, "rate": None, "label": None},
        {"driver_id": 1, "rate": None, "label": None},  # its row is 1.5 days old: past the 1d ttl
        {"driver_id": 2, "rate": 0.2, "label": "two"},
    ]
    exactly_at_ttl = project_.get_online_features([{"driver_id": 1}], features=["driver_stats:rate"], now=utc(t(3)))
    assert exactly_at_ttl == [{"driver_id": 1, "rate": 0.1}]  # ttl bound inclusive, as offline


def test_lookup_input_is_checked_before_any_query(project: Path, postgres_dsn: str, postgres_schema: str) -> None:
    write_rows(project, [(1, t(2), None, 0.1, "one")])
    build(project, t(3))
    project_ = fsql.load_project(project)
    with pytest.raises(CompileError, match="unknown feature service 'nope'"):
        project_.get_online_features([{"driver_id": 1}], service="nope")
    with pytest.raises(CompileError, match=r"feature view 'driver_stats' has no feature 'rat'\. Did you mean 'rate'"):
        project_.get_online_features([{"driver_id": 1}], features=["driver_stats:rat"])
    with pytest.raises(CompileError, match="entity row 2 lacks key 'driver_id'"):
        project_.get_online_features([{"driver_id": 1}, {"rider_id": 1}], features=["driver_stats"])
    with pytest.raises(CompileError, match=r"key 'driver_id' is bigint, not str \('1; DROP TABLE x'\)"):
        project_.get_online_features([{"driver_id": "1; DROP TABLE x"}], features=["driver_stats"])


def test_entity_values_are_bound_never_pasted(tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> None:
    text_keyed = DEFINITIONS.replace("type: bigint}]", "type: string}]").replace(
        "driver_id: bigint", "driver_id: string"
    )
    project = write_project(tmp_path / "p", postgres_dsn, postgres_schema, text_keyed)
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table(
            {
                "driver_id": ["a'b", 'x"; DROP TABLE driver_stats; --'],
                "event_ts": pa.array([t(2), t(2)], pa.timestamp("us")),
                "created_ts": pa.array([None, None], pa.timestamp("us")),
                "rate": [1.0, 2.0],
                "label": ["q", "r"],
            }
        ),
        project / "data" / "stats.parquet",
    )
    build(project, t(3))
    hostile = ["a'b", "' OR '1'='1", 'x"; DROP TABLE driver_stats; --']
    rows = fsql.load_project(project).get_online_features(
        [{"driver_id": k} for k in hostile], features=["driver_stats:rate"], now=utc(t(2, 1))
    )
    assert [r["rate"] for r in rows] == [1.0, None, 2.0]
    assert len(stored_text(postgres_dsn, postgres_schema)) == 2  # the table is still there, whole


def stored_text(dsn: str, schema: str) -> list[tuple]:
    with psycopg.connect(dsn) as connection:
        return connection.execute(f'SELECT driver_id FROM "{schema}".driver_stats').fetchall()


def online_url_of(project: Path) -> str:
    url = fsql.load_project(project).config.target.online_url
    assert url is not None
    return url


def duckdb_engine(project: Path):  # type: ignore[no-untyped-def]
    from fsql.engines.duckdb import DuckDBEngine

    return DuckDBEngine("duckdb:///:memory:", root=project)


def test_an_unreachable_online_store_is_a_clear_error(project: Path) -> None:
    from fsql.errors import ProjectError
    from fsql.online.lookup import OnlineStore

    definitions = fsql.load_project(project).definitions
    with pytest.raises(ProjectError, match=r"cannot connect to the online store at postgresql\+psycopg://u:\*\*\*@127"):
        OnlineStore("postgresql+psycopg://u:secret@127.0.0.1:1/x", schema="s", definitions=definitions)


def test_a_lookup_of_a_view_that_is_not_online_is_refused_before_any_query(
    tmp_path: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    offline_only = DEFINITIONS.replace("    online: true\n", "    online: false\n")
    project = write_project(tmp_path / "p", postgres_dsn, postgres_schema, offline_only)
    # Nothing was built: a query would fail with "relation does not exist", not this message.
    with pytest.raises(CompileError, match=r"reads feature view\(s\) 'driver_stats' \(definitions/defs.yml:\d+"):
        fsql.load_project(project).get_online_features([{"driver_id": 1}], features=["driver_stats:rate"])

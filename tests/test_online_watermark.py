"""What a build loads is decided by what the source held, not by the clock.

Each case was measured losing every row with exit 0 when the watermark was the requested
`--end`: rows arriving late, corrections, rows landing after an empty run, and new
entities after a run with an `--end` far in the future. Each runs on the upsert path and
on the rebuild-and-swap path.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from online_helpers import DEFINITIONS, build, run_view, state, stored, t, write_project, write_rows

from fsql.online.materialize import MaterializeResult

UPSERT, REBUILD = 1e9, 0.0  # rebuild_share: never rebuild / always rebuild and swap
PATHS = pytest.mark.parametrize("rebuild_share", [UPSERT, REBUILD], ids=["upsert", "rebuild"])
WITHOUT_CREATED = DEFINITIONS.replace("    created_timestamp: created_ts\n", "")


@pytest.fixture
def project(tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> Path:
    return write_project(tmp_path / "p", postgres_dsn, postgres_schema)


@pytest.fixture
def no_created(tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> Path:
    return write_project(tmp_path / "p", postgres_dsn, postgres_schema, WITHOUT_CREATED)


def utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC)


def run(project: Path, end: datetime, rebuild_share: float = UPSERT) -> MaterializeResult:
    """One incremental run of the view, as `fsql build --end` does it, on the chosen write path."""
    return run_view(project, end, rebuild_share=rebuild_share)


@PATHS
def test_rows_arriving_behind_the_watermark_are_loaded_and_counted(
    no_created: Path, postgres_dsn: str, postgres_schema: str, rebuild_share: float
) -> None:
    first = [(i, t(2), None, 1.0, "on time") for i in range(1, 201)]
    write_rows(no_created, first)
    run(no_created, t(3), rebuild_share)
    # 200 rows arrive late: event times before everything already read (no lateness allowed).
    late = [(i, t(1), None, 2.0, "late") for i in range(201, 401)]
    write_rows(no_created, first + late)
    result = run(no_created, t(4), rebuild_share)
    online = stored(postgres_dsn, postgres_schema)
    assert len(online) == 400
    assert {online[i][1] for i in range(201, 401)} == {"late"}
    assert result.late_rows == 200
    assert any("200 rows arrived behind the watermark" in w for w in result.warnings)
    # Once loaded they are not late again.
    assert run(no_created, t(5), rebuild_share).late_rows == 0


@PATHS
def test_late_rows_that_lose_to_stored_rows_change_nothing(
    no_created: Path, postgres_dsn: str, postgres_schema: str, rebuild_share: float
) -> None:
    write_rows(no_created, [(1, t(3), None, 3.0, "newest")])
    run(no_created, t(4), rebuild_share)
    write_rows(no_created, [(1, t(3), None, 3.0, "newest"), (1, t(1), None, 1.0, "older")])
    result = run(no_created, t(5), rebuild_share)
    assert result.late_rows == 1
    assert stored(postgres_dsn, postgres_schema)[1][1] == "newest"  # never back in time


@PATHS
def test_corrections_are_read_by_created_time(
    project: Path, postgres_dsn: str, postgres_schema: str, rebuild_share: float
) -> None:
    first = [(i, t(2), t(2), 1.0, "first") for i in range(1, 51)]
    write_rows(project, first)
    run(project, t(3), rebuild_share)
    corrections = [(i, t(2), t(3, 6), 1.5, "corrected") for i in range(1, 51)]
    write_rows(project, first + corrections)  # appended beside the rows they correct
    run(project, t(4), rebuild_share)
    assert {v[1] for v in stored(postgres_dsn, postgres_schema).values()} == {"corrected"}
    again = [(i, t(2), t(4, 6), 1.7, "in place") for i in range(1, 51)]
    write_rows(project, again)  # or rewritten in place: the row count does not change
    run(project, t(5), rebuild_share)
    assert {v[1] for v in stored(postgres_dsn, postgres_schema).values()} == {"in place"}


@PATHS
def test_a_run_over_an_empty_source_keeps_no_watermark_and_warns(
    no_created: Path, postgres_dsn: str, postgres_schema: str, rebuild_share: float
) -> None:
    write_rows(no_created, [])
    result = run(no_created, t(3), rebuild_share)
    assert result.rows_read == 0
    assert any("read no rows" in w for w in result.warnings)
    assert state(postgres_dsn, postgres_schema)[0] is None
    write_rows(no_created, [(1, t(2), None, 1.0, "a"), (2, t(2), None, 1.0, "b"), (3, t(1), None, 1.0, "c")])
    run(no_created, t(4), rebuild_share)
    assert set(stored(postgres_dsn, postgres_schema)) == {1, 2, 3}


@PATHS
def test_an_end_in_the_future_warns_and_loses_no_later_rows(
    no_created: Path, postgres_dsn: str, postgres_schema: str, rebuild_share: float
) -> None:
    rows = [(1, t(2), None, 1.0, "a")]
    write_rows(no_created, rows)
    result = run(no_created, datetime(2100, 1, 1), rebuild_share)  # a typo for 2024
    assert any("--end 2100-01-01" in w and "in the future" in w for w in result.warnings)
    assert state(postgres_dsn, postgres_schema)[0] == utc(t(2))  # the newest event read, not the end
    rows += [(i, t(5), None, 2.0, "new") for i in range(100, 200)]
    write_rows(no_created, rows)
    run(no_created, t(6), rebuild_share)
    assert len(stored(postgres_dsn, postgres_schema)) == 101


def test_rows_after_the_end_are_read_by_the_next_run(no_created: Path, postgres_dsn: str, postgres_schema: str) -> None:
    write_rows(no_created, [(1, t(2), None, 1.0, "a"), (2, t(5), None, 1.0, "after the end")])
    run(no_created, t(3))
    assert set(stored(postgres_dsn, postgres_schema)) == {1}
    assert state(postgres_dsn, postgres_schema)[0] == utc(t(2))
    run(no_created, t(6))
    assert set(stored(postgres_dsn, postgres_schema)) == {1, 2}
    assert state(postgres_dsn, postgres_schema)[0] == utc(t(5))


def test_the_build_summary_and_run_results_report_late_rows_and_warnings(
    no_created: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    write_rows(no_created, [(1, t(2), None, 1.0, "a")])
    build(no_created, t(3))
    write_rows(no_created, [(1, t(2), None, 1.0, "a"), (2, t(1), None, 1.0, "late")])
    result = build(no_created, t(4))
    node = result.nodes[0]
    assert node.status == "success"
    assert node.late_rows == 1
    assert "1 row arrived behind the watermark" in node.message
    document: dict[str, Any] = json.loads((no_created / "target" / "run_results.json").read_text())
    entry = document["results"][0]
    assert entry["late_rows"] == 1
    assert entry["watermark"] == utc(t(2)).isoformat()
    assert any("behind the watermark" in w for w in entry["warnings"])


def test_a_rerun_with_nothing_new_is_quiet(no_created: Path) -> None:
    write_rows(no_created, [(1, t(2), None, 1.0, "a")])
    run(no_created, t(3))
    again = run(no_created, t(3))
    assert (again.rows_read, again.warnings, again.note) == (0, (), "no new rows")


def test_late_rows_and_corrections_on_a_postgres_source_in_the_same_database(
    tmp_path: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    """Offline and online in one Postgres: the rows move by INSERT ... SELECT, the rules are the same."""
    import psycopg
    from online_helpers import online_url

    definitions = DEFINITIONS.replace("    path: data/stats.parquet\n", f"    table: {postgres_schema}.stats\n")
    project = write_project(tmp_path / "p", postgres_dsn, postgres_schema, definitions)
    profile = (project / "profiles.yml").read_text().replace("'duckdb:///:memory:'", f"'{online_url(postgres_dsn)}'")
    (project / "profiles.yml").write_text(profile)
    insert = f'INSERT INTO "{postgres_schema}".stats VALUES (%s, %s, %s, %s, %s)'
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        connection.execute(
            f'CREATE TABLE "{postgres_schema}".stats (driver_id bigint, event_ts timestamp, created_ts timestamp, '
            "rate double precision, label text)"
        )
        connection.cursor().executemany(insert, [(1, t(2), t(2), 1.0, "a"), (2, t(2), t(2), 1.0, "a")])
        first = build(project, t(3))
        assert first.nodes[0].status == "success", first.nodes[0].message
        connection.execute(insert, (3, t(1), None, 3.0, "late"))  # behind the watermark, no created time
        connection.execute(insert, (1, t(2), t(3, 5), 1.5, "corrected"))  # a correction of an old event
        second = build(project, t(4))
    assert second.nodes[0].late_rows == 1
    online = stored(postgres_dsn, postgres_schema, "driver_stats")
    assert {k: v[1] for k, v in online.items()} == {1: "corrected", 2: "a", 3: "late"}

"""A large run (a full update) rebuilt beside the live table: the never-back-in-time guarantee.

A row read replaces a stored row only when its (feature_ts, created_ts, NULL lowest) is not
older (equal: the row read wins); stored rows no row read replaces are kept as they were
(values, times, materialized_at), with NULL in columns added since. Each case runs on the
rebuild path and on the upsert-in-place path, which must agree with one pure-Python oracle;
batches of 7 rows put winners, losers and kept rows on both sides of batch boundaries.
"""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from online_helpers import DEFINITIONS, run_view, state, stored, t, write_project, write_rows

import fsql
from fsql.engines.duckdb import DuckDBEngine
from fsql.online import materialize, versions
from fsql.online.materialize import MaterializeRequest, MaterializeResult, materialize_view
from fsql.online.tables import OnlineTable

UPSERT, REBUILD = 1e9, 0.0  # rebuild_share: never rebuild / always rebuild and swap
PATHS = pytest.mark.parametrize("rebuild_share", [REBUILD, UPSERT], ids=["rebuild", "upsert"])
PUSHED = DEFINITIONS.replace("    online: true\n", "    online: true\n    push: true\n", 1)
WITH_NEW_FEATURE = DEFINITIONS.replace(
    "      - {name: label, type: string}\n",
    "      - {name: label, type: string}\n      - {name: rate_x2, type: double, expr: rate * 2}\n",
)
EVERYTHING = t(1) - timedelta(days=1)  # an explicit start before every row: the run reads them all

Row = tuple[int, datetime, datetime | None, float | None, str | None]


def utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.replace(tzinfo=UTC)


@pytest.fixture
def project(tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> Path:
    return write_project(tmp_path / "p", postgres_dsn, postgres_schema, PUSHED)


@pytest.fixture
def batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(materialize, "ROWS_PER_BATCH", 7)


def run(
    project: Path, end: datetime, *, start: datetime | None = None, rebuild_share: float = 0.3
) -> MaterializeResult:
    return run_view(project, end, start=start, rebuild_share=rebuild_share)


def version(row: Row) -> tuple[datetime, datetime]:
    """(event, created) with a NULL created time ranking lowest."""
    return (row[1], row[2] if row[2] is not None else datetime.min)


def latest(rows: list[Row]) -> dict[int, Row]:
    """The row a run reads per entity: the greatest version (ties among the read rows do not occur here)."""
    best: dict[int, Row] = {}
    for row in rows:
        if row[0] not in best or version(row) > version(best[row[0]]):
            best[row[0]] = row
    return best


def oracle(before: dict[int, Row], read: dict[int, Row]) -> dict[int, tuple[Any, ...]]:
    """What the table must hold: the row read where it is not older than the stored one, else the stored."""
    after = dict(before)
    for key, row in read.items():
        if key not in before or version(row) >= version(before[key]):
            after[key] = row
    return {k: (r[3], r[4], utc(r[1]), utc(r[2])) for k, r in after.items()}


def random_sources(seed: int, entities: int) -> tuple[list[Row], list[Row]]:
    """Two sources over the same few event and created times, so that versions tie often:
    some entities only in the first (kept), some only in the second (new), the rest in both."""
    rng = random.Random(seed)
    events = [t(2), t(3), t(4)]
    createds: list[datetime | None] = [None, t(4, 1), t(4, 2)]
    first: list[Row] = []
    second: list[Row] = []

    def rows_of(key: int, label: str) -> list[Row]:
        # Distinct versions within one source (the source's own tie-break is tested elsewhere).
        picked = rng.sample([(e, c) for e in events for c in createds], rng.randint(1, 3))
        return [(key, e, c, rng.choice([None, rng.random()]), f"{label}{key}.{i}") for i, (e, c) in enumerate(picked)]

    for key in range(entities):
        where = rng.choice(["both", "both", "both", "first", "second"])
        if where in ("both", "first"):
            first += rows_of(key, "a")
        if where in ("both", "second"):
            second += rows_of(key, "b")
    return first, second


@PATHS
@pytest.mark.parametrize("seed", [1, 2])
def test_a_run_over_many_batches_keeps_what_a_stored_row_beats_and_what_it_does_not_read(
    project: Path, postgres_dsn: str, postgres_schema: str, batches: None, rebuild_share: float, seed: int
) -> None:
    first, second = random_sources(seed, 300)
    write_rows(project, first)
    run(project, t(5))
    before = latest(first)
    assert stored(postgres_dsn, postgres_schema) == oracle({}, before)
    materialized = materialized_at(postgres_dsn, postgres_schema)

    write_rows(project, second)
    result = run(project, t(5), start=EVERYTHING, rebuild_share=rebuild_share)
    read = latest(second)
    expected = oracle(before, read)
    assert stored(postgres_dsn, postgres_schema) == expected
    assert ("rebuilt and swapped" in result.note) == (rebuild_share == REBUILD)
    won = [k for k, row in read.items() if k not in before or version(row) >= version(before[k])]
    assert (result.rows_read, result.rows_written) == (len(read), len(won))
    kept = set(before) - set(won)
    beaten = kept & set(read)
    assert len(kept - beaten) > 20 and len(beaten) > 20 and len(won) > 50  # every kind, across many batches
    after = materialized_at(postgres_dsn, postgres_schema)
    assert {k: after[k] for k in kept} == {k: materialized[k] for k in kept}  # kept rows are the stored rows
    assert state(postgres_dsn, postgres_schema)[1] == len(won)


def materialized_at(dsn: str, schema: str) -> dict[int, datetime]:
    with psycopg.connect(dsn) as connection:
        rows = connection.execute(f'SELECT driver_id, materialized_at FROM "{schema}".driver_stats').fetchall()
    return dict(rows)


@PATHS
def test_a_pushed_row_newer_than_the_row_read_survives_a_full_update(
    project: Path, postgres_dsn: str, postgres_schema: str, rebuild_share: float
) -> None:
    write_rows(project, [(d, t(2), None, 0.2, "built") for d in range(1, 6)])
    run(project, t(3))
    # A push writes driver 1 newer than the source will ever say, and driver 9 the source never had.
    pushed = fsql.load_project(project).push(
        "driver_stats",
        [
            {"driver_id": 1, "event_ts": t(4, 6), "created_ts": None, "rate": 0.9, "label": "pushed"},
            {"driver_id": 9, "event_ts": t(3, 6), "created_ts": None, "rate": 0.8, "label": "online only"},
        ],
    )
    assert pushed.written == 2
    write_rows(project, [(d, t(4), None, 0.4, "source") for d in range(1, 6)])  # every driver newer
    result = run(project, t(5), rebuild_share=rebuild_share)
    assert (result.rows_read, result.rows_written) == (5, 4)
    values = {k: v[:3] for k, v in stored(postgres_dsn, postgres_schema).items()}
    assert values == {
        1: (0.9, "pushed", utc(t(4, 6))),
        **{d: (0.4, "source", utc(t(4))) for d in range(2, 6)},
        9: (0.8, "online only", utc(t(3, 6))),
    }


@PATHS
def test_equal_versions_the_row_read_wins_and_a_null_created_time_ranks_lowest(
    project: Path, postgres_dsn: str, postgres_schema: str, rebuild_share: float
) -> None:
    write_rows(
        project,
        [
            (1, t(2), t(2, 1), 0.1, "stored"),  # read: same event and created -> the row read wins
            (2, t(2), None, 0.1, "stored"),  # read: same event, a created time -> the row read wins
            (3, t(2), t(2, 1), 0.1, "stored"),  # read: same event, no created time -> the stored row stays
            (4, t(2), None, 0.1, "stored"),  # read: same event, no created time either -> the row read wins
            (5, t(2), t(2, 2), 0.1, "stored"),  # read: same event, an older created time -> the stored row stays
        ],
    )
    run(project, t(3))
    write_rows(
        project,
        [
            (1, t(2), t(2, 1), 0.5, "read"),
            (2, t(2), t(2, 1), 0.5, "read"),
            (3, t(2), None, 0.5, "read"),
            (4, t(2), None, 0.5, "read"),
            (5, t(2), t(2, 1), 0.5, "read"),
        ],
    )
    result = run(project, t(3), start=EVERYTHING, rebuild_share=rebuild_share)
    labels = {k: v[1] for k, v in stored(postgres_dsn, postgres_schema).items()}
    assert labels == {1: "read", 2: "read", 3: "stored", 4: "read", 5: "stored"}
    assert (result.rows_read, result.rows_written) == (5, 3)


def test_new_columns_keep_stored_rows_not_replaced_with_null_in_the_new_column(
    project: Path, postgres_dsn: str, postgres_schema: str, batches: None
) -> None:
    write_rows(project, [(d, t(2), None, 0.5, "built") for d in range(40)])
    run(project, t(3))
    fsql.load_project(project).push(
        "driver_stats", [{"driver_id": 17, "event_ts": t(4), "created_ts": None, "rate": 0.7, "label": "pushed"}]
    )
    write_rows(project, [(d, t(3), None, 0.25, "again") for d in range(10, 40)])  # drivers 0-9 are gone
    (project / "definitions" / "defs.yml").write_text(WITH_NEW_FEATURE.replace("    online: true\n", PUSHED_FLAG, 1))
    result = run(project, t(3))
    assert "new columns" in result.note
    with psycopg.connect(postgres_dsn) as connection:
        rows = connection.execute(
            f'SELECT driver_id, rate, label, rate_x2 FROM "{postgres_schema}".driver_stats ORDER BY 1'
        ).fetchall()
    expected = [(d, 0.5, "built", None) for d in range(10)]  # not read: kept, the new column NULL
    expected += [(d, 0.25, "again", 0.5) for d in range(10, 40)]
    expected[17] = (17, 0.7, "pushed", None)  # pushed newer than the row read: kept
    assert rows == expected
    assert (result.rows_read, result.rows_written) == (30, 29)


PUSHED_FLAG = "    online: true\n    push: true\n"


@pytest.mark.parametrize("rebuild_share", [REBUILD, 0.3], ids=["always", "default"])
def test_readers_see_the_old_table_until_commit_then_the_new_one(
    project: Path, postgres_dsn: str, postgres_schema: str, batches: None, rebuild_share: float
) -> None:
    write_rows(project, [(d, t(2), None, 0.2, "old") for d in range(50)])
    run(project, t(3))
    write_rows(project, [(d, t(3), None, 0.3, "new") for d in range(50)])
    query = f'SELECT count(*) FILTER (WHERE label = %s), count(*) FROM "{postgres_schema}".driver_stats'
    seen: dict[str, Any] = {}

    def read(as_: str) -> None:
        with psycopg.connect(postgres_dsn, autocommit=True) as reader:
            seen[as_] = reader.execute(query, ("old",)).fetchone()

    def while_loading() -> None:
        read("loading")

    waiting: list[threading.Thread] = []

    def before_commit() -> None:
        # The swap is done but not committed: a reader waits for the commit, then reads the new table.
        reader = threading.Thread(target=read, args=("swapping",))
        reader.start()
        waiting.append(reader)

    loaded = fsql.load_project(project)
    target = loaded.config.target
    assert target.online_url is not None
    request = MaterializeRequest(
        loaded.definitions,
        "driver_stats",
        target.online_url,
        target.online_schema,
        end=datetime(2024, 3, 4, tzinfo=UTC),
        rebuild_share=rebuild_share,
    )
    result = materialize_view(
        request,
        DuckDBEngine("duckdb:///:memory:", root=project),
        file_root=project,
        after_load=while_loading,
        before_commit=before_commit,
    )
    waiting[0].join()
    assert "rebuilt and swapped" in result.note
    assert seen["loading"] == (50, 50)  # the old rows, whole, while the new ones load
    assert seen["swapping"] == (0, 50)  # after the commit: the new table, whole


@pytest.mark.parametrize("rebuild_share", [REBUILD, 0.3], ids=["always", "default"])
def test_a_nul_byte_late_in_a_large_run_leaves_the_table_and_its_state_whole(
    project: Path, postgres_dsn: str, postgres_schema: str, batches: None, rebuild_share: float
) -> None:
    write_rows(project, [(d, t(2), None, 0.2, "old") for d in range(100)])
    run(project, t(3))
    before_values, before_state = stored(postgres_dsn, postgres_schema), state(postgres_dsn, postgres_schema)
    threads = threading.active_count()
    write_rows(project, [(d, t(3), None, 0.3, "x\x00y" if d == 90 else "new") for d in range(100)])
    with pytest.raises(fsql.FsqlError, match="NUL byte"):
        run(project, t(4), rebuild_share=rebuild_share)
    assert stored(postgres_dsn, postgres_schema) == before_values
    assert state(postgres_dsn, postgres_schema) == before_state
    assert threading.active_count() == threads  # no reader of the stored versions is left behind
    write_rows(project, [(d, t(3), None, 0.3, "new") for d in range(100)])
    result = run(project, t(4), rebuild_share=rebuild_share)  # and the next run works
    assert result.rows_written == 100 and {v[1] for v in stored(postgres_dsn, postgres_schema).values()} == {"new"}


def test_a_failed_run_stops_the_reader_of_stored_versions_and_waits_for_it(
    project: Path, postgres_dsn: str, postgres_schema: str, batches: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_rows(project, [(d, t(2), None, 0.2, "old") for d in range(100)])
    run(project, t(3))
    started = threading.Event()

    def held(cursor: Any, select: Any, stop: threading.Event) -> Any:
        started.set()
        stop.wait()  # a COPY out that only ends when the run says so
        raise versions._Stopped

    monkeypatch.setattr(versions, "_copy_out", held)
    write_rows(project, [(d, t(3), None, 0.3, "x\x00y" if d == 90 else "new") for d in range(100)])
    with pytest.raises(fsql.FsqlError, match="NUL byte"):
        run(project, t(4), rebuild_share=REBUILD)
    assert started.is_set()
    assert not [thread for thread in threading.enumerate() if thread.name.startswith("fsql stored versions")]


TWO_KEYS = (
    DEFINITIONS.replace(
        "join_keys: [{name: driver_id, type: bigint}]",
        "join_keys: [{name: zone, type: string}, {name: driver_id, type: bigint}]",
    )
    .replace("columns: {driver_id: bigint,", "columns: {zone: string, driver_id: bigint,")
    .replace("    online: true\n", PUSHED_FLAG, 1)
)
# Text keys that stress the CSV the stored versions come back in: separators, quotes, line breaks, "".
ZONES = ["plain", "a,b", 'say "hi"', "two\nlines", "", "ünïcødé", "\\back\\slash", "NULL"]


def write_zoned(root: Path, rows: list[tuple[Any, ...]]) -> None:
    """Rows of (zone, driver_id, event_ts, created_ts, rate, label)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    zone, driver, event, created, rate, label = (list(c) for c in zip(*rows, strict=True))
    table = pa.table(
        {
            "zone": pa.array(zone, pa.string()),
            "driver_id": pa.array(driver, pa.int64()),
            "event_ts": pa.array(event, pa.timestamp("us")),
            "created_ts": pa.array(created, pa.timestamp("us")),
            "rate": pa.array(rate, pa.float64()),
            "label": pa.array(label, pa.string()),
        }
    )
    pq.write_table(table, root / "data" / "stats.parquet")


@PATHS
def test_text_and_composite_keys_keep_their_stored_rows_exactly(
    tmp_path: Path, postgres_dsn: str, postgres_schema: str, batches: None, rebuild_share: float
) -> None:
    project = write_project(tmp_path / "p", postgres_dsn, postgres_schema, TWO_KEYS)
    first = [(z, d, t(2), None, 0.2, f"stored {z} {d}") for z in ZONES for d in range(3)]
    write_zoned(project, first)
    run(project, t(5))
    # Driver 0 of each zone: newer; driver 1: older than stored (kept); driver 2: not read (kept); 3: new.
    second = [(z, 0, t(3), None, 0.3, "newer") for z in ZONES]
    second += [(z, 1, t(1), None, 0.1, "older") for z in ZONES]
    second += [(z, 3, t(3), None, 0.3, "new entity") for z in ZONES]
    write_zoned(project, second)
    result = run(project, t(5), start=EVERYTHING, rebuild_share=rebuild_share)
    with psycopg.connect(postgres_dsn) as connection:
        rows = connection.execute(f'SELECT zone, driver_id, label FROM "{postgres_schema}".driver_stats').fetchall()
    expected = {(z, 0): "newer" for z in ZONES}
    expected |= {(z, d): f"stored {z} {d}" for z in ZONES for d in (1, 2)}
    expected |= {(z, 3): "new entity" for z in ZONES}
    assert {(z, d): label for z, d, label in rows} == expected
    assert len(rows) == len(expected)
    assert (result.rows_read, result.rows_written) == (3 * len(ZONES), 2 * len(ZONES))


def test_stored_versions_read_the_same_whatever_the_server_sessions_date_style(
    project: Path, postgres_dsn: str, postgres_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_rows(project, [(1, t(2), t(2, 1), 0.2, "a"), (2, t(2, 3), None, 0.2, "b")])
    run(project, t(3))
    loaded = fsql.load_project(project)
    table = OnlineTable(postgres_schema, loaded.definitions.feature_views["driver_stats"])
    assert loaded.config.target.online_url is not None
    # A server or role default that prints times as 02/03/2024 (libpq reads PGOPTIONS for every connection).
    monkeypatch.setenv("PGOPTIONS", "-c DateStyle=SQL,DMY -c extra_float_digits=-3")
    with versions.StoredVersions(loaded.config.target.online_url, table) as reader:
        read = reader.result()
    assert sorted(read.to_pylist(), key=lambda r: r["driver_id"]) == [
        {"driver_id": 1, "feature_ts": utc(t(2)), "created_ts": utc(t(2, 1))},
        {"driver_id": 2, "feature_ts": utc(t(2, 3)), "created_ts": None},
    ]


FLOAT_KEYS = (
    DEFINITIONS.replace("{name: driver_id, type: bigint}", "{name: driver_id, type: double}")
    .replace("columns: {driver_id: bigint,", "columns: {driver_id: float32,")
    .replace("    online: true\n", PUSHED_FLAG, 1)
)


def write_float_keyed(root: Path, label: str, day: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    keys = [0.1, 0.5, 1.3, 2.0 / 3.0]
    table = pa.table(
        {
            "driver_id": pa.array(keys, pa.float32()),
            "event_ts": pa.array([t(day)] * len(keys), pa.timestamp("us")),
            "created_ts": pa.array([None] * len(keys), pa.timestamp("us")),
            "rate": pa.array([0.1] * len(keys), pa.float64()),
            "label": pa.array([label] * len(keys), pa.string()),
        }
    )
    pq.write_table(table, root / "data" / "stats.parquet")


@PATHS
def test_a_double_key_read_from_a_float32_column_finds_its_stored_row(
    tmp_path: Path, postgres_dsn: str, postgres_schema: str, rebuild_share: float
) -> None:
    # The rows read keep the source's float32 keys; the table stores them as the doubles their text
    # says (0.1, not 0.10000000149...): the rebuild must compare them as stored, as the upsert does.
    project = write_project(tmp_path / "p", postgres_dsn, postgres_schema, FLOAT_KEYS)
    write_float_keyed(project, "old", 2)
    run(project, t(3))
    write_float_keyed(project, "new", 3)
    result = run(project, t(4), start=EVERYTHING, rebuild_share=rebuild_share)
    with psycopg.connect(postgres_dsn) as connection:
        query = f'SELECT driver_id, label FROM "{postgres_schema}".driver_stats ORDER BY 1'
        rows = connection.execute(query).fetchall()
    assert rows == [(0.1, "new"), (0.5, "new"), (0.6666667, "new"), (1.3, "new")]
    assert (result.rows_read, result.rows_written) == (4, 4)


@pytest.mark.parametrize("queued", ["before the reader", "between the reader's statements"])
def test_a_large_run_finishes_when_another_session_queues_an_exclusive_lock_on_the_live_table(
    project: Path,
    postgres_dsn: str,
    postgres_schema: str,
    batches: None,
    monkeypatch: pytest.MonkeyPatch,
    queued: str,
) -> None:
    # The run reads the live table in its transaction (it counts the stored rows), so an ALTER TABLE,
    # VACUUM FULL or REINDEX asked for meanwhile queues behind the run; the reader of the stored
    # versions, on a connection of its own, would queue behind that, and the run wait for the reader:
    # a wait Postgres cannot see as a deadlock. The run must not wait for ever.
    write_rows(project, [(d, t(2), None, 0.2, "old") for d in range(100)])
    run(project, t(3))
    write_rows(project, [(d, t(3), None, 0.3, "new") if d < 90 else (d, t(1), None, 0.1, "older") for d in range(100)])
    live = f'"{postgres_schema}".driver_stats'
    outcome: dict[str, str] = {}

    def lock() -> None:
        with psycopg.connect(postgres_dsn) as locker:
            locker.execute("SET lock_timeout = '30s'")  # a run that hangs makes this lock time out
            try:
                locker.execute(f"LOCK TABLE {live} IN ACCESS EXCLUSIVE MODE")
                outcome["lock"] = "taken"
            except psycopg.errors.LockNotAvailable:
                outcome["lock"] = "timed out"
            except psycopg.Error as exc:  # the table it waited for was swapped out and dropped
                outcome["lock"] = type(exc).__name__

    locker = threading.Thread(target=lock)
    real_start = versions.StoredVersions.start

    def start(self: versions.StoredVersions) -> None:
        if locker.ident is None:  # result() starts the reader too: once is enough
            queue_lock()
        return real_start(self)

    def queue_lock() -> None:
        locker.start()
        with psycopg.connect(postgres_dsn, autocommit=True) as watcher:
            while not watcher.execute(
                f"SELECT count(*) FROM pg_locks WHERE relation = '{live}'::regclass AND NOT granted"
            ).fetchone()[0]:
                threading.Event().wait(0.01)

    real_schema = versions.arrow_schema

    def arrow_schema(description: Any) -> Any:
        # The reader has read its columns (a first statement) and is about to COPY (a second).
        if locker.ident is None:
            queue_lock()
        return real_schema(description)

    if queued == "before the reader":
        monkeypatch.setattr(versions.StoredVersions, "start", start)
    else:
        monkeypatch.setattr(versions, "arrow_schema", arrow_schema)
    result = run(project, t(4), start=EVERYTHING, rebuild_share=REBUILD)
    locker.join()
    assert outcome["lock"] != "timed out"
    assert "rebuilt and swapped" in result.note
    labels = {k: v[1] for k, v in stored(postgres_dsn, postgres_schema).items()}
    assert labels == {d: "new" if d < 90 else "old" for d in range(100)}
    assert (result.rows_read, result.rows_written) == (100, 90)


@pytest.fixture
def stored_table(project: Path, postgres_dsn: str, postgres_schema: str) -> tuple[str, OnlineTable]:
    write_rows(project, [(d, t(2), None, 0.2, "old") for d in range(2000)])
    run(project, t(3))
    loaded = fsql.load_project(project)
    assert loaded.config.target.online_url is not None
    view = loaded.definitions.feature_views["driver_stats"]
    return loaded.config.target.online_url, OnlineTable(postgres_schema, view)


def test_a_reader_stopped_in_the_middle_of_its_copy_ends_it_quietly(
    stored_table: tuple[str, OnlineTable],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, table = stored_table
    monkeypatch.setattr(versions, "_BLOCK_BYTES", 1)  # the stop is looked at after every row
    first_row = threading.Event()
    real_rows = versions._copy_rows
    reader = versions.StoredVersions(url, table)

    def rows(connection: Any, statement: str) -> Any:
        copied = real_rows(connection, statement)
        yield next(copied)
        first_row.set()
        reader._stop.wait()  # the run has left: the COPY is still going on the server
        yield from copied

    monkeypatch.setattr(versions, "_copy_rows", rows)
    with caplog.at_level("WARNING"), reader:
        reader.start()
        first_row.wait()
    assert not [r for r in caplog.records if r.name.startswith("psycopg")], caplog.text
    assert not [thread for thread in threading.enumerate() if thread.name.startswith("fsql stored versions")]
    assert reader._error is None  # a stop is not a failure


def test_a_failed_read_of_the_stored_versions_names_the_table(
    stored_table: tuple[str, OnlineTable], postgres_dsn: str, postgres_schema: str
) -> None:
    url, table = stored_table
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        connection.execute(f'DROP TABLE "{postgres_schema}".driver_stats')
    with (
        pytest.raises(fsql.FsqlError, match=rf'"{postgres_schema}"."driver_stats"'),
        versions.StoredVersions(url, table) as reader,
    ):
        reader.result()


def test_a_table_of_the_users_named_like_fsqls_temporary_ones_is_never_dropped(
    project: Path, postgres_dsn: str, postgres_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # fsql drops its temporary tables before making them; an unqualified DROP would take a table of
    # the same name from the search path when no temporary one exists yet.
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        for name in (versions.KEPT_TABLE, "_fsql_stage"):
            connection.execute(f'CREATE TABLE "{postgres_schema}"."{name}" (mine text)')
    monkeypatch.setenv("PGOPTIONS", f"-c search_path={postgres_schema}")
    write_rows(project, [(d, t(2), None, 0.2, "old") for d in range(10)])
    run(project, t(3))
    write_rows(project, [(d, t(3), None, 0.3, "new") for d in range(5)])  # drivers 5-9 are kept
    run(project, t(4), start=EVERYTHING, rebuild_share=REBUILD)
    fsql.load_project(project).push(
        "driver_stats", [{"driver_id": 1, "event_ts": t(5), "created_ts": None, "rate": 0.9, "label": "pushed"}]
    )
    with psycopg.connect(postgres_dsn) as connection:
        tables = connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename LIKE '\\_fsql\\_%%' ORDER BY 1",
            (postgres_schema,),
        ).fetchall()
    assert [name for (name,) in tables] == ["_fsql_kept", "_fsql_stage", "_fsql_state"]


def test_keys_that_cannot_be_compared_as_stored_leave_the_decision_to_postgres() -> None:
    import pyarrow as pa

    stored_schema = pa.schema([("k", pa.timestamp("us", tz="UTC"))])
    # A nanosecond a COPY rounds to the microsecond, as Postgres does; arrow could only cut it.
    read = pa.table({"k": pa.array([1_700_000_000_123_456_789], pa.timestamp("ns"))})
    with pytest.raises(versions.CannotDecide):
        versions.as_stored(read, stored_schema, ["k"])
    whole = pa.table({"k": pa.array([1_700_000_000_123_456_000], pa.timestamp("ns"))})
    assert versions.as_stored(whole, stored_schema, ["k"]).column("k").type == pa.timestamp("us", tz="UTC")


@PATHS
def test_a_double_key_read_from_an_integer_past_2_to_the_53_keeps_one_row_per_key(
    tmp_path: Path, postgres_dsn: str, postgres_schema: str, rebuild_share: float
) -> None:
    # arrow will not turn 2^53 + 1 into a double (it would round); Postgres does, so the rebuild
    # leaves the decision to Postgres and agrees with the upsert.
    import pyarrow as pa
    import pyarrow.parquet as pq

    definitions = DEFINITIONS.replace("{name: driver_id, type: bigint}", "{name: driver_id, type: double}")
    project = write_project(tmp_path / "p", postgres_dsn, postgres_schema, definitions)

    def write(label: str, day: int) -> None:
        keys = [2**53 + 1, 5, 7]
        table = pa.table(
            {
                "driver_id": pa.array(keys, pa.int64()),
                "event_ts": pa.array([t(day)] * 3, pa.timestamp("us")),
                "created_ts": pa.array([None] * 3, pa.timestamp("us")),
                "rate": pa.array([0.1] * 3, pa.float64()),
                "label": pa.array([label] * 3, pa.string()),
            }
        )
        pq.write_table(table, project / "data" / "stats.parquet")

    write("old", 2)
    run(project, t(3))
    write("new", 3)
    result = run(project, t(4), start=EVERYTHING, rebuild_share=rebuild_share)
    with psycopg.connect(postgres_dsn) as connection:
        query = f'SELECT driver_id, label FROM "{postgres_schema}".driver_stats ORDER BY 1'
        rows = connection.execute(query).fetchall()
    assert rows == [(5.0, "new"), (7.0, "new"), (float(2**53), "new")]
    assert (result.rows_read, result.rows_written) == (3, 3)

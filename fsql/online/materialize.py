"""Materialization: the latest row per entity, moved in bulk into the online table.

For one view, under a transaction-scoped advisory lock (two runs of one view are
serialised, never interleaved):
1. read the state and plan the write (create, full refresh, new columns, incremental);
2. ask the source, in one query, for the newest times in the read window and the rows
   behind the last run's reach (`fsql.online.state` says how that decides what is read);
3. read the latest row per entity in the window from the offline engine (DuckDB: arrow
   batches streamed into one COPY; the same Postgres: INSERT ... SELECT) into a table beside
   the live one, which stages them;
4. upsert from it: ON CONFLICT (keys) DO UPDATE ... WHERE the stored row is not newer
   (event time, then created time), so no run moves a value back in time; or, for large
   runs and new columns, complete it: delete the rows a stored row beats, add the stored
   rows none replaces;
5. swap that table in, write the new state, and commit. A failure anywhere leaves the old
   state whole. The live table is never altered in place: readers wait only for the swap.
"""

from __future__ import annotations

import enum
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlglot import exp
from sqlglot.errors import ErrorLevel

from fsql.compile.latest import CREATED_TS_COLUMN, FEATURE_TS, MATERIALIZED_AT, compile_latest_rows
from fsql.compile.watermark import BEHIND_AFTER, BEHIND_BEFORE, NEWEST_CREATED, NEWEST_EVENT, compile_source_state
from fsql.engines import ROWS_PER_BATCH, OfflineEngine, python_rows
from fsql.engines.postgres import connect, copy_arrow
from fsql.online.state import (
    ReadWindow,
    SourceState,
    ViewState,
    incremental_window,
    late_rows,
    next_state,
    read_state,
    warnings,
    write_state,
)
from fsql.online.swap import swap_in
from fsql.online.tables import (
    STAGE_TABLE,
    OnlineTable,
    ensure_schema_locked,
    existing_table,
    missing_columns,
    temporary_table,
)
from fsql.online.versions import CannotDecide, ReadVersions, StoredVersions, complete_beside, kept_keys, stored_values
from fsql.spec import Definitions

if TYPE_CHECKING:
    from fsql.online.session import BuildSession
    from fsql.warm import WarmCache


@dataclass(frozen=True)
class MaterializeResult:
    view: str
    rows_read: int
    rows_written: int
    start: datetime | None
    end: datetime
    seconds: float
    note: str = ""
    late_rows: int = 0  # rows that arrived behind the watermark since the last run (and were loaded)
    watermark: datetime | None = None  # the newest event time read so far
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class MaterializeRequest:
    definitions: Definitions
    view: str
    online_url: str = field(repr=False)  # may hold a password
    schema: str
    end: datetime
    start: datetime | None = None  # explicit window start; None: from the watermark
    lateness: timedelta = timedelta(0)
    full_refresh: bool = False
    schema_ready: bool = False  # the caller (a build's session) ensured the online schema already
    # When the new rows are at least this share of the stored ones, the table is rebuilt and
    # swapped in rather than updated in place (an update moves every row to a new page).
    rebuild_share: float = 0.3


class Plan(enum.Enum):
    """How a run writes the table."""

    CREATE = "created"  # no table yet: load straight into a new one
    FULL_REFRESH = "full refresh"  # build anew beside the live one, swap
    NEW_COLUMNS = "new columns: re-read all rows"  # merge stored and re-read rows beside it, swap
    INCREMENTAL = ""  # upsert in place, or merge beside and swap when the run is large


def fingerprint(definitions: Definitions, view_name: str) -> str:
    """A hash of what decides the stored values (not descriptions, tags or owners, nor the ttl)."""
    view = definitions.feature_views[view_name]
    source = definitions.sources[view.source]
    data = {
        "keys": [(k.name, str(k.type)) for k in view.join_keys],
        "features": [(f.name, str(f.type), f.expression) for f in view.features],
        "source": [source.kind.value, source.location, source.timestamp, source.created_timestamp],
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def materialize_view(
    request: MaterializeRequest,
    offline: OfflineEngine,
    *,
    file_root: Any = None,
    before_commit: Callable[[], None] | None = None,
    after_load: Callable[[], None] | None = None,
    session: BuildSession | None = None,
    cache: WarmCache | None = None,
) -> MaterializeResult:
    """Materialize one online view (an aggregate view's tiles: `fsql.online.materialize_tiles`).

    `after_load` runs once the rows are in, before any swap; `before_commit` after the
    writes and the state, just before commit (tests hold or fail the run there). A build
    passes its `session` (one connection for all its views) and its project's warm `cache`
    (queries compiled by an earlier build of the same definitions are not compiled again).
    """
    if request.definitions.feature_views[request.view].is_aggregate:
        from fsql.online.materialize_tiles import materialize_tiles

        if session is not None:
            session.ensure_schema(request.schema)
            request = replace(request, schema_ready=True)
        return materialize_tiles(
            request, offline, file_root=file_root, before_commit=before_commit, after_load=after_load, cache=cache
        )
    started = time.perf_counter()
    table = OnlineTable(request.schema, request.definitions.feature_views[request.view])
    with _view_transaction(request, session) as connection, connection.cursor() as cursor:
        lock_view(cursor, table)
        previous = read_state(cursor, table)
        current = fingerprint(request.definitions, request.view)
        plan, stored_columns = _plan(cursor, table, request.full_refresh)
        window = _window(request, previous, plan, changed=previous.fingerprint not in (None, current))
        source = _source_state(request, offline, window, previous, file_root, cache)
        late = late_rows(previous, source) if window.start is not None else 0
        if late:
            window = window.everything(f"{late:,} late rows: re-read all rows")
        run = _Run(request, offline, window, file_root, cache)
        rows_read, rows_written, note = _write(cursor, table, plan, stored_columns, run)
        if after_load is not None:
            after_load()
        if plan in (Plan.FULL_REFRESH, Plan.NEW_COLUMNS) or note.endswith(_REBUILT):
            swap_in(cursor, table, table.new_name)
        for statement in table.comment_sql():  # after any swap: comments belong to the live table
            cursor.execute(statement)
        state = next_state(previous, window, source, current)
        write_state(cursor, table, state, rows=rows_written, late=late, end=request.end)
        if before_commit is not None:
            before_commit()
        connection.commit()
    said = warnings(window, source, rows_read, late, previous, request.lateness)
    return MaterializeResult(
        request.view,
        rows_read,
        rows_written,
        window.start,
        request.end,
        time.perf_counter() - started,
        "; ".join(n for n in (window.note, note, "" if rows_read else "no new rows") if n),
        late,
        state.watermark,
        tuple(said),
    )


_REBUILT = "rebuilt and swapped"


@contextmanager
def _view_transaction(request: MaterializeRequest, session: BuildSession | None) -> Iterator[Any]:
    """The connection one view's run commits on: the build's session's, or one of its own."""
    if session is None:
        _ensure_schema(request)
        with connect(request.online_url, autocommit=False) as connection:
            yield connection
        return
    session.ensure_schema(request.schema)
    with session.transaction() as connection:
        yield connection


def _window(request: MaterializeRequest, previous: ViewState, plan: Plan, *, changed: bool) -> ReadWindow:
    """What the run reads: everything when the table is new or its rows must be read again."""
    window = incremental_window(previous, end=request.end, start=request.start, lateness=request.lateness)
    if plan is not Plan.INCREMENTAL:
        return window.everything(plan.value)
    if changed and previous.watermark is not None and request.start is None:
        return window.everything("definition changed: re-read all rows")
    return window


def _source_state(
    request: MaterializeRequest,
    offline: OfflineEngine,
    window: ReadWindow,
    previous: ViewState,
    file_root: Any,
    cache: WarmCache | None,
) -> SourceState:
    compile_query = partial(
        compile_source_state,
        request.definitions,
        request.view,
        dialect=offline.dialect,
        lateness=request.lateness,
        file_root=file_root,
    )
    key = (request.view, offline.dialect, request.lateness, str(file_root))
    query = compile_query() if cache is None else cache.get_for(request.definitions, "source_state", key, compile_query)
    event_reach, created_reach = previous.reach(request.lateness)
    params = {
        **window.params(),
        "watermark": previous.watermark,
        "created_watermark": previous.created_watermark,
        "event_reach": event_reach,
        "created_reach": created_reach,
    }
    row = python_rows(offline.query_arrow(query.sql, params=_only(params, query.parameters), node=request.view))[0]
    return SourceState(
        _utc(row[NEWEST_EVENT]), _utc(row[NEWEST_CREATED]), int(row[BEHIND_BEFORE]), int(row[BEHIND_AFTER])
    )


def _only(params: dict[str, Any], names: frozenset[str]) -> dict[str, Any]:
    return {name: value for name, value in params.items() if name in names}


def _utc(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def _plan(cursor: Any, table: OnlineTable, full_refresh: bool) -> tuple[Plan, dict[str, str]]:
    """How to write the table, and its columns as they are; a changed key or type is an error."""
    found = existing_table(cursor, table)
    if found is None:
        return Plan.CREATE, {}
    columns, keys = found
    if full_refresh:
        return Plan.FULL_REFRESH, columns
    if missing_columns(table, columns, keys):
        return Plan.NEW_COLUMNS, columns
    return Plan.INCREMENTAL, columns


@dataclass(frozen=True)
class _Run:
    """What one run of a view reads and from where, handed down the write path as one."""

    request: MaterializeRequest
    offline: OfflineEngine
    window: ReadWindow
    file_root: Any
    cache: WarmCache | None


def _write(
    cursor: Any, table: OnlineTable, plan: Plan, stored_columns: dict[str, str], run: _Run
) -> tuple[int, int, str]:
    """Write the rows read; returns rows read, rows written and a note. Live tables are never altered."""
    if plan in (Plan.CREATE, Plan.FULL_REFRESH):
        # A table made in this transaction is empty and the rows are one per key: no upsert needed.
        name = table.name if plan is Plan.CREATE else table.new_name
        _create(cursor, table, name)
        rows = _load_latest_rows(cursor, run, table.ref(name))
        cursor.execute(table.add_primary_key_sql(name))
        return rows, rows, ""
    # The rows read go straight into a table beside the live one (it stages them): a large run
    # completes it with the stored rows they do not beat and swaps it in; a small one upserts
    # from it in place and drops it.
    _create(cursor, table, table.new_name)
    request = run.request
    if run.offline.is_database(request.online_url):
        return _write_in_database(cursor, table, plan, stored_columns, run)
    stored_rows = 0 if plan is Plan.NEW_COLUMNS else _stored_rows(cursor, table)
    with StoredVersions(request.online_url, table) as stored:
        # A large run's stored versions are read while the COPY goes on, from the moment it is large.
        read = ReadVersions(table, large_from=request.rebuild_share * stored_rows, on_large=stored.start)
        rows_read = _load_latest_rows(cursor, run, table.ref(table.new_name), read)
        if plan is Plan.NEW_COLUMNS or (rows_read and read.large):
            try:
                kept = kept_keys(table, read.table(), stored.result())
            except CannotDecide:  # e.g. an exclusive lock queued behind this run: decide in Postgres, under its lock
                written = _merge_beside(cursor, table, stored_columns, rows_read)
            else:
                written = complete_beside(cursor, table, stored_columns, kept, rows_read=rows_read)
            return rows_read, written, "" if plan is Plan.NEW_COLUMNS else _REBUILT
    return rows_read, _upsert_beside(cursor, table), ""


def _write_in_database(
    cursor: Any, table: OnlineTable, plan: Plan, stored_columns: dict[str, str], run: _Run
) -> tuple[int, int, str]:
    """`_write` when offline and online are one database: the rows never leave it, nor their versions."""
    rows_read = _load_latest_rows(cursor, run, table.ref(table.new_name))
    share = run.request.rebuild_share
    if plan is Plan.NEW_COLUMNS or (rows_read and rows_read >= share * _stored_rows(cursor, table)):
        written = _merge_beside(cursor, table, stored_columns, rows_read)
        return rows_read, written, "" if plan is Plan.NEW_COLUMNS else _REBUILT
    return rows_read, _upsert_beside(cursor, table), ""


def _upsert_beside(cursor: Any, table: OnlineTable) -> int:
    """A small run: upsert the rows read from the table beside into the live one, and drop it."""
    beside = table.ref(table.new_name)
    written = upsert_staged(cursor, table, source=beside)
    cursor.execute(exp.Drop(tables=[beside.copy()], kind="TABLE").sql("postgres"))
    return written


def lock_view(cursor: Any, table: OnlineTable) -> None:
    """Hold the view's advisory lock until the transaction ends: builds and pushes of one view
    take turns (`fsql.push` takes it too), so each sees the table the one before it committed."""
    lock_key = f"fsql:{table.schema}.{table.name}"
    cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (lock_key,))


def create_stage(cursor: Any, table: OnlineTable) -> exp.Table:
    """An empty temporary staging table with the online table's columns (rows are COPYed in)."""
    cursor.execute(exp.Drop(tables=[_stage()], kind="TABLE", exists=True).sql("postgres"))
    cursor.execute(table.create_sql(STAGE_TABLE, temporary=True))
    return _stage()


def create_table(cursor: Any, table: OnlineTable) -> None:
    """Create a view's empty online table with its key (a push before the first build)."""
    _create(cursor, table, table.name)
    cursor.execute(table.add_primary_key_sql())


def _create(cursor: Any, table: OnlineTable, name: str) -> None:
    cursor.execute(exp.Drop(tables=[table.ref(name)], kind="TABLE", exists=True).sql("postgres"))
    cursor.execute(table.create_sql(name))


def _stage() -> exp.Table:
    return temporary_table(STAGE_TABLE)


def _ensure_schema(request: MaterializeRequest) -> None:
    if request.schema_ready:
        return
    with connect(request.online_url, autocommit=False) as connection:
        ensure_schema_locked(connection, request.schema)


def _load_latest_rows(cursor: Any, run: _Run, destination: exp.Table, versions: ReadVersions | None = None) -> int:
    """Fill `destination` with the latest row per entity in the window (COPY, or INSERT ... SELECT);
    `versions` sees the rows COPYed on their way. The query is compiled once per definitions on a
    warm project (`run.cache`), as the source-state query is."""
    request, offline, window, file_root = run.request, run.offline, run.window, run.file_root
    compile_query = partial(
        compile_latest_rows, request.definitions, request.view, dialect=offline.dialect, file_root=file_root
    )
    key = (request.view, offline.dialect, str(file_root))
    cache = run.cache
    query = compile_query() if cache is None else cache.get_for(request.definitions, "latest_rows", key, compile_query)
    params = _only(window.params(), query.parameters)
    if offline.is_database(request.online_url):
        # Offline and online are the same database: the rows never pass through Python.
        columns = exp.Schema(this=destination, expressions=[exp.to_identifier(c, quoted=True) for c in query.columns])
        cursor.execute(f"INSERT INTO {columns.sql('postgres')} {query.sql}", params)
        return int(cursor.rowcount)
    # The rows stream from the engine into one COPY, a batch at a time: never whole in memory.
    rows = offline.query_batches(query.sql, params=params, node=request.view, rows_per_batch=ROWS_PER_BATCH)
    if versions is not None:
        rows = versions.stream(rows)
    return copy_arrow(
        cursor,
        destination,
        rows,
        what=f"feature view '{request.view}'",
        keys=query.columns[: len(query.view.join_keys)],
    )


def upsert_staged(cursor: Any, table: OnlineTable, *, source: exp.Table | None = None) -> int:
    """INSERT ... SELECT from the stage, ON CONFLICT (keys) DO UPDATE unless the stored row is newer.

    The one never-back-in-time write of builds and pushes: a staged row replaces a stored one
    when its (feature_ts, created_ts) is not older (equal versions: the staged row wins), and
    the stage (`source`, default the temporary stage) holds one row per key. Returns the rows written.
    """
    columns = [exp.to_identifier(c, quoted=True) for c in (*table.value_columns, MATERIALIZED_AT)]
    select = exp.select(*(exp.column(c, quoted=True) for c in table.value_columns), exp.func("now")).from_(
        source.copy() if source is not None else _stage()
    )
    excluded = exp.to_identifier("excluded")  # Postgres's name for the proposed row; must stay unquoted
    updates = [
        exp.EQ(
            this=exp.column(c, quoted=True),
            expression=exp.Column(this=exp.to_identifier(c, quoted=True), table=excluded),
        )
        for c in (*table.value_columns[len(table.keys) :], MATERIALIZED_AT)
    ]
    conflict = exp.OnConflict(
        conflict_keys=[exp.to_identifier(k, quoted=True) for k in table.keys],
        action=exp.var("DO UPDATE"),
        expressions=updates,
        where=exp.Where(this=exp.LTE(this=_version(exp.to_identifier("stored")), expression=_version(excluded))),
    )
    target = exp.Schema(this=table.ref().as_("stored"), expressions=columns)
    insert = exp.Insert(this=target, expression=select, conflict=conflict)
    cursor.execute(insert.sql("postgres", unsupported_level=ErrorLevel.RAISE))
    return int(cursor.rowcount)


def _stored_rows(cursor: Any, table: OnlineTable) -> int:
    cursor.execute(exp.select(exp.func("COUNT", exp.Star())).from_(table.ref()).sql("postgres"))
    return int(cursor.fetchone()[0])


def _merge_beside(cursor: Any, table: OnlineTable, stored_columns: dict[str, str], rows_read: int) -> int:
    """Complete the table beside the live one, which holds the rows read: drop those a stored row
    beats, add the stored rows no row read replaces (equal versions: the row read wins), and add
    its key; returns the rows won.

    Two passes that write only what changes (a full update deletes and adds nothing), instead
    of writing every row read a second time. The live table is only read, so lookups go on; a
    column it lacks (a new feature) is NULL in the stored rows kept. The caller swaps it in.
    """
    stored, staged = exp.to_identifier("stored"), exp.to_identifier("staged")
    beside = table.ref(table.new_name)
    same_keys = exp.and_(*(exp.EQ(this=_column(k, stored), expression=_column(k, staged)) for k in table.keys))
    losers = exp.Delete(
        this=beside.copy().as_("staged"),
        using=[table.ref().as_("stored")],
        where=exp.Where(this=exp.and_(same_keys.copy(), exp.GT(this=_version(stored), expression=_version(staged)))),
    )
    cursor.execute(losers.sql("postgres", unsupported_level=ErrorLevel.RAISE))
    lost = int(cursor.rowcount)
    columns = (*table.value_columns, MATERIALIZED_AT)
    kept_values = stored_values(table, stored_columns, stored)
    replaced = exp.select(exp.Literal.number(1)).from_(beside.copy().as_("staged")).where(same_keys.copy())
    kept = exp.select(*kept_values).from_(table.ref().as_("stored")).where(exp.Not(this=exp.Exists(this=replaced)))
    into = exp.Schema(this=beside, expressions=[exp.to_identifier(c, quoted=True) for c in columns])
    cursor.execute(exp.Insert(this=into, expression=kept).sql("postgres", unsupported_level=ErrorLevel.RAISE))
    cursor.execute(table.add_primary_key_sql(table.new_name))
    return rows_read - lost


def _column(name: str, table: exp.Identifier) -> exp.Column:
    return exp.Column(this=exp.to_identifier(name, quoted=True), table=table.copy())


def _version(alias: exp.Identifier) -> exp.Expression:
    """(feature_ts, created_ts) of a row, a NULL created time ranking lowest."""
    created = exp.func(
        "COALESCE",
        exp.Column(this=exp.to_identifier(CREATED_TS_COLUMN, quoted=True), table=alias.copy()),
        exp.cast(exp.Literal.string("-infinity"), "TIMESTAMPTZ"),
    )
    return exp.Tuple(
        expressions=[exp.Column(this=exp.to_identifier(FEATURE_TS, quoted=True), table=alias.copy()), created]
    )

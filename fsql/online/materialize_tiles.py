"""Materialization of an aggregate view: every bucket a run touches, recomputed from the source and replaced.

For one view, under the same transaction-scoped advisory lock as a latest-value view:
1. the watermark T of the run is `min(--end, now)` in event time (never less than the last
   run's): after it commits, every source row with e < T has been read;
2. ask the source for its state, as latest-value views do (`fsql.compile.watermark`), to
   tell rows that arrived behind the last reach (late rows: every retained bucket is read again);
3. read the tiles of every bucket from `floor(T_last - lateness, g)` to T (and of buckets
   holding a corrected row, created after the last run), each from all of its source rows;
4. in one transaction: delete the stored tiles of those buckets and the tiles older than
   `floor(T, g)` less the longest window, insert the new ones, write the state, commit.
A tile is only ever replaced by a recomputation of its whole bucket, never added to, so a
replayed, overlapping, late or crashed run cannot count a row twice.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Hashable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from sqlglot import exp
from sqlglot.errors import ErrorLevel

from fsql.compile.tiles import BUCKET, compile_tiles
from fsql.compile.watermark import (
    BEHIND_AFTER,
    BEHIND_BEFORE,
    NEWEST_CREATED,
    NEWEST_EVENT,
    SourceStateQuery,
    compile_source_state,
)
from fsql.engines import ROWS_PER_BATCH, OfflineEngine, python_rows
from fsql.engines.postgres import connect, copy_arrow
from fsql.online.state import ReadWindow, SourceState, ViewState, incremental_window, late_rows, read_state, write_state
from fsql.online.swap import swap_in
from fsql.online.tables import ensure_schema_locked, existing_columns, temporary_table
from fsql.online.tile_table import TILE_STAGE, TileTable
from fsql.spec import Definitions

if TYPE_CHECKING:
    from fsql.online.materialize import MaterializeRequest, MaterializeResult
    from fsql.warm import WarmCache

Q = TypeVar("Q")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CREATED = "created"


def tile_fingerprint(definitions: Definitions, view_name: str) -> str:
    """A hash of what decides the stored tiles (not descriptions, tags, owners, or the windows
    within the retained ones: a new shorter window reads the same tiles)."""
    view = definitions.feature_views[view_name]
    source = definitions.sources[view.source]
    data = {
        "keys": [(k.name, str(k.type)) for k in view.join_keys],
        "granularity": view.granularity.seconds if view.granularity else None,
        "aggregations": [
            (a.name, a.function.value, a.expression, a.filter, str(a.input_type), a.is_column)
            for a in view.aggregations
        ],
        "source": [source.kind.value, source.location, source.timestamp, source.created_timestamp],
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def floor_to(moment: datetime, seconds: int) -> datetime:
    """`floor(moment, g)` from the epoch, for instants before 1970 too."""
    micros = (moment - _EPOCH) // timedelta(microseconds=1)
    step = seconds * 1_000_000
    return _EPOCH + timedelta(microseconds=(micros // step) * step)


def retention(view_seconds: tuple[int, int], watermark: datetime) -> datetime:
    """The oldest bucket kept: `floor(T, g)` less the longest window (granularity, longest window in seconds)."""
    granularity, longest = view_seconds
    return floor_to(watermark, granularity) - timedelta(seconds=longest)


def materialize_tiles(
    request: MaterializeRequest,
    offline: OfflineEngine,
    *,
    file_root: Any = None,
    before_commit: Callable[[], None] | None = None,
    after_load: Callable[[], None] | None = None,
    cache: WarmCache | None = None,
) -> MaterializeResult:
    """Materialize the tiles of one aggregate view up to `min(request.end, now)`; a build passes
    its project's warm `cache`, so that a later build of the same definitions compiles nothing."""
    from fsql.online.materialize import MaterializeResult

    started = time.perf_counter()
    view = request.definitions.feature_views[request.view]
    assert view.granularity is not None, "online aggregate views have a granularity (checked by validate)"
    table = TileTable(request.schema, view)
    _ensure_schema(request)
    with connect(request.online_url, autocommit=False) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"fsql:{table.schema}.{table.name}",))
        previous = read_state(cursor, table)
        current = tile_fingerprint(request.definitions, request.view)
        rebuild = _rebuild_reason(cursor, table, previous, current, request.full_refresh)
        until = min(request.end, datetime.now(UTC))
        if previous.watermark is not None and not rebuild:
            until = max(until, previous.watermark)  # a replay of an older end never takes back what was read
        window = incremental_window(previous, end=until, start=request.start, lateness=request.lateness)
        if rebuild:
            window = window.everything(rebuild)
        source = _source_state(request, offline, window, previous, until, file_root, cache)
        late = late_rows(previous, source) if window.start is not None else 0
        if late:
            window = window.everything(f"{late:,} late rows: every retained bucket read again")
        longest = max(w.seconds for a in view.aggregations for w in a.windows)
        horizon = retention((view.granularity.seconds, longest), until)
        params = {
            "until": until,
            "horizon": horizon,
            "from_bucket": floor_to(window.start, view.granularity.seconds) if window.start else None,
            "start_created": window.start_created,
        }
        # A first build fills its table directly; a rebuild fills one beside the live table and swaps it in.
        name = table.new_name if rebuild and rebuild != _CREATED else table.name
        if rebuild:
            _create(cursor, table, name)
        rows_read = _stage_tiles(cursor, request, table, offline, params, file_root, cache)
        removed = 0 if rebuild else _delete_replaced(cursor, table, params)
        rows_written = _insert_staged(cursor, table, name)
        if rebuild:
            cursor.execute(table.add_primary_key_sql(name))
        if after_load is not None:
            after_load()
        if name != table.name:
            swap_in(cursor, table, name)
        for statement in table.comment_sql():  # after any swap: comments belong to the live table
            cursor.execute(statement)
        state = _next_state(previous, window, source, current, until)
        write_state(cursor, table, state, rows=rows_written, late=late, end=request.end)
        if before_commit is not None:
            before_commit()
        connection.commit()
    note = "; ".join(n for n in (window.note, f"{removed:,} tiles replaced or past retention" if removed else "") if n)
    return MaterializeResult(
        request.view, rows_read, rows_written, window.start, request.end, time.perf_counter() - started, note, late,
        state.watermark, tuple(_warnings(late, previous, request.lateness)),
    )  # fmt: skip


def _rebuild_reason(cursor: Any, table: TileTable, previous: ViewState, current: str, full_refresh: bool) -> str:
    """Why the tiles are built anew beside the live table ("" when they are not)."""
    columns = existing_columns(cursor, table)
    if columns is None:
        return _CREATED
    if full_refresh:
        return "full refresh"
    if previous.fingerprint not in (None, current) or columns != table.expected_types():
        return "definition changed: every retained bucket read again"
    return ""


def _source_state(
    request: MaterializeRequest,
    offline: OfflineEngine,
    window: ReadWindow,
    previous: ViewState,
    until: datetime,
    file_root: Any,
    cache: WarmCache | None,
) -> SourceState:
    def compile_query() -> SourceStateQuery:
        # The source-state query reads the view's keys and times only: its aggregate features
        # are not row expressions, so they are left out of the view it is compiled for.
        view = request.definitions.feature_views[request.view]
        bare = replace(view, features=(), aggregations=())
        views = {**request.definitions.feature_views, view.name: bare}
        return compile_source_state(
            replace(request.definitions, feature_views=views), request.view, dialect=offline.dialect,
            lateness=request.lateness, file_root=file_root,
        )  # fmt: skip

    key = (request.view, offline.dialect, request.lateness, str(file_root))
    query = _compiled(cache, request, "tile_source_state", key, compile_query)
    event_reach, created_reach = previous.reach(request.lateness)
    params = {
        **window.params(),
        "watermark": until,  # the next reach is T less the lateness, whatever the newest row
        "created_watermark": previous.created_watermark,
        "event_reach": event_reach,
        "created_reach": created_reach,
    }
    used = {name: value for name, value in params.items() if name in query.parameters}
    row = python_rows(offline.query_arrow(query.sql, params=used, node=request.view))[0]
    return SourceState(
        _utc(row[NEWEST_EVENT]), _utc(row[NEWEST_CREATED]), int(row[BEHIND_BEFORE]), int(row[BEHIND_AFTER])
    )


def _next_state(
    previous: ViewState, window: ReadWindow, source: SourceState, fingerprint: str, until: datetime
) -> ViewState:
    if not window.joins_up:
        return replace(previous, fingerprint=fingerprint)
    created = [m for m in (previous.created_watermark, source.newest_created) if m is not None]
    return ViewState(until, max(created, default=None), source.behind_after, fingerprint)


def _stage_tiles(
    cursor: Any, request: MaterializeRequest, table: TileTable, offline: OfflineEngine, params: dict[str, Any],
    file_root: Any, cache: WarmCache | None,
) -> int:  # fmt: skip
    """The recomputed tiles of every bucket read, into a temporary stage."""
    query = _compiled(
        cache, request, "tiles", (request.view, offline.dialect, str(file_root)),
        lambda: compile_tiles(request.definitions, request.view, dialect=offline.dialect, file_root=file_root),
    )  # fmt: skip
    stage = temporary_table(TILE_STAGE)
    cursor.execute(exp.Drop(tables=[stage.copy()], kind="TABLE", exists=True).sql("postgres"))
    cursor.execute(table.create_sql(TILE_STAGE, temporary=True))
    used = {name: value for name, value in params.items() if name in query.parameters}
    tiles = offline.query_batches(query.sql, params=used, node=request.view, rows_per_batch=ROWS_PER_BATCH)
    return copy_arrow(
        cursor, stage, tiles, what=f"feature view '{request.view}'", keys=query.columns[: len(table.keys)]
    )


def _compiled(
    cache: WarmCache | None, request: MaterializeRequest, kind: str, key: Hashable, compile_query: Callable[[], Q]
) -> Q:
    """A query compiled once per definitions on a warm project (`cache`), else each time."""
    return compile_query() if cache is None else cache.get_for(request.definitions, kind, key, compile_query)


def _delete_replaced(cursor: Any, table: TileTable, params: dict[str, Any]) -> int:
    """Delete the stored tiles of every bucket read (they are recomputed whole) and those past retention."""
    bucket = exp.column(BUCKET, quoted=True)
    stage = temporary_table(TILE_STAGE)
    replaced: exp.Expr = exp.In(this=bucket.copy(), query=exp.select(bucket.copy()).from_(stage).subquery())
    if params["from_bucket"] is None:
        replaced = exp.true()  # every bucket was read
    else:
        replaced = exp.or_(replaced, exp.GTE(this=bucket.copy(), expression=exp.Placeholder(this="from_bucket")))
    expired = exp.LT(this=bucket.copy(), expression=exp.Placeholder(this="horizon"))
    cursor.execute(exp.delete(table.ref(), where=exp.or_(expired, replaced)).sql("postgres"), params)
    return int(cursor.rowcount)


def _insert_staged(cursor: Any, table: TileTable, name: str) -> int:
    """Add the staged tiles in (keys, bucket) order: a lookup range-scans one entity's tiles of the
    longest window, and written bucket by bucket they would each lie on a heap page of their own
    (720 random reads for 30 days of 1h tiles instead of a few pages)."""
    columns = [exp.to_identifier(c, quoted=True) for c in table.value_columns]
    select = (
        exp.select(*(exp.column(c, quoted=True) for c in table.value_columns))
        .from_(temporary_table(TILE_STAGE))
        .order_by(*(exp.column(c, quoted=True) for c in (*table.keys, BUCKET)))
    )
    insert = exp.Insert(this=exp.Schema(this=table.ref(name), expressions=columns), expression=select)
    cursor.execute(insert.sql("postgres", unsupported_level=ErrorLevel.RAISE))
    return int(cursor.rowcount)


def _create(cursor: Any, table: TileTable, name: str) -> None:
    cursor.execute(exp.Drop(tables=[table.ref(name)], kind="TABLE", exists=True).sql("postgres"))
    cursor.execute(table.create_sql(name))


def _ensure_schema(request: MaterializeRequest) -> None:
    if request.schema_ready:  # a build ensured it on its own connection, once
        return
    with connect(request.online_url, autocommit=False) as connection:
        ensure_schema_locked(connection, request.schema)


def _warnings(late: int, previous: ViewState, lateness: timedelta) -> list[str]:
    if not late:
        return []
    since = previous.watermark.isoformat() if previous.watermark else "none"
    return [
        f"{late:,} row{'s' if late != 1 else ''} arrived behind the watermark ({since}, lateness "
        f"{int(lateness.total_seconds())}s): every retained bucket was recomputed to count them; set `lateness:` "
        f"on the view to how late rows arrive to keep runs incremental"
    ]


def _utc(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment

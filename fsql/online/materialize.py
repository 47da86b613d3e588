"""Materialization: the latest row per entity, moved in bulk into the online table.

For one view, under a transaction-scoped advisory lock (two runs of one view are
serialised, never interleaved):
1. read the state (watermark, fingerprint) and bring the table up to the definition;
2. read the latest row per entity with event time in (watermark - lateness, end] from
   the offline engine (DuckDB: arrow, then COPY; the same Postgres: INSERT ... SELECT);
3. upsert from the staging table: ON CONFLICT (keys) DO UPDATE ... WHERE the stored row
   is not newer (event time, then created time), so no run moves a value back in time;
4. write the new watermark, and commit. A failure anywhere leaves the old state whole.
A full refresh builds the table anew beside the old one and swaps it in the same
transaction, so readers never see an empty or half-built table.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlglot import exp
from sqlglot.errors import ErrorLevel

from fsql.compile.latest import CREATED_TS_COLUMN, FEATURE_TS, MATERIALIZED_AT, compile_latest_rows
from fsql.engines import OfflineEngine
from fsql.engines.postgres import connect, conninfo, copy_arrow
from fsql.online.tables import (
    STATE_TABLE,
    OnlineTable,
    ensure_schema_sql,
    existing_columns,
    existing_keys,
    migration_sql,
    quoted,
    table_ref,
)
from fsql.spec import Definitions

_STAGE = "_fsql_stage"
_NEW_SUFFIX = "__fsql_new"


@dataclass(frozen=True)
class MaterializeResult:
    view: str
    rows_read: int
    rows_written: int
    start: datetime | None
    end: datetime
    seconds: float
    note: str = ""


@dataclass(frozen=True)
class MaterializeRequest:
    definitions: Definitions
    view: str
    online_url: str
    schema: str
    end: datetime
    start: datetime | None = None  # explicit window start; None: from the watermark
    lateness: timedelta = timedelta(0)
    full_refresh: bool = False
    # When the new rows are at least this share of the stored ones, the table is rebuilt and
    # swapped in rather than updated in place (an update moves every row to a new page).
    rebuild_share: float = 0.3


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
) -> MaterializeResult:
    """Materialize one online view. `before_commit` runs after the upsert (tests inject failures there)."""
    started = time.perf_counter()
    table = OnlineTable(request.schema, request.definitions.feature_views[request.view])
    _ensure_schema(request)
    with connect(request.online_url, autocommit=False) as connection, connection.cursor() as cursor:
        lock_key = f"fsql:{table.schema}.{table.name}"
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (lock_key,))
        watermark, stored_fingerprint = _read_state(cursor, table)
        current = fingerprint(request.definitions, request.view)
        target_name, note = _prepare_table(cursor, table, request.full_refresh)
        start, note = _window_start(request, watermark, note, stored_fingerprint != current)
        if note in ("created", "full refresh"):
            # A table made in this transaction is empty and the rows are one per key: no upsert needed.
            rows_read = rows_written = _load_latest_rows(
                cursor, request, table.ref(target_name), offline, start, file_root
            )
            cursor.execute(table.add_primary_key_sql(target_name))
        else:
            rows_read = _load_latest_rows(
                cursor, request, _create_stage(cursor, table, target_name), offline, start, file_root
            )
            if rows_read and rows_read >= request.rebuild_share * _stored_rows(cursor, table):
                rows_written = _rebuild(cursor, table)
                note = f"{note}; rebuilt and swapped" if note else "rebuilt and swapped"
            else:
                rows_written = _upsert(cursor, table, target_name)
        if target_name != table.name:
            _swap(cursor, table, target_name)
        _write_state(cursor, table, request.end, rows_written, current)
        if before_commit is not None:
            before_commit()
        connection.commit()
    return MaterializeResult(
        request.view, rows_read, rows_written, start, request.end, time.perf_counter() - started, note
    )


def _window_start(
    request: MaterializeRequest, watermark: datetime | None, note: str, changed: bool
) -> tuple[datetime | None, str]:
    """Where the read starts: the watermark less the lateness, unless all rows must be read again."""
    if note in ("created", "full refresh"):
        return None, note  # a new table is filled from the beginning
    if changed and watermark is not None:
        return request.start, "definition changed: re-read all rows"
    if request.start is not None or note:
        return request.start, note
    return (watermark - request.lateness if watermark else None), note


def _ensure_schema(request: MaterializeRequest) -> None:
    # Concurrent CREATE ... IF NOT EXISTS can still collide: serialise schema setup too.
    with connect(request.online_url, autocommit=False) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"fsql:{request.schema}",))
        for statement in ensure_schema_sql(request.schema):
            cursor.execute(statement)
        connection.commit()


def _read_state(cursor: Any, table: OnlineTable) -> tuple[datetime | None, str | None]:
    select = (
        exp.select(exp.column("watermark", quoted=True), exp.column("fingerprint", quoted=True))
        .from_(table_ref(table.schema, STATE_TABLE))
        .where(exp.EQ(this=exp.column("view", quoted=True), expression=exp.Placeholder()))
    )
    cursor.execute(select.sql("postgres"), (table.name,))
    row = cursor.fetchone()
    return (row[0], row[1]) if row else (None, None)


def _prepare_table(cursor: Any, table: OnlineTable, full_refresh: bool) -> tuple[str, str]:
    """Create or migrate the table; returns the table to write into and a note."""
    columns = existing_columns(cursor, table)
    if full_refresh or columns is None:
        name = table.name + _NEW_SUFFIX if columns is not None else table.name
        cursor.execute(exp.Drop(tables=[table.ref(name)], kind="TABLE", exists=True).sql("postgres"))
        cursor.execute(table.create_sql(name, primary_key=False))  # the key is added once the rows are in
        return name, "full refresh" if columns is not None else "created"
    statements = migration_sql(table, columns, existing_keys(cursor, table))
    for statement in statements:
        cursor.execute(statement)
    return table.name, "new columns: re-read all rows" if statements else ""


def _create_stage(cursor: Any, table: OnlineTable, target_name: str) -> exp.Table:
    """A temporary staging table shaped like the target, dropped at commit."""
    stage = exp.Table(this=exp.to_identifier(_STAGE, quoted=True))
    like = table.ref(target_name).sql("postgres")
    cursor.execute(f"CREATE TEMPORARY TABLE {stage.sql('postgres')} (LIKE {like} INCLUDING DEFAULTS) ON COMMIT DROP")
    return stage


def _load_latest_rows(
    cursor: Any,
    request: MaterializeRequest,
    destination: exp.Table,
    offline: OfflineEngine,
    start: datetime | None,
    file_root: Any,
) -> int:
    """Fill `destination` with the latest row per entity in the window (COPY, or INSERT ... SELECT)."""
    params = {"start": start, "end": request.end}
    query = compile_latest_rows(request.definitions, request.view, dialect=offline.dialect, file_root=file_root)
    if offline.dialect == "postgres" and conninfo(offline.url) == conninfo(request.online_url):
        # Offline and online are the same database: the rows never pass through Python.
        columns = exp.Schema(this=destination, expressions=[exp.to_identifier(c, quoted=True) for c in query.columns])
        cursor.execute(f"INSERT INTO {columns.sql('postgres')} {query.sql}", params)
        return int(cursor.rowcount)
    rows = offline.query_arrow(query.sql, params=params, node=request.view)
    copy_arrow(
        cursor,
        destination,
        rows,
        what=f"feature view '{request.view}'",
        keys=query.columns[: len(query.view.join_keys)],
    )
    return rows.num_rows


def _upsert(cursor: Any, table: OnlineTable, target_name: str) -> int:
    """INSERT ... SELECT from the stage, ON CONFLICT (keys) DO UPDATE unless the stored row is newer."""
    columns = [exp.to_identifier(c, quoted=True) for c in (*table.value_columns, MATERIALIZED_AT)]
    select = exp.select(*(exp.column(c, quoted=True) for c in table.value_columns), exp.func("now")).from_(
        exp.Table(this=exp.to_identifier(_STAGE, quoted=True))
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
    target = exp.Schema(this=table.ref(target_name).as_("stored"), expressions=columns)
    insert = exp.Insert(this=target, expression=select, conflict=conflict)
    cursor.execute(insert.sql("postgres", unsupported_level=ErrorLevel.RAISE))
    return int(cursor.rowcount)


def _stored_rows(cursor: Any, table: OnlineTable) -> int:
    cursor.execute(exp.select(exp.func("COUNT", exp.Star())).from_(table.ref()).sql("postgres"))
    return int(cursor.fetchone()[0])


def _rebuild(cursor: Any, table: OnlineTable) -> int:
    """Build the table anew from the stored rows the stage does not beat and the staged rows
    that win (equal versions included), add its key, and swap it in; returns the rows won."""
    new_name = table.name + _NEW_SUFFIX
    cursor.execute(exp.Drop(tables=[table.ref(new_name)], kind="TABLE", exists=True).sql("postgres"))
    cursor.execute(table.create_sql(new_name, primary_key=False))
    stored, staged = exp.to_identifier("stored"), exp.to_identifier("staged")
    stage = exp.Table(this=exp.to_identifier(_STAGE, quoted=True), alias=exp.TableAlias(this=staged.copy()))
    current = table.ref().as_("stored")
    same_keys = exp.and_(*(exp.EQ(this=_column(k, stored), expression=_column(k, staged)) for k in table.keys))
    columns = (*table.value_columns, MATERIALIZED_AT)
    kept = (
        exp.select(*(_column(c, stored) for c in columns))
        .from_(current)
        .join(stage, on=same_keys, join_type="LEFT")
        .where(
            exp.or_(
                exp.Is(this=_column(table.keys[0], staged), expression=exp.Null()),
                exp.GT(this=_version(stored), expression=_version(staged)),
            )
        )
    )
    won = (
        exp.select(*(_column(c, staged) for c in table.value_columns), exp.func("now"))
        .from_(stage.copy())
        .join(current.copy(), on=same_keys.copy(), join_type="LEFT")
        .where(
            exp.or_(
                exp.Is(this=_column(table.keys[0], stored), expression=exp.Null()),
                exp.LTE(this=_version(stored), expression=_version(staged)),
            )
        )
    )
    into = exp.Schema(this=table.ref(new_name), expressions=[exp.to_identifier(c, quoted=True) for c in columns])
    cursor.execute(exp.Insert(this=into.copy(), expression=kept).sql("postgres", unsupported_level=ErrorLevel.RAISE))
    cursor.execute(exp.Insert(this=into, expression=won).sql("postgres", unsupported_level=ErrorLevel.RAISE))
    written = int(cursor.rowcount)
    cursor.execute(table.add_primary_key_sql(new_name))
    _swap(cursor, table, new_name)
    return written


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


def _swap(cursor: Any, table: OnlineTable, new_name: str) -> None:
    schema = quoted(table.schema)
    cursor.execute(exp.Drop(tables=[table.ref()], kind="TABLE").sql("postgres"))
    cursor.execute(f"ALTER TABLE {table.ref(new_name).sql('postgres')} RENAME TO {quoted(table.name)}")
    cursor.execute(f"ALTER INDEX {schema}.{quoted(new_name + '_pkey')} RENAME TO {quoted(table.name + '_pkey')}")


def _write_state(cursor: Any, table: OnlineTable, end: datetime, rows: int, current: str) -> None:
    state = table_ref(table.schema, STATE_TABLE)
    cursor.execute(
        f"INSERT INTO {state.sql('postgres')} (view, watermark, rows, finished_at, fingerprint) "
        "VALUES (%s, %s, %s, now(), %s) ON CONFLICT (view) DO UPDATE SET "
        f"watermark = GREATEST({state.sql('postgres')}.watermark, EXCLUDED.watermark), rows = EXCLUDED.rows, "
        "finished_at = EXCLUDED.finished_at, fingerprint = EXCLUDED.fingerprint",
        (table.name, end, rows, current),
    )

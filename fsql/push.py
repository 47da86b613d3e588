"""Push: rows of a push-enabled view written straight into its online table, and optionally
appended to its offline source, for stream processors (a Kafka or Flink job) and services.

A pushed row has the view's join keys, every feature by name, the source's event-time
column and, when the source declares one, its created-time column (absent: NULL). Rows are
checked against the declared types first, and any mistake is a `CompileError` naming the row
and the column; nothing is written then.

Online, the rows go through the write `fsql build` uses (`fsql.online.materialize`): COPY
into a staging table, then `upsert_staged`, under the view's advisory lock (`lock_view`), so
pushes and builds of one view take turns, and an older row never replaces a newer one
(event time, then created time; equal versions: the later write wins, as in a build). A
pushed row and a later build of the same source row therefore agree.

Offline (`to="online_and_offline"`), the rows are appended as one new parquet file to a
file source whose path is a glob in a folder (`data/stats/*.parquet`), so the next training
set reads them. Table and SQL sources, single files and CSV are refused: fsql does not write
into warehouses or rewrite a file others may be reading. A full refresh rebuilds the online
table from the offline source alone, so rows pushed online only are gone after it; rows also
pushed offline come back.

Must not import: `fsql.cli`, `fsql.server`.
"""

from __future__ import annotations

import enum
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlglot import exp

from fsql.compile.latest import CREATED_TS_COLUMN, FEATURE_TS
from fsql.datatypes import out_of_range, type_label
from fsql.engines.postgres import copy_arrow
from fsql.errors import CompileError, did_you_mean
from fsql.online.materialize import create_stage, create_table, lock_view, upsert_staged
from fsql.online.tables import OnlineTable, ensure_schema, existing_columns, existing_keys, missing_columns
from fsql.spec import Definitions, FeatureView, Source, SourceKind


class PushTo(enum.Enum):
    ONLINE = "online"
    ONLINE_AND_OFFLINE = "online_and_offline"


@dataclass(frozen=True)
class PushResult:
    view: str
    rows: int  # rows received
    written: int  # rows the online upsert wrote (a row older than the stored one is not)
    offline_file: Path | None = None  # the parquet file appended to the source, if any


_ARROW_TYPES: dict[exp.DType, pa.DataType] = {
    exp.DType.BIGINT: pa.int64(),
    exp.DType.INT: pa.int32(),
    exp.DType.DOUBLE: pa.float64(),
    exp.DType.FLOAT: pa.float32(),
    exp.DType.TEXT: pa.string(),
    exp.DType.BOOLEAN: pa.bool_(),
    exp.DType.DATE: pa.date32(),
    exp.DType.TIMESTAMP: pa.timestamp("us"),
    exp.DType.TIMESTAMPTZ: pa.timestamp("us", tz="UTC"),
}


def push(
    connection: Any,
    *,
    definitions: Definitions,
    schema: str,
    view: str,
    rows: Any,
    to: PushTo | str = PushTo.ONLINE,
    root: Path | None = None,
) -> PushResult:
    """Check `rows` and write them into `view`'s online table (and its offline source).

    Args:
        connection: a psycopg connection to the online store; the write is one transaction.
        rows: a list of mappings, a mapping of column lists (Feast's `df`), a pyarrow Table or a
            pandas DataFrame.
        to: "online", or "online_and_offline" to append them to the source as well.
        root: the project directory, which relative source paths are under (offline only).

    Raises:
        CompileError: the view cannot take pushes, or a row does not fit it (nothing is written).
    """
    target = _target(to)
    pushed = push_view(definitions, view)
    source = definitions.sources[pushed.source]
    folder = offline_folder(pushed, source, root) if target is PushTo.ONLINE_AND_OFFLINE else None
    records = as_records(rows, view)
    online = online_rows(pushed, source, records)
    staged = None if folder is None else _stage_offline(folder, source, pushed, records)
    try:
        written = write_online(connection, schema=schema, view=pushed, rows=online)
        if staged is None:
            return PushResult(view, len(records), written)
        final = staged.with_name(staged.name.removeprefix(".").removesuffix(".tmp"))
        os.replace(staged, final)
        staged = None
        return PushResult(view, len(records), written, final)
    finally:
        if staged is not None:
            staged.unlink(missing_ok=True)


def _target(to: PushTo | str) -> PushTo:
    try:
        return PushTo(to)
    except ValueError:
        choices = ", ".join(repr(t.value) for t in PushTo)
        raise CompileError(f"push: 'to' must be one of {choices}, not {to!r}") from None


def push_view(definitions: Definitions, name: str) -> FeatureView:
    """The view named `name`, if it takes pushes."""
    view = definitions.feature_views.get(name) if isinstance(name, str) else None
    if view is None:
        known = did_you_mean(str(name), list(definitions.feature_views))
        raise CompileError(f"push: unknown feature view '{name}'.{known}")
    if not view.push:
        where = f" ({view.where})" if view.where.line else ""
        raise CompileError(
            f"push: feature view '{name}'{where} does not take pushes: add 'push: true' to it "
            f"(a latest-value view with 'online: true')"
        )
    return view


def offline_folder(view: FeatureView, source: Source, root: Path | None) -> Path:
    """The folder an offline push appends a parquet file to, or a CompileError saying why not."""
    refuse = f"push to offline: feature view '{view.name}' reads source '{source.name}'"
    folder_glob = "a file source whose path is a glob of parquet files in a folder, e.g. 'path: data/stats/*.parquet'"
    if source.kind is not SourceKind.FILE:
        raise CompileError(
            f"{refuse}, a {source.kind.value} source, and fsql appends pushed rows only to {folder_glob}: "
            f"push with to='online' and write the rows to the source's table yourself"
        )
    location = Path(source.location)
    if source.file_format != "parquet" or "*" not in location.name or any("*" in p for p in location.parent.parts):
        raise CompileError(
            f"{refuse}, which reads '{source.location}'; offline pushes go to {folder_glob}, "
            f"where each push adds one file and no file is rewritten"
        )
    computed = [f.name for f in view.features if not f.is_column]
    if computed:
        raise CompileError(
            f"{refuse}: feature(s) {', '.join(computed)} are computed with 'expr', so a pushed value has no source "
            f"column to go to; push online only, or make each feature its source column"
        )
    untyped = [c.name for c in source.columns if c.type is None]
    if not source.columns or untyped:
        raise CompileError(f"{refuse}: declare the source's 'columns' with their types, so pushed files match it")
    folder = location.parent if location.is_absolute() or root is None else root / location.parent
    if not folder.is_dir():
        raise CompileError(f"{refuse}: folder {folder} does not exist: create it")
    return folder


def as_records(rows: Any, view: str) -> list[dict[str, Any]]:
    """Rows as a list of dicts, from any of the shapes `push` accepts."""
    if isinstance(rows, pa.RecordBatchReader):
        rows = rows.read_all()
    if isinstance(rows, pa.Table):
        return rows.to_pylist()
    if type(rows).__module__.startswith("pandas"):
        return pa.Table.from_pandas(rows, preserve_index=False).to_pylist()
    if isinstance(rows, Mapping):
        return _columns_to_records(rows, view)
    if isinstance(rows, Sequence) and not isinstance(rows, str | bytes):
        bad = next((i for i, row in enumerate(rows) if not isinstance(row, Mapping)), None)
        if bad is not None:
            raise CompileError(f"push to '{view}': row {bad} is {type(rows[bad]).__name__}, not an object of columns")
        return [dict(row) for row in rows]
    raise CompileError(
        f"push to '{view}': rows must be a list of objects, an object of column lists, a pyarrow Table or a "
        f"pandas DataFrame, not {type(rows).__name__}"
    )


def _columns_to_records(columns: Mapping[str, Any], view: str) -> list[dict[str, Any]]:
    lengths = {}
    for name, values in columns.items():
        if not isinstance(values, list):
            raise CompileError(f"push to '{view}': column '{name}' must be a list of values")
        lengths[name] = len(values)
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"'{n}' has {size}" for n, size in lengths.items())
        raise CompileError(f"push to '{view}': every column needs as many values ({shown})")
    count = next(iter(lengths.values()), 0)
    return [{name: columns[name][i] for name in columns} for i in range(count)]


def _columns(view: FeatureView, source: Source) -> dict[str, tuple[exp.DType, str]]:
    """What a pushed row holds: its column name -> (type, the online column it fills)."""
    columns: dict[str, tuple[exp.DType, str]] = {}
    for key in view.join_keys:
        assert key.type is not None, "join keys always declare a type"
        columns[key.name] = (key.type, key.name)
    columns.update({f.name: (f.type, f.name) for f in view.features})
    columns[source.timestamp] = (exp.DType.TIMESTAMPTZ, FEATURE_TS)
    if source.created_timestamp:
        columns[source.created_timestamp] = (exp.DType.TIMESTAMPTZ, CREATED_TS_COLUMN)
    return columns


def online_rows(view: FeatureView, source: Source, records: list[dict[str, Any]]) -> pa.Table:
    """The rows checked and typed, one per entity (its newest version), as the online table's columns."""
    if not records:
        raise CompileError(f"push to '{view.name}': no rows")
    columns = _columns(view, source)
    required = [k.name for k in view.join_keys] + [f.name for f in view.features] + [source.timestamp]
    not_null = {*(k.name for k in view.join_keys), source.timestamp}
    checked: dict[tuple[Any, ...], dict[str, Any]] = {}
    for number, record in enumerate(records):
        unknown = [name for name in record if name not in columns]
        if unknown:
            hint = did_you_mean(unknown[0], list(columns))
            raise CompileError(
                f"push to '{view.name}': row {number} has unknown column '{unknown[0]}' (a row holds "
                f"{', '.join(columns)}).{hint}"
            )
        missing = next((name for name in required if name not in record), None)
        if missing is not None:
            role = "key" if missing in not_null and missing != source.timestamp else "column"
            raise CompileError(f"push to '{view.name}': row {number} lacks {role} '{missing}'")
        row = {}
        for name, (type_, online) in columns.items():
            value = record.get(name)
            if value is None and name in not_null:
                raise CompileError(f"push to '{view.name}': row {number}: '{name}' is null; it must have a value")
            row[online] = _checked(value, type_, view.name, number, name)
        key = tuple(row[k.name] for k in view.join_keys)
        kept = checked.get(key)
        if kept is None or _version(kept) <= _version(row):  # the newest per key; equal: the later row
            checked[key] = row
    table = OnlineTable("push", view)
    schema = pa.schema([(online, _ARROW_TYPES[type_]) for type_, online in columns.values()])
    data = {online: [row.get(online) for row in checked.values()] for online in schema.names}
    ordered = pa.table(data, schema=schema)
    return ordered.select([c for c in table.value_columns if c in ordered.column_names])


_LOWEST = datetime.min.replace(tzinfo=UTC)


def _version(row: dict[str, Any]) -> tuple[datetime, datetime]:
    return row[FEATURE_TS], row.get(CREATED_TS_COLUMN) or _LOWEST


def _checked(value: Any, type_: exp.DType, view: str, number: int, name: str) -> Any:
    """`value` as `type_`, or a CompileError naming the row and the column."""
    if value is None:
        return None

    def wrong(detail: str = "") -> CompileError:
        shown = f"{value!r}"[:40]
        return CompileError(
            f"push to '{view}': row {number}: '{name}' is {type_label(type_)}, not {type(value).__name__} "
            f"({shown}){detail}"
        )

    if type_ in (exp.DType.BIGINT, exp.DType.INT):
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong()
        bounds = out_of_range(value, type_)
        if bounds is not None:
            raise wrong(f": out of that range ({bounds[0]} to {bounds[1]})")
        return value
    if type_ in (exp.DType.DOUBLE, exp.DType.FLOAT):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise wrong()
        return float(value)
    if type_ is exp.DType.TEXT:
        if not isinstance(value, str):
            raise wrong()
        if "\x00" in value:
            raise CompileError(f"push to '{view}': row {number}: '{name}' holds a NUL byte, which Postgres text cannot")
        return value
    if type_ is exp.DType.BOOLEAN:
        if not isinstance(value, bool):
            raise wrong()
        return value
    if type_ is exp.DType.DATE:
        return _date(value, wrong)
    moment = _instant(value, wrong)
    return moment.replace(tzinfo=None) if type_ is exp.DType.TIMESTAMP else moment


def _date(value: Any, wrong: Any) -> date:
    if isinstance(value, datetime) or not isinstance(value, date | str):
        raise wrong()
    try:
        return value if isinstance(value, date) else date.fromisoformat(value)
    except ValueError:
        raise wrong(": write a date as YYYY-MM-DD") from None


def _instant(value: Any, wrong: Any) -> datetime:
    """A UTC instant from a datetime or an ISO 8601 string (naive: UTC)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise wrong(": write a time in ISO 8601, e.g. 2024-03-01T12:00:00Z") from None
    elif not isinstance(value, datetime):
        if type(value).__name__ == "Timestamp" and hasattr(value, "to_pydatetime"):  # pandas
            value = value.to_pydatetime()
        else:
            raise wrong()
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def write_online(connection: Any, *, schema: str, view: FeatureView, rows: pa.Table) -> int:
    """Upsert checked rows into the view's online table in one transaction, under its lock.

    A push before the first build creates the table (and the schema); a table that lacks a
    column of the definition must be built first. Returns the rows written.
    """
    table = OnlineTable(schema, view)
    with connection.transaction(), connection.cursor() as cursor:
        # COPY sends times as naive UTC text (`copy_arrow`); a pooled session may have another zone.
        cursor.execute("SET LOCAL TIME ZONE 'UTC'")
        lock_view(cursor, table)
        columns = existing_columns(cursor, table)
        if columns is None:
            ensure_schema(cursor, schema)
            create_table(cursor, table)
        elif missing_columns(table, columns, existing_keys(cursor, table)):
            raise CompileError(
                f"push to '{view.name}': its online table {schema}.{view.name} lacks columns the definition has: "
                f"run `fsql build --select {view.name}` first"
            )
        stage = create_stage(cursor, table)
        keys = [k.name for k in view.join_keys]
        copy_arrow(cursor, stage, rows, what=f"rows pushed to '{view.name}'", keys=keys)
        written = upsert_staged(cursor, table)
        cursor.execute(exp.Drop(tables=[stage], kind="TABLE").sql("postgres"))
    return written


def _stage_offline(folder: Path, source: Source, view: FeatureView, records: list[dict[str, Any]]) -> Path:
    """Write the rows as the source's columns to a hidden file in `folder`; `push` renames it
    into the glob once the online write has committed."""
    import pyarrow.parquet as pq

    types = {c.name: c.type for c in source.columns}
    names = _columns(view, source)
    absent = [name for name in names if name not in types]
    if absent:
        raise CompileError(
            f"push to offline: source '{source.name}' declares no column(s) {', '.join(absent)} that view "
            f"'{view.name}' reads: add them to its 'columns'"
        )
    data = {}
    for column in source.columns:
        assert column.type is not None, "checked by offline_folder"
        values = [
            None if column.name not in names else _checked(r.get(column.name), column.type, view.name, i, column.name)
            for i, r in enumerate(records)
        ]
        data[column.name] = pa.array(values, _ARROW_TYPES[column.type])
    name = f".push-{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.parquet.tmp"
    path = folder / name
    pq.write_table(pa.table(data), path)
    return path

"""A large run's winners, decided from versions: which stored rows a run keeps, and which rows read lose.

A large run (a full update, new columns) COPYs the rows read straight into a table beside the
live one, then completes it. It must not go back in time: a row read replaces a stored row
only when its version (feature_ts, then created_ts, NULL lowest) is not older (equal: the row
read wins), and the stored rows no row read replaces are kept. Comparing every stored row with
every row read in Postgres takes two hash joins of the whole tables; here only versions move:

1. `ReadVersions` keeps the keys and versions of the rows read as they stream into the COPY
   (those columns' arrow buffers, not a copy), and says when the run has become large;
2. `StoredVersions` then COPYs the stored keys and versions out, on a connection of its own in
   a thread, while the COPY of the rows read goes on. The view's advisory lock, held by the
   run's transaction for its whole length, keeps every other writer (builds, pushes) out, so
   that connection reads the table the transaction would;
3. `kept_keys` compares the two in DuckDB: the keys of the stored rows to keep, and which of
   them beat a row read;
4. `complete_beside` deletes the rows read that lost and adds the stored rows kept (none in a
   full update where every entity is newer), then the key.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp
from sqlglot.errors import ErrorLevel

from fsql.compile.latest import CREATED_TS_COLUMN, FEATURE_TS, MATERIALIZED_AT
from fsql.engines.postgres import arrow_schema, connect, copy_arrow, create_table_sql, read_copied_csv
from fsql.errors import ExecutionError
from fsql.online.tables import OnlineTable, temporary_table

BEATEN = "_fsql_beaten"  # in `kept_keys`: the stored row beats the row read of its key (which is deleted)
KEPT_TABLE = "_fsql_kept"  # a temporary table: the kept keys, COPYed in to join the live table on
_READ, _STORED = "_fsql_read", "_fsql_stored"
_BLOCK_BYTES = 8 << 20  # CSV of the stored versions parsed into arrow this many bytes at a time
# The CSV is read by `read_copied_csv`: ISO times and exact floats, whatever the server's defaults.
# The reader waits at most LOCK_WAIT for its lock on the live table. The run's transaction already
# reads that table, so a wait means another session's exclusive lock (ALTER TABLE, VACUUM FULL) is
# queued behind the run, and the reader behind it: a wait the server cannot see as a deadlock, since
# the run waits for the reader in Python. The run then decides in Postgres instead (`Locked`).
LOCK_WAIT = "1s"
_SESSION = f"SET DateStyle = 'ISO, YMD'; SET extra_float_digits = 3; SET lock_timeout = '{LOCK_WAIT}'"


class ReadVersions:
    """The keys and versions of the rows read, kept as they stream by, and a call of `on_large`
    once `large_from` rows (at least one) have passed."""

    def __init__(self, table: OnlineTable, *, large_from: float, on_large: Callable[[], None]) -> None:
        self.columns = version_columns(table)
        self.large_from = large_from
        self.on_large = on_large
        self.rows = 0
        self.large = False
        self._parts: list[pa.RecordBatch] = []
        self._schema: pa.Schema | None = None

    def stream(self, reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
        """`reader`'s batches, unchanged; their keys and versions are kept on the way."""
        self._schema = pa.schema([reader.schema.field(c) for c in self.columns])
        return pa.RecordBatchReader.from_batches(reader.schema, self._kept(reader))

    def _kept(self, reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
        for batch in reader:
            if batch.num_rows:
                self._parts.append(batch.select(list(self.columns)))
                self.rows += batch.num_rows
                if not self.large and self.rows >= self.large_from:
                    self.large = True
                    self.on_large()
            yield batch

    def table(self) -> pa.Table:
        assert self._schema is not None, "stream() first"
        return pa.Table.from_batches(self._parts, schema=self._schema)


class CannotDecide(Exception):
    """The versions cannot be compared here: the run decides in Postgres instead."""


class Locked(CannotDecide):
    """The reader of the stored versions could not take its lock on the live table in time."""


class StoredVersions:
    """The stored keys and versions of an online table, COPYed out in a thread once started.

    A context manager: leaving it stops a COPY still running (the server is told to cancel it)
    and waits for the thread, so no reader outlives the run, whatever happened.
    """

    def __init__(self, online_url: str, table: OnlineTable) -> None:
        self._url = online_url
        self._table = table
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._result: pa.Table | None = None
        self._error: BaseException | None = None

    def __enter__(self) -> StoredVersions:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def start(self) -> None:
        if self._thread is None:
            # A daemon: a reader stuck on a dead server never keeps the process alive.
            name = f"fsql stored versions {self._table.name}"
            self._thread = threading.Thread(target=self._read, name=name, daemon=True)
            self._thread.start()

    def result(self) -> pa.Table:
        """The stored versions (waits for the COPY to end; its error, if any, is raised here).

        Raises:
            Locked: another session's exclusive lock on the live table is queued (see `LOCK_WAIT`).
            ExecutionError: the read failed; the message names the table.
        """
        self.start()
        assert self._thread is not None
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def _read(self) -> None:
        from psycopg import errors

        try:
            # One transaction: the lock its first statement takes holds through the COPY (a second
            # statement would take it again, and could queue behind an exclusive lock asked meanwhile).
            with connect(self._url, autocommit=False) as connection:
                try:
                    with connection.cursor() as cursor:
                        cursor.execute(_SESSION)
                        self._result = _copy_out(cursor, stored_versions_sql(self._table), self._stop)
                except BaseException:
                    # A COPY may still be running: closing the connection ends it on the server,
                    # where psycopg's rollback on leaving would fail (and log) on a busy connection.
                    connection.close()
                    raise
        except _Stopped:
            pass
        except errors.LockNotAvailable as exc:
            self._error = Locked(str(exc))
        except (errors.Error, ExecutionError) as exc:  # handed to the run's thread by result()
            self._error = ExecutionError(
                f"reading the stored versions of online table {self._table.ref().sql('postgres')} "
                f"(feature view '{self._table.name}') failed: {exc}"
            )
        except BaseException as exc:
            self._error = exc


class _Stopped(Exception):
    """Raised inside the COPY to leave it early (the connection is then closed, which ends it)."""


def _copy_out(cursor: Any, select: exp.Select, stop: threading.Event) -> pa.Table:
    """The rows of `select` by COPY ... TO STDOUT (CSV), parsed into arrow a block at a time."""
    cursor.execute(select.limit(0).sql("postgres"))
    schema = arrow_schema(cursor.description)
    parts: list[pa.Table] = []
    block = bytearray()
    for row in _copy_rows(cursor.connection, f"COPY ({select.sql('postgres')}) TO STDOUT WITH (FORMAT csv)"):
        block += row
        if len(block) >= _BLOCK_BYTES:
            if stop.is_set():
                raise _Stopped  # the caller closes the connection, which ends the COPY on the server
            parts.append(read_copied_csv([bytes(block)], schema))
            block.clear()
    if block:
        parts.append(read_copied_csv([bytes(block)], schema))
    return pa.concat_tables(parts) if parts else schema.empty_table()


def _copy_rows(connection: Any, statement: str) -> Iterator[bytes]:
    """The rows of a COPY ... TO STDOUT as libpq hands them over. psycopg's `Copy` costs about
    0.5 us more per row (1M stored versions: 1.0-1.4 s through it, 0.45-0.8 s here); libpq's
    blocking read releases the GIL, so the run's own COPY goes on meanwhile."""
    from psycopg import pq

    pgconn = connection.pgconn
    pgconn.send_query(statement.encode())
    _check(pgconn.get_result(), pq.ExecStatus.COPY_OUT)
    while True:
        size, data = pgconn.get_copy_data(0)
        if size <= 0:  # -1: done, -2: an error, in the result below
            break
        yield data
    while (result := pgconn.get_result()) is not None:
        _check(result, pq.ExecStatus.COMMAND_OK)


def _check(result: Any, expected: Any) -> None:
    from psycopg import pq

    if result is None or result.status != expected:
        message = (result.error_message or b"").decode(errors="replace").strip() if result is not None else ""
        if result is not None and result.error_field(pq.DiagnosticField.SQLSTATE) == _LOCK_NOT_AVAILABLE:
            raise Locked(message)
        raise ExecutionError(message or "no result")


_LOCK_NOT_AVAILABLE = b"55P03"


def version_columns(table: OnlineTable) -> tuple[str, ...]:
    return (*table.keys, FEATURE_TS, CREATED_TS_COLUMN)


def stored_versions_sql(table: OnlineTable) -> exp.Select:
    return exp.select(*(exp.column(c, quoted=True) for c in version_columns(table))).from_(table.ref())


def kept_keys(table: OnlineTable, read: pa.Table, stored: pa.Table) -> pa.Table:
    """The keys of the stored rows to keep, with `BEATEN` true where the stored row beats the row
    read of its key, false where no row of its key was read. Compared in an in-memory DuckDB."""
    connection = _comparing_cursor()
    try:
        connection.execute("SET TimeZone = 'UTC'")
        connection.register(_READ, as_stored(read, stored.schema, table.keys))
        connection.register(_STORED, stored)
        return connection.sql(kept_keys_sql(table).sql("duckdb", unsupported_level=ErrorLevel.RAISE)).to_arrow_table()
    finally:
        connection.close()


def as_stored(read: pa.Table, stored: pa.Schema, keys: Sequence[str]) -> pa.Table:
    """The rows read with each key of the type it is stored as, converted as the COPY does: through
    its text, so that a float32 0.1 is the double 0.1 the table holds, not 0.10000000149011612.

    Raises:
        CannotDecide: a key arrow cannot convert without losing what Postgres would round (an
            integer past 2^53 as a double, a nanosecond time as microseconds).

    Example:
        >>> read = pa.table({"k": pa.array([0.1], pa.float32())})
        >>> as_stored(read, pa.schema([("k", pa.float64())]), ["k"]).column("k").to_pylist()
        [0.1]
    """
    for key in keys:
        want = stored.field(key).type
        column = read.column(key)
        if column.type != want:
            through = pc.cast(column, pa.string()) if pa.types.is_floating(column.type) else column
            try:
                converted = pc.cast(through, want)  # safe: refuses what Postgres would round instead
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise CannotDecide(f"key '{key}' ({column.type}) as stored ({want}): {exc}") from None
            read = read.set_column(read.schema.get_field_index(key), key, converted)
    return read


_comparing: Any = None  # one in-memory DuckDB for the process; each comparison on a cursor of its own
_comparing_lock = threading.Lock()


def _comparing_cursor() -> Any:
    """A connection of its own (its registered tables its own) to the process's in-memory DuckDB:
    a new database per comparison cost 20-27 ms, a cursor ~1 ms (a warm full update of 20k rows
    compares in ~4 ms)."""
    global _comparing
    import duckdb

    with _comparing_lock:
        if _comparing is None:
            _comparing = duckdb.connect()
        return _comparing.cursor()


def kept_keys_sql(table: OnlineTable) -> exp.Select:
    """SELECT stored keys, <read row exists> FROM stored LEFT JOIN read WHERE none was read OR stored beats it.

    Example:
        >>> from fsql.compile import example_definitions
        >>> view = example_definitions().feature_views["driver_stats"]
        >>> print(kept_keys_sql(OnlineTable("online", view)).sql("duckdb"))  # doctest: +NORMALIZE_WHITESPACE
        SELECT "stored"."driver_id", NOT "read"."driver_id" IS NULL AS "_fsql_beaten"
        FROM "_fsql_stored" AS "stored" LEFT JOIN "_fsql_read" AS "read" ON "stored"."driver_id" = "read"."driver_id"
        WHERE "read"."driver_id" IS NULL OR ("stored"."feature_ts" > "read"."feature_ts"
        OR ("stored"."feature_ts" = "read"."feature_ts" AND COALESCE("stored"."created_ts",
        CAST('-infinity' AS TIMESTAMPTZ)) > COALESCE("read"."created_ts", CAST('-infinity' AS TIMESTAMPTZ))))
    """
    stored, read = exp.to_identifier("stored", quoted=True), exp.to_identifier("read", quoted=True)
    not_read = exp.Is(this=_column(table.keys[0], read), expression=exp.Null())
    return (
        exp.select(
            *(_column(k, stored) for k in table.keys), exp.alias_(exp.not_(not_read.copy()), BEATEN, quoted=True)
        )
        .from_(exp.Table(this=exp.to_identifier(_STORED, quoted=True), alias=exp.TableAlias(this=stored.copy())))
        .join(
            exp.Table(this=exp.to_identifier(_READ, quoted=True), alias=exp.TableAlias(this=read.copy())),
            on=_same_keys(table.keys, stored, read),
            join_type="LEFT",
        )
        .where(exp.or_(not_read, exp.paren(beats(stored, read))))
    )


def beats(one: exp.Identifier, other: exp.Identifier) -> exp.Expr:
    """Whether row `one`'s version is newer than row `other`'s: event time, then created time
    with NULL lowest. Written out rather than as a row comparison, the same in every dialect."""
    created = [
        exp.func(
            "COALESCE", _column(CREATED_TS_COLUMN, alias), exp.cast(exp.Literal.string("-infinity"), "TIMESTAMPTZ")
        )
        for alias in (one, other)
    ]
    event = [_column(FEATURE_TS, alias) for alias in (one, other)]
    later = exp.GT(this=event[0], expression=event[1])
    tie = exp.and_(
        exp.EQ(this=event[0].copy(), expression=event[1].copy()), exp.GT(this=created[0], expression=created[1])
    )
    return exp.or_(later, tie)


def complete_beside(
    cursor: Any, table: OnlineTable, stored_columns: dict[str, str], kept: pa.Table, *, rows_read: int
) -> int:
    """Complete the table beside the live one, which holds the rows read: delete those a stored
    row beats, add the stored rows kept (a column the live table lacks is NULL in them), add its
    key; returns the rows won. A full update where every row read wins does nothing but the key."""
    beaten = 0
    if kept.num_rows:
        beaten = int(pc.sum(kept.column(BEATEN)).as_py() or 0)
        kept_table = temporary_table(KEPT_TABLE)
        cursor.execute(exp.Drop(tables=[kept_table.copy()], kind="TABLE", exists=True).sql("postgres"))
        cursor.execute(create_table_sql(kept_table.copy(), kept.schema, temporary=True))
        copy_arrow(cursor, kept_table.copy(), kept)
        if beaten:
            cursor.execute(_delete_beaten_sql(table, kept_table))
        cursor.execute(_insert_kept_sql(table, stored_columns, kept_table))
        cursor.execute(exp.Drop(tables=[kept_table], kind="TABLE").sql("postgres"))
    cursor.execute(table.add_primary_key_sql(table.new_name))
    return rows_read - beaten


def _delete_beaten_sql(table: OnlineTable, kept_table: exp.Table) -> str:
    staged, kept = exp.to_identifier("staged", quoted=True), exp.to_identifier("kept", quoted=True)
    delete = exp.Delete(
        this=table.ref(table.new_name).as_("staged"),
        using=[kept_table.copy().as_("kept")],
        where=exp.Where(this=exp.and_(_same_keys(table.keys, staged, kept), _column(BEATEN, kept))),
    )
    return delete.sql("postgres", unsupported_level=ErrorLevel.RAISE)


def stored_values(table: OnlineTable, stored_columns: dict[str, str], stored: exp.Identifier) -> list[exp.Expr]:
    """A stored row's values for every column of the table beside (and materialized_at), in
    order: a column the live table lacks (a new feature) is NULL of its type."""
    types = table.expected_types()
    return [
        _column(c, stored)
        if c in stored_columns
        else exp.cast(exp.Null(), exp.DataType.build(types[c], dialect="postgres"))
        for c in (*table.value_columns, MATERIALIZED_AT)
    ]


def _insert_kept_sql(table: OnlineTable, stored_columns: dict[str, str], kept_table: exp.Table) -> str:
    stored, kept = exp.to_identifier("stored", quoted=True), exp.to_identifier("kept", quoted=True)
    columns = (*table.value_columns, MATERIALIZED_AT)
    values = stored_values(table, stored_columns, stored)
    select = (
        exp.select(*values)
        .from_(table.ref().as_("stored"))
        .join(kept_table.copy().as_("kept"), on=_same_keys(table.keys, stored, kept))
    )
    into = exp.Schema(this=table.ref(table.new_name), expressions=[exp.to_identifier(c, quoted=True) for c in columns])
    return exp.Insert(this=into, expression=select).sql("postgres", unsupported_level=ErrorLevel.RAISE)


def _same_keys(keys: Sequence[str], one: exp.Identifier, other: exp.Identifier) -> exp.Expr:
    return exp.and_(*(exp.EQ(this=_column(k, one), expression=_column(k, other)) for k in keys))


def _column(name: str, table: exp.Identifier) -> exp.Column:
    return exp.Column(this=exp.to_identifier(name, quoted=True), table=table.copy())

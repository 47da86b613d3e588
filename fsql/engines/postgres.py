"""The Postgres engine: runs compiled SQL, returns arrow; moves arrow in with COPY.

Sessions run with TimeZone 'UTC'. The helpers here (`conninfo`, `copy_arrow`,
`arrow_schema`, `read_copied_csv`, `postgres_type`) are shared with the online store.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from sqlalchemy.engine import make_url
from sqlglot import exp

from fsql.engines import ROWS_PER_BATCH, WholeResultBatches, batches_of
from fsql.errors import ExecutionError, ProjectError


def conninfo(url: str) -> str:
    """A libpq connection string from a SQLAlchemy URL (postgresql+psycopg://... or postgresql://...)."""
    parsed = make_url(url)
    if parsed.get_backend_name() not in ("postgresql", "postgres"):
        raise ProjectError(f"'{parsed.render_as_string()}' is not a Postgres URL (postgresql+psycopg://user@host/db)")
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def connect(url: str, *, autocommit: bool = True) -> Any:
    import psycopg

    try:
        connection = psycopg.connect(conninfo(url), autocommit=autocommit)
    except psycopg.OperationalError as exc:
        raise ProjectError(f"cannot connect to Postgres at {make_url(url).render_as_string()}: {exc}") from None
    connection.execute("SET TIME ZONE 'UTC'")
    return connection


def probe(url: str, *, what: str) -> None:
    """Connect once and close: an unreachable server is one clear error before any work starts.

    Args:
        url: the server's SQLAlchemy URL.
        what: what the server is, for the message ("the online store of target 'prod'").

    Raises:
        ProjectError: the server cannot be reached or refuses the login.
    """
    connect_checked(url, what=what).close()


def connect_checked(url: str, *, what: str, autocommit: bool = True) -> Any:
    """A connection to `url`, or the one clear error `probe` gives (a 10 s connect timeout
    unless the URL sets one); unlike `connect`, the session's settings are left to the caller.

    Raises:
        ProjectError: the server cannot be reached or refuses the login.
    """
    import psycopg

    info = conninfo(url)
    timeout: dict[str, Any] = {} if "connect_timeout" in info else {"connect_timeout": 10}
    try:
        return psycopg.connect(info, autocommit=autocommit, **timeout)
    except psycopg.OperationalError as exc:
        detail = " ".join(str(exc).split())
        raise ProjectError(
            f"cannot connect to {what} at {make_url(url).render_as_string()} ({detail}): start the server, "
            f"or fix the URL in profiles.yml"
        ) from None


_ARROW_TO_POSTGRES = (
    (pa.types.is_int64, "BIGINT"),
    (pa.types.is_integer, "INTEGER"),
    (pa.types.is_float32, "REAL"),
    (pa.types.is_floating, "DOUBLE PRECISION"),
    (pa.types.is_boolean, "BOOLEAN"),
    (pa.types.is_date, "DATE"),
    (pa.types.is_decimal, "NUMERIC"),
)


def postgres_type(arrow_type: pa.DataType) -> exp.DataType:
    """The Postgres column type for an arrow type (text for anything unusual)."""
    if pa.types.is_timestamp(arrow_type):
        return exp.DataType.build("TIMESTAMPTZ" if arrow_type.tz else "TIMESTAMP")
    for matches, name in _ARROW_TO_POSTGRES:
        if matches(arrow_type):
            return exp.DataType.build(name, dialect="postgres")
    return exp.DataType.build("TEXT")


def create_table_sql(table: exp.Table, schema: pa.Schema, *, temporary: bool = False) -> str:
    columns = [
        exp.ColumnDef(this=exp.to_identifier(field.name, quoted=True), kind=postgres_type(field.type))
        for field in schema
    ]
    properties = exp.Properties(expressions=[exp.TemporaryProperty()]) if temporary else None
    create = exp.Create(this=exp.Schema(this=table, expressions=columns), kind="TABLE", properties=properties)
    return create.sql("postgres")


def copy_arrow(
    cursor: Any,
    table: exp.Table,
    data: pa.Table | pa.RecordBatchReader,
    *,
    what: str | None = None,
    keys: Sequence[str] = (),
) -> int:
    """Bulk-load arrow rows into an existing table with one COPY ... FROM STDIN (CSV); returns
    the rows written.

    `data` is a table or a stream of batches; either goes through batch by batch (at most
    `ROWS_PER_BATCH` rows each), so only one batch's CSV text is ever in memory. CSV keeps
    NULL (an unquoted empty field) apart from the empty string (quoted). Zoned timestamps
    travel as naive UTC text, which the session (TimeZone UTC, see `connect`) reads back as
    the same instants: pyarrow writes zoned ones about 7x slower.

    Raises:
        ExecutionError: a text column holds a NUL byte, which Postgres text cannot store;
            the message names `what` (default: the table) and the first rows by `keys`. A
            table is checked before the COPY starts; a stream batch by batch, and the COPY
            is aborted (the caller's transaction must roll back: nothing is written).
    """
    what = what or f"table {table.sql('postgres')}"
    if isinstance(data, pa.Table):
        if data.num_rows == 0:
            return 0  # (and an empty column's combine_chunks() makes pyarrow import pandas, 0.35 s)
        data = _array_literals(data)
        refuse_nul_bytes(data, what=what, keys=keys)
        data = batches_of(data, ROWS_PER_BATCH)
    columns = exp.Schema(this=table, expressions=[exp.to_identifier(n, quoted=True) for n in data.schema.names])
    statement = f"COPY {columns.sql('postgres')} FROM STDIN WITH (FORMAT csv)"
    options = pacsv.WriteOptions(include_header=False)
    written = 0
    with cursor.copy(statement) as copy:
        for batch in data:
            if batch.num_rows == 0:
                continue  # (see above: nothing to write, and no pandas import)
            rows = _array_literals(pa.Table.from_batches([batch]))
            if _holds_nul(rows):
                _refuse_stream(rows, data, what=what, keys=keys)
            buffer = io.BytesIO()
            pacsv.write_csv(_utc_naive(rows), buffer, options)
            copy.write(buffer.getbuffer())
            written += rows.num_rows
    return written


def _text_columns(data: pa.Table) -> list[str]:
    return [f.name for f in data.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]


def _holds_nul(data: pa.Table) -> bool:
    return any(pc.any(pc.match_substring(data.column(name), "\x00")).as_py() for name in _text_columns(data))


def _refuse_stream(rows: pa.Table, rest: pa.RecordBatchReader, *, what: str, keys: Sequence[str]) -> None:
    """Raise the NUL-byte error for a whole stream: the rows of this batch and the rest that hold
    one are gathered (only those), so the count and the first rows named are the stream's."""
    names = _text_columns(rows)
    held = [_only_nul(rows, names)]
    for batch in rest:
        if batch.num_rows:
            held.append(_only_nul(_array_literals(pa.Table.from_batches([batch])), names))
    refuse_nul_bytes(pa.concat_tables(held), what=what, keys=keys)


def _only_nul(rows: pa.Table, names: list[str]) -> pa.Table:
    mask = None
    for name in names:
        matches = pc.match_substring(rows.column(name), "\x00")
        has = pc.and_kleene(matches, pc.is_valid(matches))  # NULL is no match (see refuse_nul_bytes)
        mask = has if mask is None else pc.or_(mask, has)
    return rows if mask is None else rows.filter(mask)


def refuse_nul_bytes(data: pa.Table, *, what: str, keys: Sequence[str] = (), shown: int = 3) -> None:
    """Raise an ExecutionError for the first text column holding a NUL byte (Postgres text cannot).

    Rows are named by their `keys` (`driver_id=1`, lowest first), or by their number without keys.
    """
    for name in data.column_names:
        column = data.column(name)
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        matches = pc.match_substring(column, "\x00")
        # NULL is no match. (Not fill_null(False): a Python scalar makes pyarrow import pandas, 0.35 s.)
        has_nul = pc.and_kleene(matches, pc.is_valid(matches))
        count = pc.sum(has_nul).as_py() or 0
        if count:
            first = _rows_named(data, has_nul, keys, shown)
            raise ExecutionError(
                f"{what}: column '{name}' holds a NUL byte (\\x00) in {count} row{'s' if count > 1 else ''}, which "
                f"Postgres text cannot store (first: {first}); nothing was written. Remove them at the source, or "
                f"strip them in SQL (a feature's expr, a spine's SELECT): replace(<expression>, chr(0), '')"
            )


def _rows_named(data: pa.Table, mask: pa.ChunkedArray, keys: Sequence[str], shown: int) -> str:
    if not keys:
        numbers = pc.indices_nonzero(mask).slice(0, shown).to_pylist()
        return ", ".join(f"row {n + 1}" for n in numbers)
    named = data.filter(mask).select(list(keys)).sort_by([(k, "ascending") for k in keys])
    rows = named.slice(0, shown).to_pylist()
    return "; ".join(",".join(f"{k}={_printable(row[k])}" for k in keys) for row in rows)


def _printable(value: Any) -> str:
    return str(value).replace("\x00", "\\x00")


def _array_literals(data: pa.Table) -> pa.Table:
    """List columns as Postgres array literals (`{"1","2"}`), which COPY's CSV reads into an
    array column; every element quoted, `"` and `\\` escaped. A NULL list stays NULL; NULL
    elements are not written (the lists fsql copies hold none)."""
    for index, field in enumerate(data.schema):
        if not pa.types.is_list(field.type) and not pa.types.is_large_list(field.type):
            continue
        texts = data.column(index).combine_chunks().cast(pa.list_(pa.string()))
        values = pc.replace_substring(pc.replace_substring(texts.values, "\\", "\\\\"), '"', '\\"')
        quoted = pc.binary_join_element_wise('"', values, '"', "")
        elements = pa.ListArray.from_arrays(texts.offsets, quoted, mask=texts.is_null())
        literal = pc.binary_join_element_wise("{", pc.binary_join(elements, ","), "}", "")
        data = data.set_column(index, field.name, literal)
    return data


def _utc_naive(data: pa.Table) -> pa.Table:
    for index, field in enumerate(data.schema):
        if pa.types.is_timestamp(field.type) and field.type.tz is not None:
            naive = data.column(index).cast(pa.timestamp(field.type.unit, tz="UTC")).cast(pa.timestamp(field.type.unit))
            data = data.set_column(index, field.name, naive)
    return data


_OID_TO_ARROW = {
    20: pa.int64(),
    21: pa.int16(),
    23: pa.int32(),
    700: pa.float32(),
    701: pa.float64(),
    1700: pa.float64(),
    16: pa.bool_(),
    25: pa.string(),
    1043: pa.string(),
    1042: pa.string(),
    1082: pa.date32(),
    1114: pa.timestamp("us"),
    1184: pa.timestamp("us", tz="UTC"),
}


def arrow_schema(description: Sequence[Any]) -> pa.Schema:
    """The arrow schema of a result from a cursor's description, typed by column OID (text otherwise)."""
    return pa.schema([(column.name, _OID_TO_ARROW.get(column.type_code, pa.string())) for column in description])


# Postgres CSV: NULL is an unquoted empty field, the empty string a quoted one; booleans are t/f.
_CSV_VALUES: dict[str, Any] = {
    "null_values": [""],
    "strings_can_be_null": True,
    "quoted_strings_can_be_null": False,
    "true_values": ["t"],
    "false_values": ["f"],
}
# A one-column row holding NULL is an empty line, which pyarrow would skip.
_CSV_ROWS = pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False)
_MIN_BLOCK = 1 << 20


def read_copied_csv(rows: Sequence[bytes | memoryview], schema: pa.Schema) -> pa.Table:
    """An arrow table from the rows of a `COPY ... TO STDOUT (FORMAT csv)`, typed by `schema`.

    pyarrow refuses a row longer than its block, and a text value can be megabytes: the block
    is made to hold the longest row (libpq hands COPY data over one row at a time).

    Raises:
        ExecutionError: a value does not fit its column's arrow type (e.g. timestamp 'infinity').
    """
    if not rows:
        return schema.empty_table()
    block = max(_MIN_BLOCK, 2 * max(map(len, rows)) + 1)
    try:
        return pacsv.read_csv(
            pa.BufferReader(b"".join(rows)),
            read_options=pacsv.ReadOptions(column_names=schema.names, block_size=block),
            parse_options=_CSV_ROWS,
            convert_options=pacsv.ConvertOptions(column_types=schema, **_CSV_VALUES),
        )
    except pa.ArrowInvalid as exc:
        raise ExecutionError(f"Postgres returned a value fsql cannot hold in arrow: {exc}") from None


class PostgresEngine(WholeResultBatches):
    dialect = "postgres"
    keepable = True

    def __init__(self, url: str, *, root: Path) -> None:
        self.url = url
        import psycopg

        self._errors = psycopg.Error
        self.connection = connect(url)
        # Results travel as CSV text (see `query_arrow`): ISO dates whatever the server's default,
        # and floats in their shortest exact form on every server version.
        self.connection.execute("SET DateStyle = 'ISO, YMD'; SET extra_float_digits = 3")

    def register_arrow(self, name: str, table: pa.Table) -> None:
        target = exp.to_table(name)
        target.this.set("quoted", True)
        with self.connection.cursor() as cursor:
            # Qualified: a bare DROP would take a table of that name from the search path.
            temporary = exp.Table(this=target.this.copy(), db=exp.to_identifier("pg_temp"))
            cursor.execute(exp.Drop(tables=[temporary], kind="TABLE", exists=True).sql("postgres"))
            cursor.execute(create_table_sql(target, table.schema, temporary=True))
            try:
                copy_arrow(cursor, target, table, what="the spine")
            except self._errors as exc:
                raise ExecutionError(f"Postgres refused the spine's rows: {str(exc).strip()}") from None

    def result_columns(self, sql: str) -> tuple[str, ...]:
        with self.connection.cursor() as cursor:
            self._run(cursor, sql)
            return tuple(column.name for column in cursor.description)

    def result_types(self, sql: str) -> tuple[tuple[str, str], ...]:
        """Types as Postgres names them (`int8`, `varchar(3)`, `timestamptz`), from the result's description."""
        with self.connection.cursor() as cursor:
            self._run(cursor, sql)
            return tuple((column.name, column.type_display) for column in cursor.description)

    def query_arrow(
        self, sql: str, *, params: dict[str, Any] | None = None, sql_path: Path | None = None, node: str | None = None
    ) -> pa.Table:
        """Run a SELECT and return its rows as arrow.

        The rows come through `COPY (query) TO STDOUT (FORMAT csv)` read by pyarrow, typed by the
        columns a `LIMIT 0` run of the query describes: several times cheaper than building arrow
        from fetched Python tuples (see benchmarks/RESULTS.md). COPY takes no server-side
        parameters, so `params` are bound client-side (psycopg's quoting), once for both runs.
        """
        import psycopg

        if params:
            sql = psycopg.ClientCursor(self.connection).mogrify(sql, params)
        # The query is opaque text here: it is wrapped as text, on lines of its own (a trailing
        # `--` comment must not swallow the closing parenthesis).
        body = sql.strip().rstrip(";")
        with self.connection.cursor() as cursor:
            self._run(cursor, f'SELECT * FROM (\n{body}\n) AS "_fsql_result" LIMIT 0', sql_path=sql_path, node=node)
            schema = arrow_schema(cursor.description)
            try:
                with cursor.copy(f"COPY (\n{body}\n) TO STDOUT (FORMAT csv, ENCODING 'UTF8')") as copy:
                    rows = list(copy)
            except self._errors as exc:
                raise ExecutionError(f"Postgres failed: {str(exc).strip()}", node=node, sql_path=sql_path) from None
        return read_copied_csv(rows, schema)

    def execute(self, sql: str) -> None:
        with self.connection.cursor() as cursor:
            self._run(cursor, sql)

    def _run(
        self,
        cursor: Any,
        sql: str,
        params: dict[str, Any] | None = None,
        *,
        sql_path: Path | None = None,
        node: str | None = None,
    ) -> None:
        try:
            cursor.execute(sql, params)
        except self._errors as exc:
            raise ExecutionError(f"Postgres failed: {str(exc).strip()}", node=node, sql_path=sql_path) from None

    def is_database(self, postgres_url: str) -> bool:
        return conninfo(self.url) == conninfo(postgres_url)

    def broken(self) -> bool:
        return bool(self.connection.broken or self.connection.closed)

    def close(self) -> None:
        self.connection.close()

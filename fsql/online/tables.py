"""Online tables in Postgres: their DDL, their schema changes, and the state table.

One table per online feature view, in a schema of its own: the join keys as primary key,
one typed column per feature, `feature_ts`, `created_ts` and `materialized_at`. Any SQL
client can read it. Statements are built with sqlglot; identifiers are quoted by it.

Names: the table is named after its view (views are checked to fit Postgres's 63 bytes and
to stay out of fsql's reserved `_fsql` prefix). Everything else fsql makes in the schema
takes that prefix and a hash of the table's name: the table built beside it for a swap
(`_fsql_new_<hash>`) and every primary-key constraint and index (`_fsql_pk_<hash>`), so no
name fsql makes can be a view's table, be truncated, or collide with another's.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from fsql.compile.latest import CREATED_TS_COLUMN, FEATURE_TS, MATERIALIZED_AT, ONLINE_RESERVED
from fsql.errors import CompileError, MigrationError
from fsql.spec import FeatureView

STATE_TABLE = "_fsql_state"
STAGE_TABLE = "_fsql_stage"  # a temporary table: in the session's own schema, never the online one
RESERVED_TABLE_PREFIX = "_fsql"
MAX_IDENTIFIER_BYTES = 63  # Postgres's NAMEDATALEN - 1: longer names are silently truncated


def temporary_table(name: str) -> exp.Table:
    """A temporary table by its qualified name (`pg_temp.<name>`): a DROP IF EXISTS of the bare name
    would drop a user's table of that name on the search path when no temporary one exists yet."""
    return exp.Table(this=exp.to_identifier(name, quoted=True), db=exp.to_identifier("pg_temp"))


# What Postgres's format_type() says for each canonical type, to compare with what exists.
FORMAT_TYPE = {
    exp.DType.BIGINT: "bigint",
    exp.DType.INT: "integer",
    exp.DType.DOUBLE: "double precision",
    exp.DType.FLOAT: "real",
    exp.DType.TEXT: "text",
    exp.DType.BOOLEAN: "boolean",
    exp.DType.DATE: "date",
    exp.DType.TIMESTAMP: "timestamp without time zone",
    exp.DType.TIMESTAMPTZ: "timestamp with time zone",
}


def _comment(kind: str, target: exp.Expr, text: str) -> str:
    return exp.Comment(this=target, kind=kind, expression=exp.Literal.string(text)).sql("postgres")


def quoted(name: str) -> str:
    """An identifier quoted by sqlglot for Postgres."""
    return exp.to_identifier(name, quoted=True).sql("postgres")


def table_ref(schema: str, name: str) -> exp.Table:
    return exp.Table(this=exp.to_identifier(name, quoted=True), db=exp.to_identifier(schema, quoted=True))


@dataclass(frozen=True)
class OnlineTable:
    schema: str
    view: FeatureView

    def __post_init__(self) -> None:
        if len(self.schema.encode()) > MAX_IDENTIFIER_BYTES:
            raise CompileError(
                f"online_schema '{self.schema}' is {len(self.schema.encode())} bytes long, and Postgres cuts names "
                f"at {MAX_IDENTIFIER_BYTES} bytes: set a shorter online_schema on the target in profiles.yml"
            )
        clashes = [f.name for f in self.view.features if f.name in ONLINE_RESERVED]
        if clashes:
            raise CompileError(
                f"feature view '{self.view.name}': feature name(s) {', '.join(clashes)} are reserved in online "
                f"tables ({', '.join(ONLINE_RESERVED)}): rename them"
            )

    @property
    def name(self) -> str:
        return self.view.name

    def ref(self, name: str | None = None) -> exp.Table:
        return table_ref(self.schema, name or self.name)

    @property
    def new_name(self) -> str:
        """The table built beside this one and swapped in (full refresh, rebuild, new columns)."""
        return f"_fsql_new_{_name_hash(self.name)}"

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.view.join_keys)

    @property
    def value_columns(self) -> tuple[str, ...]:
        """Every column but materialized_at: what materialization writes."""
        return (*self.keys, *(f.name for f in self.view.features), FEATURE_TS, CREATED_TS_COLUMN)

    def comment_sql(self) -> list[str]:
        """COMMENT ON the table and its columns from the definitions, for whoever reads the schema
        (DBAs, SQL clients, catalogs). As dbt's persist_docs: a description written in YAML wins;
        where none is written, a comment set by hand is left alone (swaps carry it over). A
        utility statement takes no bind parameters, so the text is a literal quoted by sqlglot."""
        statements = []
        if self.view.description:
            described = [
                self.view.description.rstrip(". "),
                *([f"owner: {self.view.owner}"] if self.view.owner else []),
            ]
            described.append(f"fsql feature view from source '{self.view.source}', written by fsql build")
            statements.append(_comment("TABLE", self.ref(), ". ".join(described)))
        table = self.ref()
        for name, text in self.column_comments().items():
            target = exp.Column(this=exp.to_identifier(name, quoted=True), table=table.this, db=table.args["db"])
            statements.append(_comment("COLUMN", target, text))
        return statements

    def column_comments(self) -> dict[str, str]:
        """The comment of each column that has something to say."""
        return {f.name: f.description for f in self.view.features if f.description}

    def expected_types(self) -> dict[str, str]:
        types = {k.name: FORMAT_TYPE[k.type] for k in self.view.join_keys if k.type is not None}
        types.update({f.name: FORMAT_TYPE[f.type] for f in self.view.features})
        ts = FORMAT_TYPE[exp.DType.TIMESTAMPTZ]
        types.update({FEATURE_TS: ts, CREATED_TS_COLUMN: ts, MATERIALIZED_AT: ts})
        return types

    def add_primary_key_sql(self, name: str | None = None) -> str:
        """ALTER TABLE ... ADD CONSTRAINT ... PRIMARY KEY: a bulk load is faster with the key added after."""
        key = exp.PrimaryKey(expressions=[exp.to_identifier(k, quoted=True) for k in self.keys])
        named = exp.Constraint(
            this=exp.to_identifier(primary_key_name(name or self.name), quoted=True), expressions=[key]
        )
        constraint = exp.AddConstraint(expressions=[named])
        return exp.Alter(this=self.ref(name), kind="TABLE", actions=[constraint]).sql("postgres")

    def create_sql(self, name: str | None = None, *, temporary: bool = False) -> str:
        """CREATE TABLE for the definition's columns, without its key (see `add_primary_key_sql`).

        `temporary`: the staging table, `name` unqualified, in the session's temporary schema.
        """

        def definition(column: str, type_: exp.DType | None, *constraints: exp.Expression) -> exp.ColumnDef:
            assert type_ is not None, "entity keys and features always declare a type"
            return exp.ColumnDef(
                this=exp.to_identifier(column, quoted=True),
                kind=exp.DataType(this=type_),
                constraints=[exp.ColumnConstraint(kind=c) for c in constraints],
            )

        not_null = exp.NotNullColumnConstraint()
        ts = exp.DType.TIMESTAMPTZ
        columns: list[exp.Expression] = [definition(k.name, k.type, not_null) for k in self.view.join_keys]
        columns += [definition(f.name, f.type) for f in self.view.features]
        columns += [definition(FEATURE_TS, ts, not_null), definition(CREATED_TS_COLUMN, ts)]
        columns.append(definition(MATERIALIZED_AT, ts, not_null, exp.DefaultColumnConstraint(this=exp.func("now"))))
        if temporary:
            where = exp.Table(this=exp.to_identifier(name or STAGE_TABLE, quoted=True))
            properties = exp.Properties(expressions=[exp.TemporaryProperty()])
            return exp.Create(
                this=exp.Schema(this=where, expressions=columns), kind="TABLE", properties=properties
            ).sql("postgres")
        create = exp.Create(this=exp.Schema(this=self.ref(name), expressions=columns), kind="TABLE", exists=True)
        return create.sql("postgres")


def primary_key_name(table_name: str) -> str:
    """The primary-key constraint (and index) of an online table: reserved, short, its own."""
    return f"_fsql_pk_{_name_hash(table_name)}"


def _name_hash(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:16]


def ensure_schema(cursor: Any, schema: str) -> None:
    """Create the online schema and the state table if missing, and add state columns it lacks.

    Only what is missing is created, so a build role that owns the schema (and has no CREATE
    on the database) can run, and the state table is not locked by a needless ALTER.
    """
    cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
    if cursor.fetchone() is None:
        cursor.execute(
            exp.Create(this=exp.to_identifier(schema, quoted=True), kind="SCHEMA", exists=True).sql("postgres")
        )
    state = table_ref(schema, STATE_TABLE)
    columns = [
        exp.ColumnDef(this=exp.to_identifier(n, quoted=True), kind=exp.DataType.build(t)) for n, t in _STATE_COLUMNS
    ]
    columns[0].set("constraints", [exp.ColumnConstraint(kind=exp.PrimaryKeyColumnConstraint())])
    cursor.execute(
        exp.Create(this=exp.Schema(this=state, expressions=columns), kind="TABLE", exists=True).sql("postgres")
    )
    cursor.execute(
        "SELECT a.attname FROM pg_attribute a WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped",
        (state.sql("postgres"),),
    )
    present = {row[0] for row in cursor.fetchall()}
    for column in columns:
        if column.name not in present:  # a state table made by an earlier release
            cursor.execute(exp.Alter(this=state.copy(), kind="TABLE", actions=[column]).sql("postgres"))


def ensure_schema_locked(connection: Any, schema: str) -> None:
    """`ensure_schema` in a transaction of its own, committed at once. One catalog read when
    everything is there already (every build but the first); else under the schema's advisory
    lock, as concurrent CREATE ... IF NOT EXISTS can still collide."""
    with connection.cursor() as cursor:
        if not _state_table_complete(cursor, schema):
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"fsql:{schema}",))
            ensure_schema(cursor, schema)
    connection.commit()


def _state_table_complete(cursor: Any, schema: str) -> bool:
    """Whether the state table exists with every state column (so its schema does too)."""
    cursor.execute(
        "SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attname = ANY(%s) AND NOT attisdropped",
        (table_ref(schema, STATE_TABLE).sql("postgres"), [name for name, _ in _STATE_COLUMNS]),
    )
    return int(cursor.fetchone()[0]) == len(_STATE_COLUMNS)


# The state of each view's last run. `watermark`: the newest event time read (never the
# requested end); `created_watermark`: the newest created time read; `behind_rows`: source
# rows the next run cannot reach (behind watermark - lateness), to tell rows arriving late.
_STATE_COLUMNS = (
    ("view", "TEXT"),
    ("watermark", "TIMESTAMPTZ"),
    ("rows", "BIGINT"),
    ("finished_at", "TIMESTAMPTZ"),
    ("fingerprint", "TEXT"),
    ("created_watermark", "TIMESTAMPTZ"),
    ("behind_rows", "BIGINT"),
    ("late_rows", "BIGINT"),
    ("requested_end", "TIMESTAMPTZ"),
)


def existing_columns(cursor: Any, table: OnlineTable, name: str | None = None) -> dict[str, str] | None:
    """The columns and types of an online table as it is, or None when it does not exist."""
    cursor.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        (table.schema, name or table.name),
    )
    rows = cursor.fetchall()
    return {column: type_ for column, type_ in rows} if rows else None


def existing_table(cursor: Any, table: OnlineTable) -> tuple[dict[str, str], tuple[str, ...]] | None:
    """`existing_columns` and `existing_keys` in one catalog read: the columns and types of an
    online table as it is and its primary key's columns in order, or None when it does not exist."""
    cursor.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), array_position(i.indkey, a.attnum) "
        "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary "
        "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        (table.schema, table.name),
    )
    rows = cursor.fetchall()
    if not rows:
        return None
    keys = sorted((position, column) for column, _, position in rows if position is not None)
    return {column: type_ for column, type_, _ in rows}, tuple(column for _, column in keys)


def existing_keys(cursor: Any, table: OnlineTable) -> tuple[str, ...]:
    cursor.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        "WHERE i.indrelid = to_regclass(%s) AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)",
        (table.ref().sql("postgres"),),
    )
    return tuple(row[0] for row in cursor.fetchall())


def missing_columns(table: OnlineTable, columns: dict[str, str], keys: tuple[str, ...]) -> list[str]:
    """The definition's columns the table lacks (new features); a changed key or type is an error.

    Raises:
        MigrationError: the table's keys or a column's type differ from the definition.
    """
    refresh = f"run `fsql build --full-refresh --select {table.name}` to rebuild the table"
    if keys != table.keys:
        raise MigrationError(
            f"online table {table.schema}.{table.name}: its keys are ({', '.join(keys)}) but feature view "
            f"'{table.name}' is keyed by ({', '.join(table.keys)}): {refresh}",
            node=table.name,
        )
    missing = []
    for column, expected in table.expected_types().items():
        if column not in columns:
            missing.append(column)
        elif columns[column] != expected:
            raise MigrationError(
                f"online table {table.schema}.{table.name}: column '{column}' is {columns[column]} but the "
                f"definition says {expected}: {refresh}",
                node=table.name,
            )
    return missing

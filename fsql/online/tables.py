"""Online tables in Postgres: their DDL, their schema changes, and the state table.

One table per online feature view, in a schema of its own: the join keys as primary key,
one typed column per feature, `feature_ts`, `created_ts` and `materialized_at`. Any SQL
client can read it. Statements are built with sqlglot; identifiers are quoted by it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from fsql.compile.latest import CREATED_TS_COLUMN, FEATURE_TS, MATERIALIZED_AT, ONLINE_RESERVED
from fsql.errors import CompileError, ExecutionError
from fsql.spec import FeatureView

STATE_TABLE = "_fsql_state"

# What Postgres's format_type() says for each canonical type, to compare with what exists.
_FORMAT_TYPE = {
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
    def keys(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.view.join_keys)

    @property
    def value_columns(self) -> tuple[str, ...]:
        """Every column but materialized_at: what materialization writes."""
        return (*self.keys, *(f.name for f in self.view.features), FEATURE_TS, CREATED_TS_COLUMN)

    def expected_types(self) -> dict[str, str]:
        types = {k.name: _FORMAT_TYPE[k.type] for k in self.view.join_keys if k.type is not None}
        types.update({f.name: _FORMAT_TYPE[f.type] for f in self.view.features})
        ts = _FORMAT_TYPE[exp.DType.TIMESTAMPTZ]
        types.update({FEATURE_TS: ts, CREATED_TS_COLUMN: ts, MATERIALIZED_AT: ts})
        return types

    def add_primary_key_sql(self, name: str | None = None) -> str:
        """ALTER TABLE ... ADD PRIMARY KEY: a bulk load into a new table is faster with the key added after."""
        key = exp.PrimaryKey(expressions=[exp.to_identifier(k, quoted=True) for k in self.keys])
        return exp.Alter(this=self.ref(name), kind="TABLE", actions=[exp.AddConstraint(expressions=[key])]).sql(
            "postgres"
        )

    def create_sql(self, name: str | None = None, *, primary_key: bool = True) -> str:
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
        if primary_key:
            columns.append(exp.PrimaryKey(expressions=[exp.to_identifier(k, quoted=True) for k in self.keys]))
        create = exp.Create(this=exp.Schema(this=self.ref(name), expressions=columns), kind="TABLE", exists=True)
        return create.sql("postgres")


def ensure_schema_sql(schema: str) -> list[str]:
    state = exp.Schema(
        this=table_ref(schema, STATE_TABLE),
        expressions=[
            exp.ColumnDef(
                this=exp.to_identifier("view", quoted=True),
                kind=exp.DataType.build("TEXT"),
                constraints=[exp.ColumnConstraint(kind=exp.PrimaryKeyColumnConstraint())],
            ),
            *(
                exp.ColumnDef(this=exp.to_identifier(n, quoted=True), kind=exp.DataType.build(t))
                for n, t in (
                    ("watermark", "TIMESTAMPTZ"),
                    ("rows", "BIGINT"),
                    ("finished_at", "TIMESTAMPTZ"),
                    ("fingerprint", "TEXT"),
                )
            ),
        ],
    )
    return [
        exp.Create(this=exp.to_identifier(schema, quoted=True), kind="SCHEMA", exists=True).sql("postgres"),
        exp.Create(this=state, kind="TABLE", exists=True).sql("postgres"),
    ]


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


def existing_keys(cursor: Any, table: OnlineTable) -> tuple[str, ...]:
    cursor.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        "WHERE i.indrelid = to_regclass(%s) AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)",
        (table.ref().sql("postgres"),),
    )
    return tuple(row[0] for row in cursor.fetchall())


def migration_sql(table: OnlineTable, columns: dict[str, str], keys: tuple[str, ...]) -> list[str]:
    """ALTER statements that add new feature columns; a changed key or type is an error.

    Raises:
        ExecutionError: the table's keys or a column's type differ from the definition.
    """
    refresh = f"run `fsql build --full-refresh --select {table.name}` to rebuild the table"
    if keys != table.keys:
        raise ExecutionError(
            f"online table {table.schema}.{table.name}: its keys are ({', '.join(keys)}) but feature view "
            f"'{table.name}' is keyed by ({', '.join(table.keys)}): {refresh}",
            node=table.name,
        )
    statements = []
    for column, expected in table.expected_types().items():
        if column not in columns:
            add = exp.ColumnDef(
                this=exp.to_identifier(column, quoted=True), kind=exp.DataType.build(expected, dialect="postgres")
            )
            statements.append(exp.Alter(this=table.ref(), kind="TABLE", actions=[add]).sql("postgres"))
        elif columns[column] != expected:
            raise ExecutionError(
                f"online table {table.schema}.{table.name}: column '{column}' is {columns[column]} but the "
                f"definition says {expected}: {refresh}",
                node=table.name,
            )
    return statements

"""The online table of an aggregate view: its tiles, one row per entity and granularity bucket.

Columns: the join keys, `bucket_start` (a UTC instant, a multiple of the granularity from
the epoch), one typed column per tile state (`<aggregation>__<state>`, see
`fsql.compile.tiles.TILE_STATES`) and `materialized_at`; primary key (keys, bucket_start),
which also serves the range scan of a lookup. Any SQL client can read it. The state table
and the swap are those of latest-value tables: it is an `OnlineTable` with other columns.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from fsql.compile.latest import MATERIALIZED_AT
from fsql.compile.tiles import BUCKET, state_column, state_data_type, state_type, tile_states
from fsql.errors import CompileError
from fsql.online.tables import FORMAT_TYPE, MAX_IDENTIFIER_BYTES, OnlineTable, primary_key_name

TILE_STAGE = "_fsql_tile_stage"  # a temporary table, in the session's own schema


@dataclass(frozen=True)
class TileTable(OnlineTable):
    def __post_init__(self) -> None:
        super().__post_init__()
        for name in self.state_columns:
            if len(name.encode()) > MAX_IDENTIFIER_BYTES:
                raise CompileError(
                    f"feature view '{self.view.name}': its tile column '{name}' is longer than Postgres's "
                    f"{MAX_IDENTIFIER_BYTES} bytes: shorten the aggregation's name"
                )

    @property
    def state_columns(self) -> tuple[str, ...]:
        return tuple(state_column(a, s) for a, s in tile_states(self.view))

    @property
    def value_columns(self) -> tuple[str, ...]:
        """Every column but materialized_at: what materialization writes."""
        return (*self.keys, BUCKET, *self.state_columns)

    def column_comments(self) -> dict[str, str]:
        comments = {BUCKET: f"the start of the tile's bucket [bucket_start, bucket_start + {self.view.granularity})"}
        for aggregation, state in tile_states(self.view):
            windows = ", ".join(str(w) for w in aggregation.windows)
            comments[state_column(aggregation, state)] = (
                f"tile state '{state.suffix}' of aggregation '{aggregation.name}' ({aggregation.function.value} over "
                f"{windows}); a lookup merges a window's tiles. {aggregation.description}"
            ).strip()
        return comments

    def expected_types(self) -> dict[str, str]:
        types = {k.name: FORMAT_TYPE[k.type] for k in self.view.join_keys if k.type is not None}
        ts = FORMAT_TYPE[exp.DType.TIMESTAMPTZ]
        types[BUCKET] = ts
        types.update(
            {
                state_column(a, s): FORMAT_TYPE[state_type(a, s)] + ("[]" if s.array else "")
                for a, s in tile_states(self.view)
            }
        )
        types[MATERIALIZED_AT] = ts
        return types

    def add_primary_key_sql(self, name: str | None = None) -> str:
        key = exp.PrimaryKey(expressions=[exp.to_identifier(k, quoted=True) for k in (*self.keys, BUCKET)])
        named = exp.Constraint(
            this=exp.to_identifier(primary_key_name(name or self.name), quoted=True), expressions=[key]
        )
        return exp.Alter(this=self.ref(name), kind="TABLE", actions=[exp.AddConstraint(expressions=[named])]).sql(
            "postgres"
        )

    def create_sql(self, name: str | None = None, *, temporary: bool = False) -> str:
        """CREATE TABLE for the tiles, without its key; `temporary`: the stage, named `name`."""
        not_null = exp.ColumnConstraint(kind=exp.NotNullColumnConstraint())

        def definition(
            column: str, type_: exp.DType | exp.DataType | None, *constraints: exp.ColumnConstraint
        ) -> exp.ColumnDef:
            assert type_ is not None, "entity keys always declare a type"
            return exp.ColumnDef(
                this=exp.to_identifier(column, quoted=True),
                kind=type_ if isinstance(type_, exp.DataType) else exp.DataType(this=type_),
                constraints=list(constraints),
            )

        ts = exp.DType.TIMESTAMPTZ
        columns = [definition(k.name, k.type, not_null.copy()) for k in self.view.join_keys]
        columns.append(definition(BUCKET, ts, not_null.copy()))
        columns += [definition(state_column(a, s), state_data_type(a, s)) for a, s in tile_states(self.view)]
        if temporary:
            where = exp.Table(this=exp.to_identifier(name or TILE_STAGE, quoted=True))
            properties = exp.Properties(expressions=[exp.TemporaryProperty()])
            return exp.Create(
                this=exp.Schema(this=where, expressions=columns), kind="TABLE", properties=properties
            ).sql("postgres")
        default_now = exp.ColumnConstraint(kind=exp.DefaultColumnConstraint(this=exp.func("now")))
        columns.append(definition(MATERIALIZED_AT, ts, not_null.copy(), default_now))
        create = exp.Create(this=exp.Schema(this=self.ref(name), expressions=columns), kind="TABLE", exists=True)
        return create.sql("postgres")

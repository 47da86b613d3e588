"""The typed model of a project's definitions: what the YAML says, checked and resolved.

Objects are frozen; `where` records the file and line each came from, for messages.
The model knows no dialect and no connection.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlglot import exp

from fsql.derived import DerivedView
from fsql.durations import Duration
from fsql.yamlfile import Where

if TYPE_CHECKING:
    from fsql.datatests.model import DataTest
    from fsql.drift.model import DriftSettings

_NOWHERE = Where(Path("<memory>"))


@dataclass(frozen=True)
class Column:
    name: str
    type: exp.DType | None  # None: inferred from a query, type unknown


@dataclass(frozen=True)
class Entity:
    name: str
    join_keys: tuple[Column, ...]
    description: str = ""
    where: Where = field(default=_NOWHERE, compare=False)


class SourceKind(enum.Enum):
    TABLE = "table"
    FILE = "file"
    SQL = "sql"


@dataclass(frozen=True)
class Source:
    """A relation of feature rows: a table, a parquet/CSV file, or SQL (inline or templated)."""

    name: str
    kind: SourceKind
    # table: the table name as written; file: the path relative to the project; sql: the rendered query.
    location: str
    timestamp: str
    created_timestamp: str | None
    # The columns the source is known to have; empty when they cannot be known.
    columns: tuple[Column, ...]
    description: str = ""
    template: str | None = None
    where: Where = field(default=_NOWHERE, compare=False)
    # A DATE column holding the UTC day of the event time, so scan bounds reach partitions.
    partition_column: str | None = None
    # Where the SQL text starts (the template file, or the YAML line of `sql:`).
    sql_where: Where | None = field(default=None, compare=False)
    tests: tuple[DataTest, ...] = ()  # `fsql test` (fsql.datatests)

    @property
    def file_format(self) -> str:
        return "csv" if self.location.lower().endswith((".csv", ".csv.gz", ".tsv")) else "parquet"

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


class AggregateFunction(enum.Enum):
    """The functions an aggregation may apply over the rows of a window (DESIGN.md, "Windowed aggregates")."""

    COUNT = "count"
    SUM = "sum"
    AVG = "avg"
    MIN = "min"
    MAX = "max"
    STDDEV = "stddev"
    COUNT_DISTINCT = "count_distinct"
    LAST = "last"


@dataclass(frozen=True)
class Aggregation:
    """`function(expression) FILTER (filter)` over each window of source rows: one feature per window.

    The window of spine time t is `[t - w, t)`, both ends snapped to `floor(t, granularity)`
    when the view has one. Its features are named `<name>_<window as written>`.
    """

    name: str
    function: AggregateFunction
    # SQL over the source's columns, in the project's dialect; None counts rows.
    expression: str | None
    # A row-level SQL predicate over the source's columns; None keeps every row.
    filter: str | None
    windows: tuple[Duration, ...]
    # The type of `expression` (cast to it when the source's type differs); None for a row count.
    input_type: exp.DType | None
    description: str = ""
    where: Where = field(default=_NOWHERE, compare=False)
    # Where `expr` and `filter` are written, for file:line:col errors.
    expression_where: Where | None = field(default=None, compare=False)
    filter_where: Where | None = field(default=None, compare=False)
    # `expr` was not written but `name` names a column: the expression is that column, quoted.
    is_column: bool = False

    def feature_name(self, window: Duration) -> str:
        return f"{self.name}_{window}"


@dataclass(frozen=True)
class AggregateWindow:
    """Which aggregation and window an aggregate feature is."""

    aggregation: Aggregation
    window: Duration


@dataclass(frozen=True)
class Feature:
    name: str
    type: exp.DType
    expression: str  # SQL over the source's columns, in the project's dialect
    description: str = ""
    where: Where = field(default=_NOWHERE, compare=False)
    # No `expr` was written: the feature is its source column of the same name, read as a
    # quoted column, never parsed (a column may be called `from`, `select` or `true`).
    is_column: bool = False
    # An aggregate feature (one window of one aggregation); None for a latest-value feature,
    # whose value is `expression` on the latest source row at or before the spine time.
    aggregate: AggregateWindow | None = None
    drift: DriftSettings | None = None  # `fsql drift` thresholds over the view's (fsql.drift)


@dataclass(frozen=True)
class FeatureView:
    name: str
    entities: tuple[str, ...]
    join_keys: tuple[Column, ...]  # the entities' keys, in order
    source: str
    ttl: Duration | None
    features: tuple[Feature, ...]
    online: bool = False
    # Rows may also be written straight into the online table (`fsql.push`, POST /push).
    push: bool = False
    # How late rows may arrive: materialization re-reads (watermark - lateness, end].
    lateness: Duration | None = None
    tags: tuple[str, ...] = ()
    owner: str = ""
    description: str = ""
    where: Where = field(default=_NOWHERE, compare=False)
    # An aggregate view declares aggregations instead of latest-value features; `features`
    # then holds one aggregate feature per (aggregation, window), in the order written.
    aggregations: tuple[Aggregation, ...] = ()
    # Both ends of every window snap to a multiple of it (counted from 1970-01-01T00:00Z).
    granularity: Duration | None = None
    tests: tuple[DataTest, ...] = ()  # its own and its features' (fsql.datatests)
    drift: DriftSettings | None = None  # `fsql drift` thresholds of its features (fsql.drift)

    def feature(self, name: str) -> Feature | None:
        return next((f for f in self.features if f.name == name), None)

    @property
    def is_aggregate(self) -> bool:
        return bool(self.aggregations)


@dataclass(frozen=True)
class FeatureRef:
    """`view:feature`, or a whole view when `feature` is None."""

    view: str
    feature: str | None = None

    def __str__(self) -> str:
        return f"{self.view}:{self.feature}" if self.feature else self.view


@dataclass(frozen=True)
class FeatureService:
    name: str
    features: tuple[FeatureRef, ...]
    full_feature_names: bool = False
    description: str = ""
    tags: tuple[str, ...] = ()
    owner: str = ""
    where: Where = field(default=_NOWHERE, compare=False)


@dataclass(frozen=True)
class Definitions:
    """Everything a project defines, by name."""

    dialect: str  # the dialect source SQL and feature expressions are written in
    entities: dict[str, Entity]
    sources: dict[str, Source]
    feature_views: dict[str, FeatureView]
    feature_services: dict[str, FeatureService]
    # Views whose features are expressions over other views' features and request fields.
    derived_views: dict[str, DerivedView] = field(default_factory=dict)

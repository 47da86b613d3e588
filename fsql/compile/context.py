"""What every compile pass sees, and the names the generated SQL uses internally."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlglot import exp

from fsql.compile.request import FeatureRequest, ViewRequest
from fsql.compile.spine import Spine
from fsql.spec import Source

if TYPE_CHECKING:
    from fsql.compile.strategy import PointInTimeStrategy

SPINE_ALIAS = "spine"  # a feature view may not take this name (fsql.definitions refuses it)
EVENT_TS = "_fsql_event_ts"
CREATED_TS = "_fsql_created_ts"
RESERVED_PREFIX = "_fsql_"


@dataclass(frozen=True)
class CompileContext:
    request: FeatureRequest
    spine: Spine
    dialect: str  # the dialect to emit
    source_dialect: str  # the dialect the definitions' SQL is written in
    strategy: PointInTimeStrategy
    file_root: Path | None = None  # anchor relative file paths here (for SQL fsql runs itself)
    sources: Mapping[str, Source] = field(default_factory=dict)  # every source of the project, by name


def ident(name: str) -> exp.Identifier:
    """A quoted identifier: every name fsql emits is quoted by sqlglot, never pasted."""
    return exp.to_identifier(name, quoted=True)


def column(name: str, table: str | None = None) -> exp.Column:
    return exp.Column(this=ident(name), table=ident(table) if table else None)


def rows_cte_name(view: ViewRequest) -> str:
    return f"{view.view.name}__rows"


def spine_ts_of(ctx: CompileContext) -> exp.Column:
    return column(ctx.spine.timestamp, SPINE_ALIAS)

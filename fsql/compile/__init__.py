"""The compiler: definitions + a feature request + a spine -> point-in-time SQL for a dialect.

It opens no connection. Entry point: `compile_training_query`. The passes are in
`passes.py`, the per-dialect join strategies in `strategy.py` and its siblings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlglot import exp
from sqlglot.errors import ErrorLevel, UnsupportedError

from fsql.compile.asof import SPINE_ROW
from fsql.compile.context import RESERVED_PREFIX, SPINE_ALIAS, CompileContext
from fsql.compile.passes import run_passes
from fsql.compile.request import FeatureRequest, resolve_features
from fsql.compile.spine import DEFAULT_SPINE_TIMESTAMP, Spine, check_spine_types, spine_relation
from fsql.compile.strategy import strategy_for
from fsql.errors import CompileError
from fsql.spec import Definitions

__all__ = ["CompiledQuery", "Spine", "compile_training_query", "resolve_features", "spine_relation"]


@dataclass(frozen=True)
class CompiledQuery:
    name: str  # the service's name, or a name made from the views of a feature list
    dialect: str
    strategy: str
    sql: str
    request: FeatureRequest


def compile_training_query(
    definitions: Definitions,
    *,
    spine: Spine,
    dialect: str,
    service: str | None = None,
    features: Sequence[str] | None = None,
    full_feature_names: bool | None = None,
    file_root: Path | None = None,
) -> CompiledQuery:
    """Compile the point-in-time training query for a service or a feature list.

    Args:
        definitions: the project's checked definitions.
        spine: the spine relation, its timestamp column and (if known) its columns.
        dialect: the sqlglot dialect to emit.
        service: a feature service name; or
        features: a list of `view` or `view:feature`.
        full_feature_names: name outputs `view__feature` (default: the service's setting).
        file_root: make relative file paths absolute under this directory (for SQL run by
            fsql); by default they stay relative to the project directory.

    Returns:
        The SQL with its name, dialect and strategy.

    Raises:
        CompileError: the request cannot be compiled (unknown names, collisions, a
            dialect without a strategy, a construct the dialect lacks).
    """
    query, request = training_query(
        definitions, spine=spine, dialect=dialect, service=service, features=features,
        full_feature_names=full_feature_names, file_root=file_root,
    )  # fmt: skip
    strategy = strategy_for(dialect)
    header = [
        f"fsql point-in-time training query: {request.name}",
        f"dialect {dialect}, strategy {strategy.name}; run it in a session whose time zone is UTC",
        "(naive timestamps are read as UTC); relative file paths are relative to the project directory.",
        "Features: " + ", ".join(request.output_names),
    ]
    return CompiledQuery(request.name, dialect, strategy.name, render(query, dialect, header), request)


def training_query(
    definitions: Definitions,
    *,
    spine: Spine,
    dialect: str,
    service: str | None = None,
    features: Sequence[str] | None = None,
    full_feature_names: bool | None = None,
    file_root: Path | None = None,
) -> tuple[exp.Select, FeatureRequest]:
    """The training query as a tree, for SQL that reads it as a relation (`fsql drift`); see
    `compile_training_query` for the arguments."""
    request = resolve_features(definitions, service=service, features=features, full_feature_names=full_feature_names)
    _check_spine(spine, request)
    check_spine_types(spine, request.views, dialect)
    strategy = strategy_for(dialect)
    ctx = CompileContext(request, spine, dialect, definitions.dialect, strategy, file_root, definitions.sources)
    return run_passes(ctx), request


def render(query: exp.Expression, dialect: str, header: Sequence[str]) -> str:
    """The edge where the AST becomes text: pretty, and refusing what the dialect lacks."""
    try:
        body = query.sql(dialect=dialect, pretty=True, unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError as exc:
        raise CompileError(f"the {dialect} dialect cannot express this query: {exc}") from None
    return "".join(f"-- {line}\n" for line in header) + body + "\n"


def _check_spine(spine: Spine, request: FeatureRequest) -> None:
    outputs = set(request.output_names)
    for name in request.output_names:
        if name.startswith(RESERVED_PREFIX) or name == SPINE_ALIAS:
            raise CompileError(f"feature name '{name}' is reserved by fsql: rename the feature")
    if spine.columns is None:
        return
    columns = set(spine.columns)
    if SPINE_ROW in columns:
        raise CompileError(
            f"the spine has a column '{SPINE_ROW}', the name fsql gives its own numbering of the spine's rows: "
            f"rename it in the spine"
        )
    needed = [spine.timestamp, *(k.name for v in request.views for k in v.view.join_keys)]
    missing = [name for name in dict.fromkeys(needed) if name not in columns]
    if missing:
        raise CompileError(
            f"the spine lacks column(s) {', '.join(missing)}; it has {', '.join(spine.columns)}. "
            f"A spine needs the join keys of every requested view and its timestamp column "
            f"(--spine-timestamp, default '{DEFAULT_SPINE_TIMESTAMP}')"
        )
    for derived in request.derived:
        absent = [f.name for f in derived.request_fields if f.name not in columns]
        if absent:
            raise CompileError(
                f"derived view '{derived.view.name}' ({derived.view.where}) reads request field(s) "
                f"{', '.join(absent)}, which the spine lacks; in training each request field is the spine column "
                f"of the same name: add column(s) {', '.join(absent)} to the spine. It has {', '.join(spine.columns)}."
            )
    clashes = sorted(outputs & columns)
    if clashes:
        raise CompileError(
            f"spine column(s) {', '.join(clashes)} have the name of a requested feature: rename them in the "
            f"spine, or ask for full feature names (view__feature)"
        )


def example_definitions() -> Definitions:
    """Tiny definitions for the doctests: one view of one feature over a table."""
    from fsql.spec import Column, Entity, Feature, FeatureView, Source, SourceKind

    bigint = exp.DType.BIGINT
    key = Column("driver_id", bigint)
    source = Source("stats", SourceKind.TABLE, "stats", "ts", None, (key, Column("trips", bigint)))
    view = FeatureView("driver_stats", ("driver",), (key,), "stats", None, (Feature("trips", bigint, "trips"),))
    return Definitions("duckdb", {"driver": Entity("driver", (key,))}, {"stats": source}, {view.name: view}, {})


def example_context() -> CompileContext:
    """A tiny context for the passes' doctests."""
    from fsql.compile.request import OutputFeature, ViewRequest

    definitions = example_definitions()
    view = definitions.feature_views["driver_stats"]
    outputs = tuple(OutputFeature(f, f.name) for f in view.features)
    request = FeatureRequest("example", (ViewRequest(view, definitions.sources["stats"], outputs),))
    return CompileContext(request, Spine(exp.to_table("labels")), "duckdb", "duckdb", strategy_for("duckdb"))

"""File and table sources checked against what they hold before a query reads them.

A parquet or CSV file (or a table) can lose or rename a column after the definitions were
written; DuckDB then stops with a binder error about the generated SQL. Reading the
relation's columns first (`SELECT * ... LIMIT 0` through the engine, with the query's own
scan function: a parquet footer, a CSV sniff, a catalog lookup) lets the error name the
view, the column, the source at its file:line, and the columns there are. Only the
columns a run reads are checked (join keys, time columns, the requested features'
columns), not their types. SQL sources, and engines other than DuckDB, are left to the
engine's own message.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from sqlglot import exp

from fsql.checks import parse_feature_expression
from fsql.compile.paths import anchor_file_paths
from fsql.compile.request import OutputFeature, ViewRequest
from fsql.definitions import source_relation
from fsql.engines import OfflineEngine
from fsql.errors import ExecutionError, did_you_mean
from fsql.spec import Definitions, SourceKind

# Engines whose SQL reads sources as `source_relation` builds them, binding names
# case-insensitively (Postgres would need exact case, and reads file sources from tables).
_CHECKED_DIALECTS = frozenset({"duckdb"})
# The kinds of source checked, and what their relation is called in messages.
_RELATION_WORD = {SourceKind.FILE: "file", SourceKind.TABLE: "table"}


def check_view_source(definitions: Definitions, view_name: str, engine: OfflineEngine, *, file_root: Path) -> None:
    """Check the source of one view for every column the view reads (what materialization reads).

    Raises:
        DefinitionError: at the source, when its file or table lacks a column the view reads.
    """
    view = definitions.feature_views[view_name]
    outputs = tuple(OutputFeature(f, f.name) for f in view.features)
    request = ViewRequest(view, definitions.sources[view.source], outputs)
    check_source_columns([request], engine, file_root=file_root, dialect=definitions.dialect)


def check_source_columns(
    views: Sequence[ViewRequest], engine: OfflineEngine, *, file_root: Path, dialect: str, service: str | None = None
) -> None:
    """Check that the file or table of each source has every column the views read from it.

    Args:
        views: the views of a request, with the features asked for.
        engine: the offline engine that will run the query; other engines than DuckDB
            are not checked.
        file_root: the project directory, which relative paths are relative to.
        dialect: the dialect the definitions' SQL is written in.
        service: the feature service asked for, named in the message.

    Raises:
        DefinitionError: at the source, naming the view, the missing columns, who reads
            them, and the columns the file or table has.
    """
    if engine.dialect not in _CHECKED_DIALECTS:
        return
    described: dict[str, tuple[str, ...] | None] = {}
    for view in views:
        source = view.source
        if source.kind not in _RELATION_WORD:
            continue
        if source.name not in described:
            described[source.name] = relation_columns(view, engine, file_root)
        columns = described[source.name]
        if columns is not None:
            _check_view(view, columns, dialect, service)


def relation_columns(view: ViewRequest, engine: OfflineEngine, file_root: Path) -> tuple[str, ...] | None:
    """The columns of a source's file or table, as the engine sees them; None if it cannot be
    read (a missing file, say), which the query then reports against its run file."""
    probe = exp.select(exp.Star()).from_(source_relation(view.source, engine.dialect)).limit(0)
    try:
        return engine.result_columns(anchor_file_paths(probe, file_root).sql(engine.dialect))
    except ExecutionError:
        return None


def _check_view(view: ViewRequest, columns: tuple[str, ...], dialect: str, service: str | None) -> None:
    present = {c.lower() for c in columns}  # DuckDB binds names case-insensitively, quoted or not
    missing = {name: reader for name, reader in _read_columns(view, dialect) if name.lower() not in present}
    if not missing:
        return
    source = view.source
    what = f"feature service '{service}': " if service else ""
    names = list(missing)
    lacks = (
        f"no column '{names[0]}' ({missing[names[0]]}).{did_you_mean(names[0], columns)}"
        if len(names) == 1
        else f"no columns {', '.join(f'{n!r} ({r})' for n, r in missing.items())}."
    )
    word = _RELATION_WORD[source.kind]
    raise source.where.error(
        f"{what}feature view '{view.view.name}': source '{source.name}' reads {word} {source.location}, which has "
        f"{lacks} The {word}'s columns: {_listed(columns)}. Put the column{'s' if len(names) > 1 else ''} back "
        f"in the {word}, or change the definitions that read {'them' if len(names) > 1 else 'it'}."
    )


def _read_columns(view: ViewRequest, dialect: str) -> Iterator[tuple[str, str]]:
    """(column, who reads it) for every source column the view's query reads, first reader only."""
    seen: set[str] = set()
    source = view.source
    times = (("timestamp", source.timestamp), ("created_timestamp", source.created_timestamp))
    candidates = [
        *((key.name, "the join key") for key in view.view.join_keys),
        *((name, f"the source's {role}") for role, name in times if name),
        *(
            (name, f"read by feature '{output.feature.name}' at {output.feature.where}")
            for output in view.features
            for name in _feature_columns(output, view, dialect)
        ),
    ]
    for name, reader in candidates:
        if name.lower() not in seen:
            seen.add(name.lower())
            yield name, reader


def _feature_columns(output: OutputFeature, view: ViewRequest, dialect: str) -> list[str]:
    expression = parse_feature_expression(output.feature, view.view, dialect)
    bound = {p.name for lam in expression.find_all(exp.Lambda) for p in lam.expressions}  # x in `x -> x + 1`
    return [c.parts[0].name for c in expression.find_all(exp.Column) if c.parts[0].name not in bound]


def _listed(columns: Sequence[str], limit: int = 20) -> str:
    shown = ", ".join(columns[:limit])
    return f"{shown}, ... ({len(columns)} in all)" if len(columns) > limit else shown

"""File and table sources checked against the data they hold, before anything reads them.

A parquet or CSV file (or a table) can be missing, lose or rename a column, or hold other
types than the definitions declare; the engine then stops with a binder error about the
generated SQL, or worse, returns the wrong type without a word (a feature whose source
column is declared as its own type is read as it is). Reading each relation's schema first
lets the error name the source at its file:line, the column, both types, and what to do.

What is checked, for every file and table source the run reads, as the target's offline
engine reads it (DuckDB scans files; Spark scans parquet; elsewhere a file source is read
from a table named after the source):
- the file exists (a local path) and the relation can be read;
- every column the views read (join keys, time columns, features' columns) is there;
- every declared column is there with a type its declaration accepts (`fsql.column_types`);
  `fsql validate` checks every declared column, a run only those it reads;
- each join key compares safely with the view's entity key (no text against numbers).

The cost is a schema lookup per source, never a scan: `SELECT * ... LIMIT 0` bound by the
engine (a parquet footer, a CSV sniff, a catalog lookup, a BigQuery dry run); how schemas
are read per target is `fsql.schema_readers`. SQL sources are left to the engine: their
SQL was parsed at load time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlglot import exp

from fsql.aggregations import parse_aggregation
from fsql.checks import parse_feature_expression
from fsql.column_types import accepts, cast_sql, declared_label, joins, suggested_type
from fsql.compile.request import OutputFeature, ViewRequest
from fsql.compile.strategy import readable_file_formats
from fsql.definitions import source_relation
from fsql.engines import OfflineEngine
from fsql.errors import DefinitionError, ExecutionError, did_you_mean
from fsql.project import Target
from fsql.schema_readers import (
    NO_DATA_CHECKS_HINT,
    EngineReader,
    FoundColumn,
    NotChecked,
    SchemaReader,
    local_path,
    target_reader,
)
from fsql.spec import Column, Definitions, Source, SourceKind

# The kinds of source checked, and what their relation is called in messages.
_RELATION_WORD = {SourceKind.FILE: "file", SourceKind.TABLE: "table"}
# Engines that bind quoted names case-sensitively (the others find `Driver_Id` for "driver_id").
_CASE_SENSITIVE = frozenset({"postgres"})


@dataclass
class DataCheckReport:
    """What a check against the data covered: the sources checked, and those it could not check (why)."""

    engine: str
    checked: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def check_project_data(
    definitions: Definitions, target: Target, *, root: Path, views: Sequence[ViewRequest] | None = None
) -> DataCheckReport:
    """Check sources against the data on the target's offline engine (`fsql validate`, `fsql compile`).

    Args:
        definitions: the project's checked definitions.
        target: the target whose offline engine reads the data.
        root: the project directory, which relative paths are relative to.
        views: the views of a request (`fsql compile`); by default every file and table
            source of the project, with every declared column, and every view over them.

    Raises:
        DefinitionError: at a source whose data does not fit its definition.
        ProjectError: the target's offline engine cannot be opened (except BigQuery's).
    """
    started = time.perf_counter()
    with target_reader(target, root) as (reader, unreachable):
        if reader is None:
            sources = _sources_of(definitions, views)
            return DataCheckReport(target.dialect, skipped=dict.fromkeys(sources, unreachable))
        every = views is None
        chosen = _every_view(definitions) if views is None else views
        report = check_sources(reader, definitions, chosen, root=root, every_column=every, with_unread_sources=every)
    report.seconds = time.perf_counter() - started
    return report


def check_source_columns(
    views: Sequence[ViewRequest],
    engine: OfflineEngine,
    *,
    file_root: Path,
    definitions: Definitions,
    service: str | None = None,
) -> None:
    """Check the sources of a request's views on the engine about to run it (`fsql train`).

    Only what the run reads is checked: the join keys, time columns and the requested
    features' columns, each against its declared type and the entity's key type.

    Raises:
        DefinitionError: at the source, naming the view, the column, both types (or the
            columns the file or table has), and what to do.
    """
    check_sources(EngineReader(engine, file_root), definitions, views, root=file_root, service=service)


def check_view_source(definitions: Definitions, view_name: str, engine: OfflineEngine, *, file_root: Path) -> None:
    """Check the source of one view for every column the view reads (what materialization reads)."""
    check_sources(EngineReader(engine, file_root), definitions, [_whole_view(definitions, view_name)], root=file_root)


@contextmanager
def view_checker(
    definitions: Definitions, target: Target, *, root: Path, engine: OfflineEngine | None = None
) -> Iterator[Callable[[str], None]]:
    """A function checking one view's source against the data (`fsql build`, node by node).

    It reads through `engine` when one is open, else as `check_project_data` does (a
    BigQuery target that cannot be reached checks nothing).
    """
    if engine is not None:
        yield _view_check(EngineReader(engine, root), definitions, root)
        return
    with target_reader(target, root) as (reader, _):
        yield _view_check(reader, definitions, root)


def _view_check(reader: SchemaReader | None, definitions: Definitions, root: Path) -> Callable[[str], None]:
    def check(name: str) -> None:
        if reader is not None:
            check_sources(reader, definitions, [_whole_view(definitions, name)], root=root)

    return check


def check_sources(
    reader: SchemaReader,
    definitions: Definitions,
    views: Sequence[ViewRequest],
    *,
    root: Path,
    every_column: bool = False,
    with_unread_sources: bool = False,
    service: str | None = None,
) -> DataCheckReport:
    """Check each file or table source of `views` (and, `with_unread_sources`, every other one).

    `every_column`: check every declared column, not only those the views read.
    """
    report = DataCheckReport(reader.dialect)
    by_source: dict[str, list[ViewRequest]] = {}
    for view in views:
        by_source.setdefault(view.source.name, []).append(view)
    if with_unread_sources:
        for name in definitions.sources:
            by_source.setdefault(name, [])
    what = f"feature service '{service}': " if service else ""
    for name, readers in by_source.items():
        source = definitions.sources[name]
        if source.kind not in _RELATION_WORD:
            continue
        try:
            found = _read(reader, source, definitions.dialect, root, what)
        except NotChecked as reason:
            report.skipped[name] = str(reason)
            continue
        context = _Context(source, found, reader.dialect, definitions.dialect, what)
        for view in readers:
            context.check_reads(view)
        context.check_declared(None if every_column else _read_names(readers, definitions.dialect))
        for view in readers:
            context.check_join_keys(view)
        report.checked.append(name)
    return report


def _read(reader: SchemaReader, source: Source, dialect: str, root: Path, what: str) -> tuple[FoundColumn, ...]:
    """The source's columns as the reader's engine sees them; a DefinitionError if it cannot read them."""
    readable = source.kind is SourceKind.FILE and source.file_format in readable_file_formats(reader.dialect)
    path = local_path(source.location, root) if readable else None
    if path is not None and not path.exists():
        raise source.where.error(
            f"{what}source '{source.name}' reads file {source.location}, which does not exist (relative paths "
            f"are relative to the project directory, {root}). Create the file, or fix 'path:'; "
            f"{NO_DATA_CHECKS_HINT}."
        )
    relation = _relation(source, dialect, readable)
    try:
        return reader.read(source, relation)
    except ExecutionError as exc:
        said = str(exc).strip().splitlines()[0]
        word = _RELATION_WORD[source.kind]
        if source.kind is SourceKind.FILE and not readable:
            table = relation.sql(reader.dialect)
            reads = f"file {source.location}, which {reader.dialect} reads from the table {table} (named after it)"
            fix = f"Load the file into the table {table}"
        else:
            reads, fix = f"{word} {source.location}", f"Fix '{'path' if word == 'file' else 'table'}:', or create it"
        raise source.where.error(
            f"{what}source '{source.name}' reads {reads}, which cannot be read ({said.rstrip('.')}). {fix}; "
            f"{NO_DATA_CHECKS_HINT}."
        ) from None


def _relation(source: Source, dialect: str, readable: bool) -> exp.Expr:
    """What the engine reads for a source: a file scan, a table, or the table named after a file source."""
    if source.kind is SourceKind.FILE and not readable:
        return exp.Table(this=exp.to_identifier(source.name, quoted=True))
    return source_relation(source, dialect)


@dataclass
class _Context:
    """One source and the columns found for it, with the checks that compare them."""

    source: Source
    found: tuple[FoundColumn, ...]
    engine: str
    dialect: str  # the definitions' dialect, for the SQL a message suggests
    what: str

    @property
    def word(self) -> str:
        return _RELATION_WORD[self.source.kind]

    def lookup(self, name: str) -> FoundColumn | None:
        if self.engine in _CASE_SENSITIVE:
            return next((c for c in self.found if c.name == name), None)
        return next((c for c in self.found if c.name.lower() == name.lower()), None)

    def check_reads(self, view: ViewRequest) -> None:
        missing = {name: who for name, who in _read_columns(view, self.dialect) if self.lookup(name) is None}
        if not missing:
            return
        names = list(missing)
        plural = len(names) > 1
        columns = [c.name for c in self.found]
        lacks = (
            f"no column '{names[0]}' ({missing[names[0]]}).{did_you_mean(names[0], columns)}"
            if len(names) == 1
            else f"no columns {', '.join(f'{n!r} ({r})' for n, r in missing.items())}."
        )
        word, source = self.word, self.source
        raise source.where.error(
            f"{self.what}feature view '{view.view.name}': source '{source.name}' reads {word} {source.location}, "
            f"which has {lacks} The {word}'s columns: {_listed(columns)}. Put the column{'s' if plural else ''} "
            f"back in the {word}, or change the definitions that read {'them' if plural else 'it'}."
        )

    def check_declared(self, only: set[str] | None) -> None:
        """Every declared column (or those in `only`) is there, with a type its declaration accepts."""
        for column in self.source.columns:
            if column.type is None or (only is not None and column.name.lower() not in only):
                continue
            found = self.lookup(column.name)
            if found is None:
                raise self._missing(column)
            if not accepts(column.type, found.type):
                raise self._mismatch(column, found)

    def check_join_keys(self, view: ViewRequest) -> None:
        """Each join key of the source compares safely with the view's entity key."""
        for key in view.view.join_keys:
            found = self.lookup(key.name)
            if found is None or key.type is None or joins(key.type, found.type):
                continue
            raise self.source.where.error(
                f"{self.what}feature view '{view.view.name}': its join key '{key.name}' is "
                f"{declared_label(key.type)}, but source '{self.source.name}' reads it from {self.word} "
                f"{self.source.location}, which holds {found.type_text} there; keys of different kinds do not join "
                f"safely (text against numbers would match '007' to 7). Cast it in a SQL source, e.g. "
                f"{cast_sql(key.name, key.type, self.dialect)}, or change the entity's key type."
            )

    def _missing(self, column: Column) -> DefinitionError:
        columns = [c.name for c in self.found]
        return self.source.where.error(
            f"{self.what}source '{self.source.name}' declares column '{column.name}' "
            f"({declared_label(column.type)}), but {self.word} {self.source.location} has no such column."
            f"{did_you_mean(column.name, columns)} The {self.word}'s columns: {_listed(columns)}. Put the column "
            f"back in the {self.word}, or remove it from 'columns:'."
        )

    def _mismatch(self, column: Column, found: FoundColumn) -> DefinitionError:
        assert column.type is not None
        cast = cast_sql(column.name, column.type, self.dialect)
        suggested = suggested_type(found.type)
        declare = f"Declare it as {suggested}, or" if suggested else "fsql has no type for it:"
        return self.source.where.error(
            f"{self.what}source '{self.source.name}' declares column '{column.name}' as "
            f"{declared_label(column.type)}, but {self.word} {self.source.location} holds {found.type_text} there. "
            f"{declare} read the {self.word} through a SQL source that casts it, e.g. {cast}."
        )


def _read_names(views: Sequence[ViewRequest], dialect: str) -> set[str]:
    return {name.lower() for view in views for name, _ in _read_columns(view, dialect)}


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
    aggregate = output.feature.aggregate
    if aggregate is None:
        expressions = [parse_feature_expression(output.feature, view.view, dialect)]
    else:
        expressions = [e for e in parse_aggregation(aggregate.aggregation, view.view, dialect) if e is not None]
    return [name for expression in expressions for name in _columns_read(expression)]


def _columns_read(expression: exp.Expr) -> list[str]:
    bound = {p.name for lam in expression.find_all(exp.Lambda) for p in lam.expressions}  # x in `x -> x + 1`
    return [c.parts[0].name for c in expression.find_all(exp.Column) if c.parts[0].name not in bound]


def _every_view(definitions: Definitions) -> list[ViewRequest]:
    return [_whole_view(definitions, name) for name in definitions.feature_views]


def _whole_view(definitions: Definitions, name: str) -> ViewRequest:
    view = definitions.feature_views[name]
    return ViewRequest(view, definitions.sources[view.source], tuple(OutputFeature(f, f.name) for f in view.features))


def _sources_of(definitions: Definitions, views: Sequence[ViewRequest] | None) -> list[str]:
    names = definitions.sources if views is None else dict.fromkeys(v.source.name for v in views)
    return [n for n in names if definitions.sources[n].kind in _RELATION_WORD]


def _listed(columns: Sequence[str], limit: int = 20) -> str:
    shown = ", ".join(columns[:limit])
    return f"{shown}, ... ({len(columns)} in all)" if len(columns) > limit else shown

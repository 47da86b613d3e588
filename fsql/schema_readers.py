"""How the schema of a source's data is read: through the offline engine, or from parquet footers.

`target_reader(target, root)` picks one for `fsql validate` and `fsql compile`, which open
no engine of their own otherwise: the target's offline engine (DuckDB, Postgres, BigQuery;
Spark when a session is already active), or, for Spark without a session, pyarrow reading
parquet footers (starting a session costs 5-10 s). A BigQuery target that cannot be opened
(no client library, no credentials) yields no reader and the reason. `fsql train` and
`fsql build` read through the engine they run on (`EngineReader`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sqlglot import exp

from fsql.column_types import arrow_type, read_type
from fsql.compile.paths import anchor_file_paths
from fsql.engines import OfflineEngine, open_engine
from fsql.errors import ExecutionError, ProjectError
from fsql.project import Target
from fsql.spec import Source, SourceKind

# Engines whose target, when fsql cannot open it, leaves the checks skipped rather than failing.
_SKIPPED_WHEN_UNREACHABLE = frozenset({"bigquery"})
# Engines too costly to start for a check (Spark's JVM): unless one already runs in this
# process, their sources' schemas are read from parquet footers instead.
_FOOTERS_UNLESS_RUNNING: dict[str, Callable[[], bool]] = {"spark": lambda: _spark_session_active()}
NO_DATA_CHECKS_HINT = "to check the definitions without their data, pass --no-data-checks"


@dataclass(frozen=True)
class FoundColumn:
    """A column of the data: its name, its type as the engine writes it, and that type read by sqlglot."""

    name: str
    type_text: str
    type: exp.DType | None


class NotChecked(Exception):
    """A reader cannot check this source here (the reason is the message); not an error of the source."""


class SchemaReader(Protocol):
    dialect: str  # the engine's dialect: how it reads sources

    def read(self, source: Source, relation: exp.Expr) -> tuple[FoundColumn, ...]:
        """The columns of the relation a source reads; ExecutionError if it cannot be read."""


class EngineReader:
    """Schemas through the offline engine that runs the queries: what it binds is what it reads."""

    def __init__(self, engine: OfflineEngine, root: Path) -> None:
        self.engine, self.root, self.dialect = engine, root, engine.dialect

    def read(self, source: Source, relation: exp.Expr) -> tuple[FoundColumn, ...]:
        probe = anchor_file_paths(exp.select(exp.Star()).from_(relation).limit(0), self.root)
        found = self.engine.result_types(probe.sql(self.dialect))
        return tuple(FoundColumn(name, text, read_type(text, self.dialect)) for name, text in found)


class ParquetFooterReader:
    """Parquet footers read with pyarrow: Spark's file sources, without starting a Spark session."""

    dialect = "spark"

    def __init__(self, root: Path) -> None:
        self.root = root

    def read(self, source: Source, relation: exp.Expr) -> tuple[FoundColumn, ...]:
        import pyarrow as pa
        import pyarrow.parquet as pq  # not pyarrow.dataset, whose import alone takes half a second

        path = local_path(source.location, self.root) if source.kind is SourceKind.FILE else None
        if source.kind is not SourceKind.FILE or source.file_format != "parquet":
            raise NotChecked("Spark reads it from a table, and no Spark session is active (fsql train checks it)")
        if path is None:
            raise NotChecked("not a local path, and no Spark session is active (fsql train checks it)")
        # A directory (Spark's own output): Spark takes the schema of one part file, unless told to merge.
        parts = (
            sorted(p for p in path.rglob("*.parquet") if not p.name.startswith(("_", "."))) if path.is_dir() else [path]
        )
        try:
            if not parts:
                raise OSError(f"no .parquet files under {path}")
            schema = pq.read_schema(parts[0])
        except (OSError, pa.ArrowException) as exc:
            raise ExecutionError(f"pyarrow cannot read it: {exc}") from None
        return tuple(FoundColumn(f.name, str(f.type), arrow_type(f.type)) for f in schema)


def local_path(location: str, root: Path) -> Path | None:
    """The local file or directory a path names (relative to `root`), or None for a URL or a glob."""
    if "://" in location or any(c in location for c in "*?[{"):
        return None
    path = Path(location).expanduser()
    return path if path.is_absolute() else root / path


@contextmanager
def target_reader(target: Target, root: Path) -> Iterator[tuple[SchemaReader | None, str]]:
    """A reader for the target's data; or None and the reason, when the target cannot be reached (BigQuery)."""
    running = _FOOTERS_UNLESS_RUNNING.get(target.dialect)
    if running is not None and not running():
        yield ParquetFooterReader(root), ""
        return
    engine, unreachable = _open(target, root)
    if engine is None:
        yield None, unreachable
        return
    try:
        yield EngineReader(engine, root), ""
    finally:
        engine.close()


def _open(target: Target, root: Path) -> tuple[OfflineEngine | None, str]:
    try:
        return open_engine(target, root), ""
    except Exception as exc:  # a driver's own error (credentials, network) as much as fsql's
        if target.dialect in _SKIPPED_WHEN_UNREACHABLE:
            return None, f"{target.dialect} is not reachable ({str(exc).strip().splitlines()[0]})"
        if isinstance(exc, ProjectError):
            raise ProjectError(f"{exc}; {NO_DATA_CHECKS_HINT}") from None
        raise


def _spark_session_active() -> bool:
    if "pyspark.sql" not in sys.modules:  # nothing imported pyspark, so no session runs in this process
        return False
    from pyspark.sql import SparkSession

    return SparkSession.getActiveSession() is not None

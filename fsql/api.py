"""The Python API: one `Project` whose methods the CLI, tests and notebooks share.

    import fsql
    project = fsql.load_project(".")
    sql = project.training_sql(service="ride_acceptance")
    table = project.training_set(service="ride_acceptance", spine="data/ride_requests.parquet")

Methods delegate: definitions to `fsql.definitions`, SQL to `fsql.compile`, running to
`fsql.engines`, files under target/ to `fsql.artifacts`.
"""

from __future__ import annotations

import importlib.util
import math
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import pyarrow as pa

from fsql import artifacts
from fsql.compile import CompiledQuery, Spine, compile_training_query, spine_relation
from fsql.compile.paths import anchor_file_paths
from fsql.compile.spine import (
    DEFAULT_SPINE_TABLE,
    DEFAULT_SPINE_TIMESTAMP,
    SPINE_FILE_SUFFIXES,
    bounds_probe,
    columns_probe,
    query_columns,
)
from fsql.compile.strategy import strategy_for
from fsql.definitions import load_definitions
from fsql.engines import OfflineEngine
from fsql.engines.kept import KeptEngine
from fsql.engines.postgres import probe
from fsql.errors import CompileError, ProjectError
from fsql.graph import select_views
from fsql.project import PROJECT_FILE, ProjectConfig, load_project_config
from fsql.schema_readers import local_path
from fsql.source_schema import DataCheckReport, check_project_data, check_source_columns
from fsql.spec import Definitions, Source, SourceKind
from fsql.warm import WarmCache, file_stat, tree_stamp

if TYPE_CHECKING:
    from fsql.build import BuildOptions, BuildResult, NodeResult
    from fsql.online.lookup import OnlineStore
    from fsql.online.result import LookupResult
    from fsql.push import PushResult
    from fsql.skew.report import SkewReport

SpineInput: TypeAlias = "str | Path | pa.Table | Any"  # Any: a pandas DataFrame
_ARROW_SPINE_NAME = "_fsql_spine"


def load_project(
    project_dir: str | Path = ".",
    *,
    target: str | None = None,
    vars: dict[str, Any] | None = None,
    profiles_dir: str | Path | None = None,
    data_checks: bool = True,
    recheck_files_every: float = 0.0,
) -> Project:
    """Load a project: its fsql_project.yml, the chosen target, and (lazily) its definitions.

    The project stays warm between calls (see `Project`): keep one in a service, and close it
    (or use `with`) when done.

    Args:
        data_checks: check file and table sources against their data (see `Project.validate`);
            False checks the definitions alone, e.g. in CI without the data (`--no-data-checks`).
        recheck_files_every: seconds between two looks at the project's files (as Feast's
            registry `cache_ttl_seconds`); 0, the default, looks on every call. `refresh()`
            always looks.
    """

    def reload() -> ProjectConfig:
        return load_project_config(project_dir, target=target, vars=vars, profiles_dir=profiles_dir)

    return Project(reload(), data_checks=data_checks, reload=reload, recheck_files_every=recheck_files_every)


class Project:
    """A project, kept warm: its definitions, compiled queries, source checks and spine column
    types are kept until a file of the project changes (`fsql.warm`), and its offline engine and
    online store stay open (`fsql.engines.kept`), so repeated calls pay for the query alone.
    Safe to share across threads. `close()` (or `with`) releases the connections."""

    def __init__(
        self,
        config: ProjectConfig,
        *,
        data_checks: bool = True,
        reload: Callable[[], ProjectConfig] | None = None,
        recheck_files_every: float = 0.0,
    ) -> None:
        if recheck_files_every < 0:
            raise ProjectError(f"recheck_files_every must be 0 or more seconds, not {recheck_files_every}")
        self.config = config
        self.recheck_files_every = recheck_files_every
        self._looked_at = -math.inf  # time.monotonic() of the last look at the files
        self.data_checks = data_checks
        # What the last check against the data covered (None: none ran).
        self.data_report: DataCheckReport | None = None
        self._reload = reload
        self._lock = threading.RLock()
        self._config_stamp = self._config_files_stamp()
        self.warm = WarmCache(self._stamp)
        self._kept = _Kept(KeptEngine(config.target, config.root))
        # A Project dropped without close() still releases its connections.
        weakref.finalize(self, self._kept.close)
        self._written: dict[Path, tuple[str, Any]] = {}  # what write_sql last wrote where

    def _config_files_stamp(self) -> tuple[Any, ...]:
        return tree_stamp((), (self.config.root / PROJECT_FILE, self.config.profiles_path))

    def _stamp(self) -> tuple[Any, ...]:
        config = self.config
        return tree_stamp((config.definitions_dir, config.templates_dir), ()) + self._config_files_stamp()

    def refresh(self) -> bool:
        """Look at the project's files; forget what was derived from them if one changed (every
        public method does this first). Returns whether something changed."""
        self._looked_at = time.monotonic()
        if not self.warm.refresh():
            return False
        with self._lock:
            stamp = self._config_files_stamp()
            if stamp != self._config_stamp and self._reload is not None:
                self._config_stamp = stamp
                self.config = self._reload()
                self._kept.close()
                self._kept.engine = KeptEngine(self.config.target, self.config.root)
        return True

    def forget(self) -> None:
        """Drop everything kept from the project's files (e.g. after changing environment variables
        its templates read); the connections stay open."""
        self.warm.forget()

    def close(self) -> None:
        """Close the kept offline engine and online store (the project can still be used: they reopen)."""
        with self._lock:
            self._kept.close()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def definitions(self) -> Definitions:
        """The checked definitions; reading them raises DefinitionError at the first mistake.

        Read again when a definition or template file changed since the last look."""
        if time.monotonic() - self._looked_at >= self.recheck_files_every:
            self.refresh()
        return self._definitions()

    def _definitions(self) -> Definitions:
        return self.warm.get("definitions", None, lambda: load_definitions(self.config))

    def validate(self, *, data_checks: bool | None = None) -> Definitions:
        """Read and check every definition, and write target/manifest.json.

        With data checks (the project's setting by default), every file and table source is
        also checked against its data on the target's offline engine: the file exists, the
        table can be read, and every declared column is there with a compatible type (a
        schema lookup per source, no scan). `self.data_report` says what was checked.

        Raises:
            DefinitionError: a definition is wrong, or does not fit its data.
        """
        definitions = self.definitions
        if self.data_checks if data_checks is None else data_checks:
            self.data_report = check_project_data(definitions, self.config.target, root=self.config.root)
        artifacts.write_manifest(self.config.target_dir, self.config.name, definitions)
        return definitions

    def compile(
        self,
        *,
        service: str | None = None,
        features: Sequence[str] | None = None,
        spine: str = DEFAULT_SPINE_TABLE,
        spine_timestamp: str = DEFAULT_SPINE_TIMESTAMP,
        dialect: str | None = None,
        full_feature_names: bool | None = None,
        data_checks: bool | None = None,
    ) -> tuple[CompiledQuery, Path]:
        """Compile a training query and write it to target/compiled/<dialect>/<name>.sql.

        Compiled for the target's own dialect (the default), the sources the query reads
        are checked against their data first, as `validate` does (unless data checks are off).
        """
        target = self.config.target
        dialect = dialect or target.dialect
        definitions = self.definitions

        def made() -> CompiledQuery:
            relation = spine_relation(str(spine), dialect)
            return compile_training_query(
                definitions,
                spine=Spine(relation, spine_timestamp, query_columns(relation)),
                dialect=dialect,
                service=service,
                features=features,
                full_feature_names=full_feature_names,
            )

        # Kept while the project's files are unchanged: a build compiles every service each run.
        key = (dialect, service, tuple(features or ()), str(spine), spine_timestamp, full_feature_names)
        compiled = self.warm.get("compile", key, made)
        if (self.data_checks if data_checks is None else data_checks) and dialect == target.dialect:
            views = compiled.request.views
            self.data_report = check_project_data(definitions, target, root=self.config.root, views=views)
        path = self.write_sql("compiled", dialect, compiled.name, compiled.sql)
        return compiled, path

    def training_sql(self, **kwargs: Any) -> str:
        """The point-in-time SQL for a service or feature list (see `compile` for arguments)."""
        return self.compile(**kwargs)[0].sql

    def training_set(
        self,
        *,
        spine: SpineInput,
        service: str | None = None,
        features: Sequence[str] | None = None,
        spine_timestamp: str = DEFAULT_SPINE_TIMESTAMP,
        full_feature_names: bool | None = None,
    ) -> pa.Table:
        """Build a training set on the target's offline engine and return it as arrow.

        Args:
            spine: a SELECT, a table name, a parquet/CSV path, a pyarrow Table or a
                pandas DataFrame, holding the join keys, `spine_timestamp` and any labels.
        """
        definitions = self.definitions
        return self._kept.engine.run(
            lambda engine: self._training_set(
                engine, definitions, spine, service, features, spine_timestamp, full_feature_names
            )
        )

    def _training_set(
        self,
        engine: OfflineEngine,
        definitions: Definitions,
        spine: SpineInput,
        service: str | None,
        features: Sequence[str] | None,
        spine_timestamp: str,
        full_feature_names: bool | None,
    ) -> pa.Table:
        spine_spec = self._spine(engine, spine, spine_timestamp)
        wanted = tuple(features) if features else None
        key: tuple[Any, ...] = (engine.dialect, spine_spec.relation.sql(engine.dialect), spine_timestamp)
        key += (spine_spec.columns, spine_spec.bounds, spine_spec.types, service, wanted, full_feature_names)
        compiled = self.warm.get(
            "compiled",
            key,
            lambda: compile_training_query(
                definitions,
                spine=spine_spec,
                dialect=engine.dialect,
                service=service,
                features=features,
                full_feature_names=full_feature_names,
                file_root=self.config.root,
            ),
        )
        path = self.write_sql("run", engine.dialect, compiled.name, compiled.sql)
        if self.data_checks:
            self._check_sources(engine, definitions, compiled, service)
        return engine.query_arrow(compiled.sql, sql_path=self._shown(path), node=compiled.name)

    def write_sql(self, kind: str, dialect: str, name: str, sql: str) -> Path:
        """Write target/<kind>/<dialect>/<name>.sql, unless this project wrote that very text there last."""
        path = self.config.target_dir / kind / dialect / f"{name}.sql"
        with self._lock:
            written = self._written.get(path)
        if written is not None and written == (sql, file_stat(path)):
            return path
        path = artifacts.write_sql(self.config.target_dir, kind, dialect, name, sql)
        with self._lock:
            self._written[path] = (sql, file_stat(path))
        return path

    def _check_sources(
        self, engine: OfflineEngine, definitions: Definitions, compiled: CompiledQuery, service: str | None
    ) -> None:
        """The data checks of a run, kept while the files they read are unchanged; sources that
        are tables or SQL are checked every time (their schema can change unseen)."""
        views = compiled.request.views
        files = self.source_files([definitions.sources[view.source.name] for view in views])
        if files is None:
            check_source_columns(views, engine, file_root=self.config.root, definitions=definitions, service=service)
            return

        def check() -> bool:
            check_source_columns(views, engine, file_root=self.config.root, definitions=definitions, service=service)
            return True

        self.warm.get("checked", (engine.dialect, compiled.request, service, files), check)

    def source_files(self, sources: Sequence[Source]) -> tuple[tuple[str, Any], ...] | None:
        """(path, stat) of each source's local file, to key a check of them that is kept while they
        are unchanged; None when one is a table, a query, remote or a directory of files (which can
        change inside without its own stat changing): such checks run every time."""
        paths = [local_path(s.location, self.config.root) if s.kind is SourceKind.FILE else None for s in sources]
        if any(path is None or path.is_dir() for path in paths):
            return None
        return tuple((str(path), file_stat(path)) for path in paths if path is not None)

    def write_training_set(self, *, out: Path | None = None, **kwargs: Any) -> tuple[Path, pa.Table]:
        """Build a training set (see `training_set`) and write it as parquet.

        Returns:
            The path written (default: target/training/<name>.parquet) and the table.
        """
        import pyarrow.parquet as pq

        table = self.training_set(**kwargs)
        if out is None:
            name = kwargs.get("service") or "features"
            out = self.config.target_dir / "training" / f"{name}.parquet"
        out.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, out)
        return out, table

    def spine(self, engine: OfflineEngine, spine: SpineInput, timestamp: str = DEFAULT_SPINE_TIMESTAMP) -> Spine:
        """A spine made ready on `engine`: an arrow one loaded, a file path anchored, its columns,
        types and (where the strategy uses them) time bounds probed."""
        return self._spine(engine, spine, timestamp)

    def _spine(self, engine: OfflineEngine, spine: SpineInput, timestamp: str) -> Spine:
        if not isinstance(spine, str | Path):
            table = _as_arrow(spine)
            engine.register_arrow(_ARROW_SPINE_NAME, table)
            text = _ARROW_SPINE_NAME
            # The registered table's types follow from its arrow schema; its bounds from its rows.
            key: Any = ("arrow", table.schema) if not strategy_for(engine.dialect).bounds_scans else None
        else:
            text = str(spine)
            key = None
        if text.lower().endswith(SPINE_FILE_SUFFIXES):
            if not Path(text).exists() and not (self.config.root / text).exists():
                raise ProjectError(f"spine file '{text}' not found (looked in . and {self.config.root})")
            text = str(Path(text).resolve()) if Path(text).exists() else text
            key = ("file", text, file_stat(text if Path(text).is_absolute() else self.config.root / text))
        if key is None:  # a table or a SELECT: its columns can change unseen, so they are probed every time
            return self._probe_spine(engine, text, timestamp)
        made = partial(self._probe_spine, engine, text, timestamp)
        return self.warm.get("spine", (engine.dialect, timestamp, key), made)

    def _probe_spine(self, engine: OfflineEngine, text: str, timestamp: str) -> Spine:
        relation = anchor_file_paths(spine_relation(text, engine.dialect), self.config.root)
        found = engine.result_types(columns_probe(relation, engine.dialect))
        names = tuple(name for name, _ in found)
        bounds = self._bounds(engine, relation, timestamp, names)
        return Spine(relation, timestamp, names, bounds, tuple(type_ for _, type_ in found))

    @staticmethod
    def _bounds(
        engine: OfflineEngine, relation: Any, timestamp: str, columns: Sequence[str]
    ) -> tuple[datetime, datetime] | None:
        """The spine's time range, measured when the strategy bounds feature scans with it."""
        if not strategy_for(engine.dialect).bounds_scans or timestamp not in columns:
            return None
        low, high = engine.query_arrow(bounds_probe(relation, timestamp, engine.dialect)).to_pylist()[0].values()
        return (low, high) if isinstance(low, datetime) and isinstance(high, datetime) else None

    def _shown(self, path: Path) -> Path:
        return path.relative_to(self.config.root) if path.is_relative_to(self.config.root) else path

    def seed(self, *, scale: float = 1.0, seed: int = 42) -> dict[str, int]:
        """Run the project's data generator (`seed:` in fsql_project.yml); returns rows per file."""
        script = self.config.seed_script
        if script is None:
            raise ProjectError("this project has no 'seed:' script in fsql_project.yml")
        if not script.is_file():
            raise ProjectError(f"seed script {script} (from 'seed:' in fsql_project.yml) does not exist")
        module_spec = importlib.util.spec_from_file_location("fsql_project_seed", script)
        if module_spec is None or module_spec.loader is None:
            raise ProjectError(f"cannot import seed script {script}")
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        if not hasattr(module, "generate"):
            raise ProjectError(f"seed script {script} must define generate(project_dir, *, scale, seed)")
        result: dict[str, int] = module.generate(self.config.root, scale=scale, seed=seed)
        return result

    def select_views(self, *, select: str | None = None, exclude: str | None = None) -> list[str]:
        """The feature views a dbt-style selection picks, in definition order (see `fsql.graph`).

        Returns [] when known names match no view; raises SelectionError for an unknown name.
        """
        return select_views(self.definitions, select=select, exclude=exclude)

    def offline_engine(self) -> AbstractContextManager[OfflineEngine]:
        """The target's offline engine for a longer piece of work (`build`): the project's kept one
        when free (`KeptEngine.borrow`), so a warm project does not open one per build."""
        return self._kept.engine.borrow()

    def build(self, options: BuildOptions, *, on_node: Callable[[NodeResult], None] | None = None) -> BuildResult:
        """Validate, compile, write artifacts and materialize the selected online views (`fsql build`)."""
        from fsql.build import build

        return build(self, options, on_node=on_node)

    def online_store(self, *, max_connections: int = 4) -> OnlineStore:
        """A pooled reader of the target's online tables; close it (or use `with`) when done."""
        from fsql.online.embedded import online_url
        from fsql.online.lookup import OnlineStore

        target = self.config.target
        url = online_url(self.config)
        if url is None:
            raise ProjectError(
                f"target '{target.name}' has no online store: add `online: embedded` (a private Postgres under "
                f"target/) or `online: postgresql+psycopg://...` to it in profiles.yml"
            )
        # A plain connection first: one clear error, not the pool's warning per attempt and its timeout.
        probe(url, what=f"the online store of target '{target.name}'")
        return OnlineStore(
            url,
            schema=target.online_schema,
            definitions=self.definitions,
            max_connections=max_connections,
        )

    def get_online_features(
        self,
        entity_rows: Sequence[Mapping[str, Any]],
        *,
        service: str | None = None,
        features: Sequence[str] | None = None,
        full_feature_names: bool | None = None,
        now: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Online feature values for entity rows, in order, from the project's kept online store."""
        return self.kept_store().get_online_features(
            entity_rows, service=service, features=features, full_feature_names=full_feature_names, now=now
        )

    def lookup(
        self,
        entity_rows: Sequence[Mapping[str, Any]],
        *,
        service: str | None = None,
        features: Sequence[str] | None = None,
        full_feature_names: bool | None = None,
        now: datetime | None = None,
    ) -> LookupResult:
        """Online values with their statuses, event times and each view's as_of, in order, from the
        project's kept online store."""
        return self.kept_store().lookup(
            entity_rows, service=service, features=features, full_feature_names=full_feature_names, now=now
        )

    def kept_store(self) -> OnlineStore:
        """The project's own online store: opened on first use, kept until `close()`, following the
        definitions as they change (what `lookup` and `get_online_features` use)."""
        definitions = self.definitions
        with self._lock:
            store = self._kept.store
            if store is None:
                store = self._kept.store = self.online_store()
            if store.definitions is not definitions:
                store.use_definitions(definitions)
            return store

    def skew(self, *, service: str, sample: int = 100, seed: int = 0, at: datetime | None = None) -> SkewReport:
        """Compare online lookups of a service with its training values for `sample` entities
        drawn from the online tables (`fsql skew`; see `fsql.skew.run`); writes run_results.json."""
        from fsql.skew.run import run_skew

        return run_skew(self, service=service, sample=sample, seed=seed, at=at)

    def push(self, view: str, rows: Any, *, to: str = "online") -> PushResult:
        """Write rows of a push-enabled view into its online table, through the upsert `fsql build`
        uses (an older row never replaces a newer one), and with `to="online_and_offline"` append
        them to its folder source as a parquet file, so training sets see them (see `fsql.push`).

        Args:
            rows: a list of mappings, a mapping of column lists, a pyarrow Table or a pandas
                DataFrame, with the view's keys, its features and the source's event time.

        Raises:
            CompileError: the view takes no pushes, or a row does not fit it (nothing is written).
        """
        from fsql.engines.postgres import connect
        from fsql.online.embedded import online_url
        from fsql.push import push

        url = online_url(self.config)
        if url is None:
            raise ProjectError(f"target '{self.config.target.name}' has no online store to push to")
        with connect(url, autocommit=True) as connection:
            return push(
                connection,
                definitions=self.definitions,
                schema=self.config.target.online_schema,
                view=view,
                rows=rows,
                to=to,
                root=self.config.root,
            )

    def describe(self) -> dict[str, Any]:
        """Every definition as JSON-ready data (what `fsql ls` shows)."""
        return artifacts.describe(self.definitions)

    def generate_docs(self) -> Path:
        """Write the catalog to target/docs (index.html and catalog.json) and return the page's path."""
        from fsql.docs import generate_docs

        return generate_docs(self)


class _Kept:
    """A Project's open connections, apart from it so that a finalizer can close them."""

    def __init__(self, engine: KeptEngine) -> None:
        self.engine = engine
        self.store: OnlineStore | None = None

    def close(self) -> None:
        self.engine.close()
        store, self.store = self.store, None
        if store is not None:
            store.close()


def _as_arrow(spine: Any) -> pa.Table:
    if isinstance(spine, pa.Table):
        return spine
    if isinstance(spine, pa.RecordBatchReader):
        return spine.read_all()
    if type(spine).__module__.startswith("pandas"):
        return pa.Table.from_pandas(spine, preserve_index=False)
    raise CompileError(
        f"a spine must be a SELECT, a table name, a parquet/CSV path, a pyarrow Table or a pandas "
        f"DataFrame, not {type(spine).__name__}"
    )

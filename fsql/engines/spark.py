"""The Spark engine (pyspark, the optional extra `spark`): runs compiled SQL, returns arrow.

Offline URLs:
- `spark://local` (or `spark://`): a local session on every core;
- `spark://host:7077`: a standalone cluster's master;
- `?master=...` sets any master pyspark knows (`local[4]`, `yarn`, `k8s://...`), and every
  other query parameter named `spark.*` is set on the session, e.g.
  `spark://local?spark.sql.shuffle.partitions=8`.
Tables are named as Spark names them: `catalog.db.table`, `db.table` or a view name.

If a session is already active in the process, the engine uses it (and leaves it open
on close); otherwise it creates one and stops it on close. Either way the session time
zone is UTC, so that naive timestamps compare as UTC instants.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlalchemy.engine import make_url

from fsql.engines import WholeResultBatches
from fsql.errors import ExecutionError, ProjectError

UTC_CONF = {"spark.sql.session.timeZone": "UTC"}
# Set only when fsql starts the JVM: its default zone then matches the session's.
LAUNCH_CONF = {"spark.driver.extraJavaOptions": "-Duser.timezone=UTC", "spark.ui.showConsoleProgress": "false"}


def session_settings(url: str) -> tuple[str, dict[str, str]]:
    """The master and the `spark.*` settings of an offline URL.

    Example:
        >>> session_settings("spark://local?spark.sql.shuffle.partitions=8")
        ('local[*]', {'spark.sql.shuffle.partitions': '8'})
        >>> session_settings("spark://10.0.0.5:7077")[0]
        'spark://10.0.0.5:7077'
    """
    parsed = make_url(url)
    query = {key: str(value) for key, value in parsed.query.items()}
    unknown = sorted(key for key in query if key != "master" and not key.startswith("spark."))
    if unknown:
        raise ProjectError(
            f"Spark URL '{url}': unknown parameter(s) {', '.join(unknown)}; use master=... or spark.* settings"
        )
    if "master" in query:
        master = query.pop("master")
    elif parsed.host in (None, "", "local"):
        master = "local[*]"
    else:
        master = f"spark://{parsed.host}:{parsed.port or 7077}"
    return master, query


class SparkEngine(WholeResultBatches):
    dialect = "spark"
    keepable = True

    def __init__(self, url: str, *, root: Path) -> None:
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            raise ProjectError(
                "the Spark target needs pyspark: pip install 'fsql[spark]' (and Java 17 or newer)"
            ) from None
        self.url = url
        self.root = root
        master, settings = session_settings(url)
        active = SparkSession.getActiveSession()
        self._owns_session = active is None
        if active is None:
            builder = SparkSession.builder.master(master).appName("fsql")
            for key, value in {**LAUNCH_CONF, **settings, **UTC_CONF}.items():
                builder = builder.config(key, value)
            active = builder.getOrCreate()
        self._use(active, settings)

    @classmethod
    def from_session(cls, session: Any) -> SparkEngine:
        """An engine on a session the caller owns (a notebook's `spark`); close() leaves it open."""
        engine = cls.__new__(cls)
        engine.url = "spark://"
        engine.root = Path.cwd()
        engine._owns_session = False
        engine._use(session, {})
        return engine

    def _use(self, session: Any, settings: dict[str, str]) -> None:
        self.session = session
        for key, value in {**settings, **UTC_CONF}.items():
            if key not in LAUNCH_CONF and not key.startswith("spark.driver."):
                session.conf.set(key, value)

    def register_arrow(self, name: str, table: pa.Table) -> None:
        """A temporary view of an arrow table; naive timestamps stay TIMESTAMP_NTZ, so they come back naive."""
        from pyspark.sql.pandas.types import from_arrow_schema

        schema = from_arrow_schema(table.schema, prefer_timestamp_ntz=True)
        self.session.createDataFrame(table, schema=schema).createOrReplaceTempView(name)

    def result_columns(self, sql: str) -> tuple[str, ...]:
        with self._failures():
            return tuple(self.session.sql(sql).columns)  # analysed, not run

    def result_types(self, sql: str) -> tuple[tuple[str, str], ...]:
        """Types as Spark SQL writes them (`bigint`, `timestamp_ntz`), from the analysed plan."""
        with self._failures():
            schema = self.session.sql(sql).schema
        return tuple((field.name, field.dataType.simpleString()) for field in schema.fields)

    def query_arrow(
        self, sql: str, *, params: dict[str, Any] | None = None, sql_path: Path | None = None, node: str | None = None
    ) -> pa.Table:
        """Run a query; `params` bind its named markers (`:name`)."""
        with self._failures(node=node, sql_path=sql_path):
            table: pa.Table = self.session.sql(sql, args=params or None).toArrow()
        return table

    def execute(self, sql: str) -> None:
        with self._failures():
            self.session.sql(sql).collect()

    @contextlib.contextmanager
    def _failures(self, *, node: str | None = None, sql_path: Path | None = None) -> Iterator[None]:
        """Spark's errors as ExecutionError: the first line of its message, without the JVM stack."""
        from py4j.protocol import Py4JError
        from pyspark.errors import PySparkException

        try:
            yield
        except (PySparkException, Py4JError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ExecutionError(f"Spark failed: {first}", node=node, sql_path=sql_path) from None

    def is_database(self, postgres_url: str) -> bool:
        return False

    def broken(self) -> bool:
        return False

    def close(self) -> None:
        if self._owns_session:
            self.session.stop()

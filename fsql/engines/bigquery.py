"""The BigQuery engine (google-cloud-bigquery, the optional extra `bigquery`): runs SQL, returns arrow.

Offline URL: `bigquery://<project>[/<dataset>][?location=EU]`, as sqlalchemy-bigquery
writes it. Credentials are Google's Application Default Credentials (`gcloud auth
application-default login`, or GOOGLE_APPLICATION_CREDENTIALS); none sit in the URL.
Tables are named as BigQuery names them: `project.dataset.table`, or `dataset.table` in
the URL's project; the URL's dataset is the queries' default dataset.

A spine handed over as arrow (or pandas) is loaded into `<dataset>.<name>`, replacing it,
and expires after a day: that needs the dataset in the URL. `api_endpoint=` points the
client at another endpoint (a local emulator), with anonymous credentials.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlalchemy.engine import make_url

from fsql.engines import WholeResultBatches
from fsql.errors import ExecutionError, ProjectError

SPINE_EXPIRY = timedelta(days=1)
_ARROW_TYPES = (
    (pa.types.is_boolean, "BOOL"),
    (pa.types.is_integer, "INT64"),
    (pa.types.is_floating, "FLOAT64"),
    (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t), "STRING"),
    (pa.types.is_timestamp, "TIMESTAMP"),
    (pa.types.is_date, "DATE"),
    (pa.types.is_decimal, "NUMERIC"),
    (pa.types.is_binary, "BYTES"),
)
_PARAMETER_TYPES = ((bool, "BOOL"), (int, "INT64"), (float, "FLOAT64"), (datetime, "TIMESTAMP"), (date, "DATE"))


def connection_settings(url: str) -> dict[str, str | None]:
    """Project, dataset, location and endpoint of a BigQuery URL.

    Example:
        >>> connection_settings("bigquery://my-project/features?location=EU")["dataset"]
        'features'
    """
    parsed = make_url(url)
    query = {key: str(value) for key, value in parsed.query.items()}
    unknown = sorted(set(query) - {"location", "api_endpoint"})
    if unknown:
        raise ProjectError(
            f"BigQuery URL '{url}': unknown parameter(s) {', '.join(unknown)}; known: location, api_endpoint"
        )
    if not parsed.host:
        raise ProjectError(f"BigQuery URL '{url}' names no project: write bigquery://<project>[/<dataset>]")
    return {
        "project": parsed.host,
        "dataset": parsed.database or None,
        "location": query.get("location"),
        "api_endpoint": query.get("api_endpoint"),
    }


def bigquery_schema(bigquery: Any, schema: pa.Schema) -> list[Any]:
    """BigQuery columns for an arrow schema (the types a spine has)."""
    fields = []
    for field in schema:
        kind = next((name for test, name in _ARROW_TYPES if test(field.type)), None)
        if kind is None:
            raise ProjectError(
                f"spine column '{field.name}' has type {field.type}, which fsql cannot load into BigQuery"
            )
        if kind == "TIMESTAMP" and field.type.tz is None:
            kind = "DATETIME"
        fields.append(bigquery.SchemaField(field.name, kind))
    return fields


# A schema's legacy type names -> standard SQL's (sqlglot reads INTEGER as a 32-bit INT).
_STANDARD_TYPES = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL", "RECORD": "STRUCT"}


def standard_type(field: Any) -> str:
    """A schema field's type in standard SQL, e.g. INT64, or ARRAY<STRING> for a repeated STRING.

    Example:
        >>> from types import SimpleNamespace
        >>> standard_type(SimpleNamespace(field_type="INTEGER", mode="REPEATED"))
        'ARRAY<INT64>'
    """
    kind = _STANDARD_TYPES.get(field.field_type, field.field_type)
    return f"ARRAY<{kind}>" if field.mode == "REPEATED" else kind


class BigQueryEngine(WholeResultBatches):
    dialect = "bigquery"
    keepable = True

    def __init__(self, url: str, *, root: Path) -> None:
        try:
            from google.cloud import bigquery
        except ImportError:
            raise ProjectError("the BigQuery target needs its client: pip install 'fsql[bigquery]'") from None
        self._bigquery = bigquery
        self.url = url
        self.root = root
        self.settings = connection_settings(url)
        options: dict[str, Any] = {"project": self.settings["project"], "location": self.settings["location"]}
        if self.settings["api_endpoint"]:
            from google.api_core.client_options import ClientOptions
            from google.auth.credentials import AnonymousCredentials

            options["client_options"] = ClientOptions(api_endpoint=self.settings["api_endpoint"])
            options["credentials"] = AnonymousCredentials()
        self.client = bigquery.Client(**options)

    @property
    def dataset(self) -> str | None:
        dataset = self.settings["dataset"]
        return f"{self.settings['project']}.{dataset}" if dataset else None

    def register_arrow(self, name: str, table: pa.Table) -> None:
        """Load `table` into `<dataset>.<name>` (replacing it; it expires after a day)."""
        import pyarrow.parquet as pq

        if self.dataset is None:
            raise ProjectError(
                f"to use an arrow or pandas spine on BigQuery, add a dataset to the target URL "
                f"(bigquery://{self.settings['project']}/<dataset>); or give the spine as a table or a SELECT"
            )
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        buffer.seek(0)
        config = self._bigquery.LoadJobConfig(source_format="PARQUET", write_disposition="WRITE_TRUNCATE")
        created = self._bigquery.Table(f"{self.dataset}.{name}", schema=bigquery_schema(self._bigquery, table.schema))
        created.expires = datetime.now(UTC) + SPINE_EXPIRY
        with self._failures():
            # Created with its schema first: a naive timestamp stays DATETIME (read as UTC by fsql's SQL).
            self.client.delete_table(created.reference, not_found_ok=True)
            self.client.create_table(created)
            self.client.load_table_from_file(buffer, created.reference, job_config=config).result()

    def result_columns(self, sql: str) -> tuple[str, ...]:
        """The columns of a query, from a dry run (which reads no data and costs nothing)."""
        config = self._job_config(dry_run=True, use_query_cache=False)
        with self._failures():
            job = self.client.query(sql, job_config=config)
        if job.schema:
            return tuple(field.name for field in job.schema)
        return tuple(self.query_arrow(sql).column_names)  # an endpoint whose dry run has no schema

    def result_types(self, sql: str) -> tuple[tuple[str, str], ...]:
        """Types in standard SQL names (INT64, not INTEGER), from a dry run."""
        config = self._job_config(dry_run=True, use_query_cache=False)
        with self._failures():
            job = self.client.query(sql, job_config=config)
        return tuple((field.name, standard_type(field)) for field in job.schema or ())

    def query_arrow(
        self, sql: str, *, params: dict[str, Any] | None = None, sql_path: Path | None = None, node: str | None = None
    ) -> pa.Table:
        """Run a query; `params` bind its named parameters (`@name`)."""
        config = self._job_config(query_parameters=[self._parameter(k, v) for k, v in (params or {}).items()])
        with self._failures(node=node, sql_path=sql_path):
            rows = self.client.query(sql, job_config=config).result()
            # The Storage Read API is faster for large results; it is not there behind an emulator.
            table: pa.Table = rows.to_arrow(create_bqstorage_client=not self.settings["api_endpoint"])
        return table

    def execute(self, sql: str) -> None:
        with self._failures():
            self.client.query(sql, job_config=self._job_config()).result()

    def is_database(self, postgres_url: str) -> bool:
        return False

    def broken(self) -> bool:
        return False

    def close(self) -> None:
        self.client.close()

    def _job_config(self, **options: Any) -> Any:
        if self.dataset is not None:
            options["default_dataset"] = self.dataset
        return self._bigquery.QueryJobConfig(**options)

    def _parameter(self, name: str, value: Any) -> Any:
        kind = next((kind for python, kind in _PARAMETER_TYPES if isinstance(value, python)), "STRING")
        if isinstance(value, datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)  # a naive timestamp is UTC
        return self._bigquery.ScalarQueryParameter(name, kind, value)

    @contextlib.contextmanager
    def _failures(self, *, node: str | None = None, sql_path: Path | None = None) -> Iterator[None]:
        from google.api_core.exceptions import GoogleAPIError
        from google.auth.exceptions import GoogleAuthError

        try:
            yield
        except (GoogleAPIError, GoogleAuthError) as exc:
            raise ExecutionError(f"BigQuery failed: {exc}", node=node, sql_path=sql_path) from None

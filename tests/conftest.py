"""Shared fixtures: the example project (copied and seeded), and the golden-file switch."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from online_helpers import OPEN_CLIENTS
from postgres_server import POSTGRES_DSN_VAR, configured_dsn, connection_error, start_throwaway_server

import fsql

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_FILES = ("fsql_project.yml", "profiles.yml", "definitions", "templates")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Every test that asks for Postgres is marked, so `-m "not postgres"` leaves them out.
    for item in items:
        if "postgres_dsn" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="Rewrite tests/golden/ from the compiler's output.")


@pytest.fixture(autouse=True)
def _close_serving_clients() -> Iterator[None]:
    """End the lifespan of every `online_helpers.serving_client` a test opened."""
    yield
    while OPEN_CLIENTS:
        OPEN_CLIENTS.pop().__exit__(None, None, None)


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


def copy_example_project(destination: Path) -> Path:
    destination.mkdir(parents=True, exist_ok=True)
    for name in EXAMPLE_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, destination / name)
    return destination


@pytest.fixture(scope="session")
def seeded_example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the example project with its data generated at a small scale (read-only use)."""
    root = copy_example_project(tmp_path_factory.mktemp("example"))
    fsql.load_project(root).seed(scale=0.2, seed=7)
    return root


@pytest.fixture
def example_copy(tmp_path: Path) -> Path:
    """A fresh, unseeded copy of the example project to modify."""
    return copy_example_project(tmp_path / "project")


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """A libpq DSN of a real Postgres: FSQL_TEST_POSTGRES_DSN, or a throwaway server."""
    dsn = configured_dsn()
    error = connection_error(dsn)
    if error is None:
        yield dsn
        return
    try:
        started, stop = start_throwaway_server()
    except Exception as exc:
        message = (
            f"no Postgres at {dsn} ({error}), and starting a throwaway one failed ({exc}); "
            f"set {POSTGRES_DSN_VAR} to a server's DSN"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield started
    finally:
        stop()


@pytest.fixture
def postgres_schema(postgres_dsn: str) -> Iterator[str]:
    """A fresh schema for one test, dropped afterwards."""
    import uuid

    import psycopg

    schema = f"fsql_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')

"""Shared fixtures: the example project (copied and seeded), and the golden-file switch."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import fsql

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_FILES = ("fsql_project.yml", "profiles.yml", "definitions", "templates")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="Rewrite tests/golden/ from the compiler's output.")


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

"""A DuckDB target's `settings:` reach the session; DuckDB's refusals name the line of profiles.yml.

Spilling is the point of two of them: with a `memory_limit` below what a query needs, DuckDB
writes to `temp_directory` (by default under the project's target/) instead of failing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import fsql
from fsql.engines import open_engine
from fsql.project import load_project_config

PROFILES = """\
demo:
  target: dev
  outputs:
    dev:
      offline: "duckdb:///:memory:"
      settings:
{settings}
"""


def project(root: Path, settings: str) -> Path:
    (root / "definitions").mkdir(parents=True)
    (root / "fsql_project.yml").write_text("name: demo\n")
    indented = "".join(f"        {line}\n" for line in settings.splitlines())
    (root / "profiles.yml").write_text(PROFILES.format(settings=indented.rstrip("\n")))
    return root


def session(root: Path, *names: str) -> dict[str, object]:
    config = load_project_config(root)
    engine = open_engine(config.target, config.root)
    try:
        columns = ", ".join(f"current_setting('{name}') AS {name}" for name in names)
        return engine.query_arrow(f"SELECT {columns}").to_pylist()[0]
    finally:
        engine.close()


@pytest.fixture(autouse=True)
def _no_profiles_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FSQL_PROFILES_DIR", raising=False)


def test_settings_reach_the_session(tmp_path: Path) -> None:
    root = project(tmp_path, "memory_limit: 512MiB\nthreads: 1\npreserve_insertion_order: false")
    found = session(root, "memory_limit", "threads", "preserve_insertion_order")
    assert found == {"memory_limit": "512.0 MiB", "threads": 1, "preserve_insertion_order": False}


def test_temp_directory_defaults_to_the_target_dir(tmp_path: Path) -> None:
    root = project(tmp_path, "threads: 1")
    assert session(root, "temp_directory") == {"temp_directory": str(root.resolve() / "target" / "duckdb_tmp")}


def test_a_relative_temp_directory_is_taken_from_the_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(tmp_path / "p", "temp_directory: scratch/spill")
    monkeypatch.chdir(tmp_path)
    assert session(root, "temp_directory") == {"temp_directory": str(root.resolve() / "scratch" / "spill")}


def test_an_unknown_setting_names_its_line_and_the_closest_name(tmp_path: Path) -> None:
    root = project(tmp_path, "threads: 1\nmemory_limt: 1GB")
    with pytest.raises(fsql.ProjectError) as raised:
        session(root, "memory_limit")
    assert str(raised.value) == (
        "profiles.yml:8:9: target 'dev': unknown DuckDB setting 'memory_limt'. Did you mean 'memory_limit'? "
        "The names DuckDB knows: SELECT name FROM duckdb_settings()"
    )


@pytest.mark.parametrize(
    ("setting", "words"),
    [
        ("memory_limit: 4XB", "Unknown unit for memory: 'xb'"),
        ("threads: 0", "Must have at least 1 thread"),
        ("threads: many", "Could not convert string 'many'"),
    ],
)
def test_a_bad_value_names_its_line_and_says_what_duckdb_said(tmp_path: Path, setting: str, words: str) -> None:
    root = project(tmp_path, setting)
    name, value = setting.split(": ")
    with pytest.raises(fsql.ProjectError) as raised:
        session(root, "threads")
    message = str(raised.value)
    shown = repr(int(value)) if value.isdigit() else repr(value)
    assert message.startswith(f"profiles.yml:7:9: target 'dev': DuckDB refused {name} {shown}: ")
    assert words in message


def test_a_query_larger_than_the_memory_limit_spills_under_target(tmp_path: Path) -> None:
    """A sort of ~300 MB of rows in 64 MB: refused without a temp directory, done with the default one."""
    sort = "SELECT sum(r) FROM (SELECT i, row_number() OVER (ORDER BY hash(i)) AS r FROM range(10000000) t(i))"
    spilled = project(tmp_path / "spills", "memory_limit: 64MB\nthreads: 1")
    config = load_project_config(spilled)
    engine = open_engine(config.target, config.root)
    try:
        assert engine.query_arrow(sort).to_pylist() == [{"sum(r)": 10_000_000 * 10_000_001 // 2}]
        used = engine.query_arrow("SELECT current_setting('temp_directory') AS d").to_pylist()[0]["d"]
    finally:
        engine.close()
    assert used == str(spilled.resolve() / "target" / "duckdb_tmp")
    config = load_project_config(project(tmp_path / "cannot", "memory_limit: 64MB\nthreads: 1\ntemp_directory: ''"))
    with pytest.raises(fsql.FsqlError):
        engine = open_engine(config.target, config.root)
        try:
            engine.query_arrow(sort)
        finally:
            engine.close()

"""`fsql init` scaffolds a project that validates and trains at once; `fsql debug` checks one."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from online_helpers import online_url
from ruamel.yaml import YAML
from test_exit_codes import closed_port
from typer.testing import CliRunner

from fsql.cli import app
from fsql.schemas import SCHEMA_FILES, load_schema

runner = CliRunner()


@pytest.fixture
def scaffolded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["init", "shop"])
    assert result.exit_code == 0, result.output
    assert "created project 'shop'" in result.stderr
    return tmp_path / "shop"


def test_init_writes_a_project_that_validates_and_trains_at_once(scaffolded: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(scaffolded)
    validated = runner.invoke(app, ["validate"])
    assert validated.exit_code == 0, validated.output
    assert "OK: 1 entity, 1 source, 1 feature view, 1 feature service" in validated.stderr
    trained = runner.invoke(app, ["train", "--service", "churn_prediction", "--spine", "data/labels.csv"])
    assert trained.exit_code == 0, trained.output
    table = pq.read_table(scaffolded / "target" / "training" / "churn_prediction.parquet")
    assert table.num_rows == 15
    assert table.column_names == [
        "customer_id",
        "event_timestamp",
        "churned",
        "orders_7d",
        "spend_7d",
        "avg_order_value",
        "is_member",
    ]
    rows = {(r["customer_id"], r["event_timestamp"].day): r for r in table.to_pylist()}
    assert rows[(3, 16)]["orders_7d"] == 3 and rows[(3, 16)]["spend_7d"] == 120.32  # the snapshot of Jan 14
    assert rows[(5, 8)]["orders_7d"] is None  # no snapshot of customer 5


def test_init_is_deterministic_and_names_the_project(scaffolded: Path, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    again = tmp_path / "again"
    again.mkdir()
    monkeypatch.chdir(again)
    assert runner.invoke(app, ["init", "shop"]).exit_code == 0
    files = sorted(p.relative_to(scaffolded) for p in scaffolded.rglob("*") if p.is_file())
    assert [p.read_bytes() for p in map(scaffolded.joinpath, files)] == [
        p.read_bytes() for p in map((again / "shop").joinpath, files)
    ]
    assert {str(p) for p in files} >= {".gitignore", "README.md", "data/customer_stats.csv", "data/labels.csv"}
    assert "name: shop\n" in (scaffolded / "fsql_project.yml").read_text()
    assert (scaffolded / "profiles.yml").read_text().count("shop:") == 1
    assert "__project_name__" not in "".join(p.read_text() for p in map(scaffolded.joinpath, files))


def test_the_scaffolds_files_pass_the_schemas_they_name(scaffolded: Path) -> None:
    from jsonschema import Draft202012Validator

    yaml_files = sorted(scaffolded.rglob("*.yml"))
    assert len(yaml_files) == 6
    for path in yaml_files:
        first = path.read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), path
        named = (path.parent / first.split("$schema=")[1]).resolve()
        kind = {v: k for k, v in SCHEMA_FILES.items()}[named.name]
        assert json.loads(named.read_text()) == load_schema(kind)
        assert list(Draft202012Validator(load_schema(kind)).iter_errors(YAML(typ="safe").load(path.read_text()))) == []


def test_init_without_a_name_writes_my_features(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["init"]).exit_code == 0
    assert (tmp_path / "my_features" / "fsql_project.yml").is_file()


def test_init_refuses_a_directory_with_files(scaffolded: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (scaffolded / "definitions" / "views.yml").write_text("# mine\n")
    monkeypatch.chdir(scaffolded.parent)
    result = runner.invoke(app, ["init", "shop"])
    assert result.exit_code == 2
    assert "shop already exists and is not an empty directory" in result.stderr
    assert (scaffolded / "definitions" / "views.yml").read_text() == "# mine\n"


def test_init_writes_into_an_empty_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "shop").mkdir()
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["init", "shop"]).exit_code == 0


def test_init_refuses_a_name_that_is_not_a_project_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["init", "My Shop"])
    assert result.exit_code == 2
    assert "'My Shop' is not a valid project name" in result.stderr and "fsql init my_shop" in result.stderr
    assert list(tmp_path.iterdir()) == []


def enable_online_target(project: Path, dsn: str, schema: str) -> None:
    """Uncomment the scaffold's example online target, as the README walkthrough says."""
    profiles = project / "profiles.yml"
    lines = profiles.read_text().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith("    # postgres:"))
    lines[start:] = [line.replace("# ", "", 1) for line in lines[start:]]
    profiles.write_text("".join(lines).replace("fsql_online", schema))


def test_the_walkthrough_from_init_to_a_lookup_on_the_embedded_store(
    scaffolded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(scaffolded)
    built = runner.invoke(app, ["build"])
    assert built.exit_code == 0, built.output
    assert "success  customer_activity  4 of 4 rows upserted" in built.stderr
    got = runner.invoke(app, ["get", "--service", "churn_prediction", "-e", "customer_id=3"])
    assert got.exit_code == 0, got.output
    assert json.loads(got.stdout) == [
        {"customer_id": 3, "orders_7d": 1, "spend_7d": 50.13, "avg_order_value": 50.13, "is_member": True}
    ]
    checked = runner.invoke(app, ["debug"])
    assert "online store    OK    embedded Postgres under target/postgres" in checked.stderr


def test_the_walkthrough_on_a_shared_postgres_target(
    scaffolded: Path, postgres_dsn: str, postgres_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    enable_online_target(scaffolded, postgres_dsn, postgres_schema)
    monkeypatch.chdir(scaffolded)
    monkeypatch.setenv("FSQL_ONLINE_URL", online_url(postgres_dsn))
    built = runner.invoke(app, ["build", "-t", "postgres"])
    assert built.exit_code == 0, built.output
    assert "success  customer_activity  4 of 4 rows upserted" in built.stderr
    got = runner.invoke(app, ["get", "-t", "postgres", "--service", "churn_prediction", "-e", "customer_id=3"])
    assert got.exit_code == 0, got.output
    assert json.loads(got.stdout) == [
        {"customer_id": 3, "orders_7d": 1, "spend_7d": 50.13, "avg_order_value": 50.13, "is_member": True}
    ]
    checked = runner.invoke(app, ["debug", "-t", "postgres"])
    assert checked.exit_code == 0, checked.output
    assert f"online store    OK    Postgres at {online_url(postgres_dsn)}" in checked.stderr


def test_debug_checks_each_part_on_its_own_line(scaffolded: Path) -> None:
    result = runner.invoke(app, ["debug", "--project-dir", str(scaffolded)])
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[1].startswith("project file    OK    ") and lines[1].endswith("fsql_project.yml (project 'shop')")
    assert lines[2].startswith("profile         OK    target 'dev' (duckdb) from ")
    assert lines[3] == "offline engine  OK    duckdb: connected to duckdb:///:memory: and ran SELECT 1"
    assert lines[4] == "online store    OK    embedded Postgres under target/postgres, schema fsql_online"
    assert lines[5] == "all checks passed"


def test_debug_of_a_target_without_an_online_store_says_how_to_add_one(scaffolded: Path) -> None:
    profiles = scaffolded / "profiles.yml"
    profiles.write_text(profiles.read_text().replace("      online: embedded", "", 1))
    result = runner.invoke(app, ["debug", "--project-dir", str(scaffolded)])
    assert result.exit_code == 0, result.output
    assert "online store    -     not configured: add `online: postgresql+psycopg://" in result.stderr


def test_debug_without_a_project_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["debug", "--project-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "project file    FAIL  no fsql_project.yml in" in result.stderr
    assert "profile         -     not checked" in result.stderr
    assert "1 check of 4 failed" in result.stderr


def test_debug_names_a_broken_project_file(scaffolded: Path) -> None:
    (scaffolded / "fsql_project.yml").write_text("name: shop\nprofil: shop\n")
    result = runner.invoke(app, ["debug", "--project-dir", str(scaffolded)])
    assert result.exit_code == 2
    assert "project file    FAIL  fsql_project.yml:2:1: project 'shop': unknown key 'profil'" in result.stderr


def test_debug_names_a_missing_target(scaffolded: Path) -> None:
    result = runner.invoke(app, ["debug", "--project-dir", str(scaffolded), "-t", "prod"])
    assert result.exit_code == 2
    assert "project file    OK" in result.stderr
    assert "profile         FAIL  profiles.yml: profile 'shop' has no target 'prod'" in result.stderr


def test_debug_of_an_unreachable_store_fails_without_the_password(scaffolded: Path) -> None:
    profiles = scaffolded / "profiles.yml"
    url = f"postgresql+psycopg://fsql:hunter2-secret@127.0.0.1:{closed_port()}/db"
    profiles.write_text(profiles.read_text() + f"    down:\n      online: '{url}'\n")
    result = runner.invoke(app, ["debug", "--project-dir", str(scaffolded), "-t", "down"])
    assert result.exit_code == 2
    assert "offline engine  OK" in result.stderr
    assert "online store    FAIL  cannot connect to the online store of target 'down'" in result.stderr
    assert "hunter2-secret" not in result.output

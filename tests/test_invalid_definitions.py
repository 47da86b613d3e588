"""Negative fixtures: every bad input a user can write gets one exact, located error.

Each `tests/fixtures/invalid/<case>.yml` is one broken definition file whose header says
what validating it must raise (a `DefinitionError`):

    # error: <the message as str(exc) gives it, first line>
    #| <each further line of the message, for multi-line messages>
    # at: <the text at the error's line:col, whenever the message has a column>

The test copies `tests/fixtures/valid_project` to tmp_path, puts the broken templates of
`tests/fixtures/invalid/templates/` under its `templates/invalid/`, adds the case as
`definitions/broken.yml`, and validates. Cases that need a changed fsql_project.yml or
profiles.yml are built in this module (`PROJECT_CASES`).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import fsql

FIXTURES = Path(__file__).parent / "fixtures"
VALID_PROJECT = FIXTURES / "valid_project"
INVALID = FIXTURES / "invalid"
CASES = sorted(INVALID.glob("*.yml"))

Setup = Callable[[Path, pytest.MonkeyPatch], None]


@dataclass(frozen=True)
class Expected:
    message: str
    at: str | None = None


def read_expected(case: Path) -> Expected:
    """The expected error written in a fixture's header comment."""
    lines = case.read_text(encoding="utf-8").splitlines()
    assert lines and lines[0].startswith("# error: "), f"{case.name}: the first line must be '# error: <message>'"
    message = [lines[0].removeprefix("# error: ")]
    at = None
    for line in lines[1:]:
        if line.startswith("#| "):
            message.append(line.removeprefix("#| "))
        elif line.startswith("# at: "):
            at = line.removeprefix("# at: ")
        else:
            break
    return Expected("\n".join(message), at)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the valid project, with the broken templates the cases refer to."""
    monkeypatch.delenv("FSQL_PROFILES_DIR", raising=False)
    root = tmp_path / "project"
    shutil.copytree(VALID_PROJECT, root)
    shutil.copytree(INVALID / "templates", root / "templates" / "invalid")
    return root


def test_valid_project_is_valid(project: Path) -> None:
    definitions = fsql.load_project(project, data_checks=False).validate()
    assert sorted(definitions.entities) == ["customer", "store"]
    assert sorted(definitions.sources) == ["orders", "paid_orders", "store_daily"]
    assert sorted(definitions.feature_views) == ["customer_orders", "customer_store", "store_sales"]
    assert sorted(definitions.feature_services) == ["checkout"]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_invalid_definition(project: Path, case: Path) -> None:
    expected = read_expected(case)
    shutil.copy(case, project / "definitions" / "broken.yml")
    with pytest.raises(fsql.DefinitionError) as raised:
        fsql.load_project(project, data_checks=False).validate()
    error = raised.value
    assert str(error) == expected.message
    if error.line is not None and error.col is not None:
        assert expected.at is not None, f"{case.name}: add '# at: <text at {error.line}:{error.col}>'"
        assert error.path is not None
        text = (project / error.path).read_text(encoding="utf-8").splitlines()[error.line - 1]
        assert text[error.col - 1 :].startswith(expected.at), f"{error.path}:{error.line}:{error.col} is at {text!r}"
    else:
        assert expected.at is None, f"{case.name}: the error has no column, so '# at:' cannot be checked"


# Project-level cases: a changed fsql_project.yml or profiles.yml, or load options.


@dataclass(frozen=True)
class ProjectCase:
    setup: Setup
    error: type[fsql.FsqlError]
    message: str  # "{root}" stands for the project directory
    load: dict[str, Any] = field(default_factory=dict)


PROJECT_CASES: dict[str, ProjectCase] = {}


def project_case(error: type[fsql.FsqlError], message: str, **load: Any) -> Callable[[Setup], Setup]:
    def register(setup: Setup) -> Setup:
        PROJECT_CASES[setup.__name__] = ProjectCase(setup, error, message, load)
        return setup

    return register


def replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} is not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@project_case(
    fsql.ProjectError,
    "no fsql_project.yml in {root} or any parent directory: run fsql from a project directory, or pass --project-dir",
)
def missing_project_file(root: Path, env: pytest.MonkeyPatch) -> None:
    (root / "fsql_project.yml").unlink()


@project_case(
    fsql.ProjectError,
    "fsql_project.yml:4:1: invalid YAML: key 'name' appears twice in one mapping: keep one of them\n"
    "  2 | name: shop\n"
    "  3 | dialect: duckdb\n"
    "> 4 | name: shop_v2\n"
    "  5 | vars:\n"
    "  6 |   min_amount: 5",
)
def project_duplicate_key(root: Path, env: pytest.MonkeyPatch) -> None:
    replace(root / "fsql_project.yml", "dialect: duckdb\n", "dialect: duckdb\nname: shop_v2\n")


@project_case(
    fsql.ProjectError,
    "fsql_project.yml:3:1: project 'shop': unknown key 'dialekt'. Did you mean 'dialect'? "
    "Allowed keys: name, profile, definitions, templates, target-path, dialect, vars, seed.",
)
def project_unknown_key(root: Path, env: pytest.MonkeyPatch) -> None:
    replace(root / "fsql_project.yml", "dialect:", "dialekt:")


@project_case(
    fsql.ProjectError,
    "fsql_project.yml:2:1: project: missing required key 'name': add 'name: my_project' (lowercase, no spaces)",
)
def project_missing_name(root: Path, env: pytest.MonkeyPatch) -> None:
    replace(root / "fsql_project.yml", "name: shop\n", "")


@project_case(
    fsql.ProjectError,
    "fsql_project.yml:3:10: project 'shop': unknown dialect 'duckbd'. Did you mean 'duckdb'? "
    "Write a sqlglot dialect name such as duckdb, postgres, bigquery or snowflake",
)
def project_unknown_dialect(root: Path, env: pytest.MonkeyPatch) -> None:
    replace(root / "fsql_project.yml", "dialect: duckdb", "dialect: duckbd")


@project_case(
    fsql.ProjectError,
    "fsql_project.yml:5:3: project 'shop': 'vars' must be a mapping, not a list",
)
def project_vars_not_mapping(root: Path, env: pytest.MonkeyPatch) -> None:
    replace(root / "fsql_project.yml", "  min_amount: 5", "  - min_amount")


@project_case(
    fsql.ProjectError,
    "the definitions directory defs does not exist: create it, or set 'definitions:' in fsql_project.yml",
)
def definitions_dir_missing(root: Path, env: pytest.MonkeyPatch) -> None:
    replace(root / "fsql_project.yml", "dialect: duckdb", "dialect: duckdb\ndefinitions: defs")


@project_case(
    fsql.ProjectError,
    "profiles.yml: no profile named 'shop' (the project's 'profile', or its name). Did you mean 'shops'? "
    "Add a top-level 'shop:' entry.",
)
def profile_missing(root: Path, env: pytest.MonkeyPatch) -> None:
    replace(root / "profiles.yml", "shop:", "shops:")


@project_case(
    fsql.ProjectError,
    "profiles.yml:2:11: profile 'shop' has no target 'deev'. Did you mean 'dev'? Targets: dev, ci.",
)
def unknown_target_in_profile(root: Path, env: pytest.MonkeyPatch) -> None:
    replace(root / "profiles.yml", "target: dev", "target: deev")


@project_case(
    fsql.ProjectError,
    "profiles.yml: profile 'shop' has no target 'cii'. Did you mean 'ci'? Targets: dev, ci.",
    target="cii",
)
def unknown_target_option(root: Path, env: pytest.MonkeyPatch) -> None:
    pass


@project_case(
    fsql.ProjectError,
    "profiles.yml:5:7: target 'dev': unknown key 'ofline'. Did you mean 'offline'? "
    "Allowed keys: offline, online, dialect, online_schema, settings.",
)
def unknown_target_key(root: Path, env: pytest.MonkeyPatch) -> None:
    replace(root / "profiles.yml", "offline:", "ofline:")


@project_case(
    fsql.ProjectError,
    "profiles.yml:5:16: target 'dev': 'offline' is not a connection URL: 'duckdb//target/dev.duckdb'. "
    "Write it as SQLAlchemy does, e.g. duckdb:///path.duckdb, postgresql+psycopg://user@host:5432/db "
    "or bigquery://project",
)
def bad_url(root: Path, env: pytest.MonkeyPatch) -> None:
    replace(root / "profiles.yml", '"duckdb:///:memory:"', '"duckdb//target/dev.duckdb"')


@project_case(
    fsql.ProjectError,
    "profiles.yml:6:15: target 'dev': 'online' is not a connection URL: 'postgresql//app:*****@db:5432/features'. "
    "Write it as SQLAlchemy does, e.g. duckdb:///path.duckdb, postgresql+psycopg://user@host:5432/db "
    "or bigquery://project",
)
def bad_url_password_masked(root: Path, env: pytest.MonkeyPatch) -> None:
    replace(
        root / "profiles.yml",
        '      offline: "duckdb:///:memory:"\n',
        '      offline: "duckdb:///:memory:"\n      online: "postgresql//app:hunter2@db:5432/features"\n',
    )


@project_case(
    fsql.ProjectError,
    "profiles.yml:5:16: target 'dev': cannot tell the SQL dialect of 'foodb' URLs: set 'dialect:' on the "
    "target (one of bigquery, databricks, duckdb, postgres, snowflake, spark)",
)
def url_unknown_backend(root: Path, env: pytest.MonkeyPatch) -> None:
    replace(root / "profiles.yml", '"duckdb:///:memory:"', '"foodb://warehouse/analytics"')


@project_case(
    fsql.ProjectError,
    "profiles.yml:6:16: target 'dev': unknown dialect 'postgress'. Did you mean 'postgres'? "
    "Write a sqlglot dialect name such as duckdb, postgres, bigquery or snowflake",
)
def target_unknown_dialect(root: Path, env: pytest.MonkeyPatch) -> None:
    replace(
        root / "profiles.yml",
        '      offline: "duckdb:///:memory:"\n',
        '      offline: "foodb://warehouse/analytics"\n      dialect: postgress\n',
    )


@project_case(
    fsql.ProjectError,
    "profiles.yml:5: environment variable 'FSQL_TEST_WAREHOUSE_URL' is not set and "
    "env_var('FSQL_TEST_WAREHOUSE_URL') has no default: export FSQL_TEST_WAREHOUSE_URL=... or write "
    "env_var('FSQL_TEST_WAREHOUSE_URL', 'default')",
)
def env_var_unset(root: Path, env: pytest.MonkeyPatch) -> None:
    env.delenv("FSQL_TEST_WAREHOUSE_URL", raising=False)
    replace(root / "profiles.yml", '"duckdb:///:memory:"', "\"{{ env_var('FSQL_TEST_WAREHOUSE_URL') }}\"")


@project_case(
    fsql.ProjectError,
    "profiles.yml:7:9: target 'dev': setting 'memory_limit' must be a string, a number or true/false, "
    "not a list; e.g. memory_limit: 4GB or threads: 2",
)
def setting_not_a_scalar(root: Path, env: pytest.MonkeyPatch) -> None:
    replace(
        root / "profiles.yml",
        '      offline: "duckdb:///:memory:"\n',
        '      offline: "duckdb:///:memory:"\n      settings:\n        memory_limit: [4GB]\n',
    )


@project_case(
    fsql.ProjectError,
    "profiles.yml:6:17: target 'dev': 'settings' are DuckDB options, and this target runs on postgres: "
    "remove the key, or set the engine's options in its own configuration",
)
def settings_on_a_postgres_target(root: Path, env: pytest.MonkeyPatch) -> None:
    replace(
        root / "profiles.yml",
        '      offline: "duckdb:///:memory:"\n',
        '      offline: "postgresql+psycopg://app@db:5432/warehouse"\n      settings: {memory_limit: 4GB}\n',
    )


SECRET = "s3cr3t-ssl-pass"


@project_case(
    fsql.ProjectError,
    "profiles.yml:5:16: target 'dev': 'offline' is not a connection URL: "
    "'postgresql//app@db:5432/features?sslpassword=*****'. Write it as SQLAlchemy does, e.g. "
    "duckdb:///path.duckdb, postgresql+psycopg://user@host:5432/db or bigquery://project",
)
def secret_in_bad_url(root: Path, env: pytest.MonkeyPatch) -> None:
    env.setenv("FSQL_ENV_SECRET_SSL_PASSWORD", SECRET)
    replace(
        root / "profiles.yml",
        '"duckdb:///:memory:"',
        "\"postgresql//app@db:5432/features?sslpassword={{ env_var('FSQL_ENV_SECRET_SSL_PASSWORD') }}\"",
    )


@project_case(
    fsql.ProjectError,
    "no profiles.yml in elsewhere (from --profiles-dir or FSQL_PROFILES_DIR)",
    profiles_dir="elsewhere",
)
def profiles_dir_without_profiles(root: Path, env: pytest.MonkeyPatch) -> None:
    (root / "elsewhere").mkdir()
    env.chdir(root)


@project_case(
    fsql.ProjectError,
    "target 'ci' requested but no profiles.yml was found in {root} or ~/.fsql: create one, or point "
    "--profiles-dir (or FSQL_PROFILES_DIR) at it",
    target="ci",
)
def target_without_profiles(root: Path, env: pytest.MonkeyPatch) -> None:
    (root / "profiles.yml").unlink()
    env.setenv("HOME", str(root / "home"))


@project_case(
    fsql.DefinitionError,
    "templates/macros/money.sql:2: template syntax error: Encountered unknown tag 'endmacr'. Jinja was "
    "looking for the following tags: 'endmacro'. The innermost block that needs to be closed is 'macro'.",
)
def macro_syntax_error(root: Path, env: pytest.MonkeyPatch) -> None:
    (root / "templates" / "macros" / "money.sql").write_text(
        "{% macro cents(column) %}round({{ column }} * 100)\n{% endmacr %}\n", encoding="utf-8"
    )


@project_case(
    fsql.DefinitionError,
    "definitions/latin1.yml: not UTF-8 text (invalid start byte): save the file as UTF-8",
)
def definition_not_utf8(root: Path, env: pytest.MonkeyPatch) -> None:
    (root / "definitions" / "latin1.yml").write_bytes("entities: []  # Kunden, gr\xfcn\n".encode("latin-1"))


@pytest.mark.parametrize("name", sorted(PROJECT_CASES))
def test_invalid_project(project: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    case = PROJECT_CASES[name]
    case.setup(project, monkeypatch)
    with pytest.raises(fsql.FsqlError) as raised:
        fsql.load_project(project, data_checks=False, **case.load).validate()
    assert type(raised.value) is case.error
    assert str(raised.value) == case.message.replace("{root}", str(project.resolve()))


def test_secret_never_in_error(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_in_bad_url(project, monkeypatch)
    with pytest.raises(fsql.ProjectError) as raised:
        fsql.load_project(project)
    assert SECRET not in str(raised.value)
    assert "*****" in str(raised.value)

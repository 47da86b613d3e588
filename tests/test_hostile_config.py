"""Hostile or careless configuration: each case is refused with a clear, located error.

Templates render in Jinja's sandbox (no way out to Python), YAML anchors and aliases are
bounded (no alias bomb, no recursion error), an empty connection URL is an error rather
than "no online store", and a target's repr hides its password. Each case is written into
a copy of `tests/fixtures/valid_project`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import fsql
from fsql.cli import app
from fsql.project import Target, load_project_config

VALID_PROJECT = Path(__file__).parent / "fixtures" / "valid_project"
NOT_ALLOWED = "which is not allowed in fsql templates: templates may use var(), source(), env_var()"
BOMB_ERROR = "YAML aliases repeat more than 10000 values by here"
DEEP_ERROR = "YAML nested more than 50 levels deep"

runner = CliRunner()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("FSQL_PROFILES_DIR", raising=False)
    root = tmp_path / "project"
    shutil.copytree(VALID_PROJECT, root)
    return root


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


def replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} is not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


# Templates: the sandbox.

# Each escape reaches (or would reach) Python internals; the message says what it tried.
ESCAPES = {
    "cycler_globals": ("cycler.__init__.__globals__.os.getcwd()", "reach '__init__' of an undefined name"),
    "joiner_globals": ("joiner.__init__.__globals__.os.getcwd()", "reach '__init__' of a type value"),
    "str_mro": ("''.__class__.__mro__[1].__subclasses__()", "reach '__class__' of a str value"),
    "self_globals": ("self.__init__.__globals__", "reach '__init__' of a TemplateReference value"),
    "lipsum_globals": ("lipsum.__globals__.os.getcwd()", "'lipsum' is undefined"),
    "config_class": ("config.__class__", "reach '__class__' of an undefined name"),
    "env_var_globals": ("env_var.__globals__.os.getcwd()", "reach '__globals__' of a function value"),
    "var_closure": ("var.__closure__", "reach '__closure__' of a function value"),
    "source_owner": ("source.__self__.config", "reach '__self__' of a method value"),
    "attr_filter": ("''|attr('__class__')", "reach '__class__' of a str value"),
    "format_field": ("'{0.__class__}'.format('')", "reach '__class__' of a str value"),
    "macro_internals": ("day_end._environment", "reach '_environment' of a Macro value"),
    "change_a_var": ("var('tags').append('x')", "reach 'append' of a CommentedSeq value"),
}


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_template_escape_fails_at_its_line(project: Path, name: str) -> None:
    escape, words = ESCAPES[name]
    append(project / "fsql_project.yml", "  tags: [a, b]\n")
    (project / "definitions" / "hostile.yml").write_text(
        "sources:\n"
        "  - name: hostile\n"
        "    sql: |\n"
        "      SELECT 1 AS customer_id, now() AS ts\n"
        f"      WHERE {{{{ {escape} }}}} IS NOT NULL\n"
        "    timestamp: ts\n",
        encoding="utf-8",
    )
    with pytest.raises(fsql.DefinitionError) as raised:
        fsql.load_project(project).validate()
    assert str(raised.value).startswith("definitions/hostile.yml:5: source 'hostile': ")
    assert words in str(raised.value)
    if words.startswith("reach"):  # lipsum is simply gone
        assert NOT_ALLOWED in str(raised.value)


SHELL_ESCAPE = "{{ cycler.__init__.__globals__.os.system('touch escaped') }}"


@pytest.mark.parametrize(
    ("file", "old", "new", "line"),
    [
        ("fsql_project.yml", "  min_amount: 5\n", f'  min_amount: 5\n  shell: "{SHELL_ESCAPE}"\n', 6),
        ("profiles.yml", '"duckdb:///:memory:"', f'"{SHELL_ESCAPE}"', 5),
    ],
    ids=["fsql_project.yml", "profiles.yml"],
)
def test_project_file_template_runs_no_shell_command(
    project: Path, monkeypatch: pytest.MonkeyPatch, file: str, old: str, new: str, line: int
) -> None:
    monkeypatch.chdir(project)
    replace(project / file, old, new)
    with pytest.raises(fsql.ProjectError) as raised:
        load_project_config(project)
    assert str(raised.value).startswith(f"{file}:{line}: the template tried to reach '__init__' of an undefined name")
    assert not (project / "escaped").exists()


def test_template_file_and_macro_are_sandboxed(project: Path) -> None:
    replace(
        project / "templates" / "macros" / "time.sql",
        "date_trunc('day', {{ column }})",
        "date_trunc('day', {{ column }}) {{ column.__class__ }}",
    )
    with pytest.raises(fsql.DefinitionError) as raised:
        fsql.load_project(project).validate()
    assert str(raised.value).startswith(
        "templates/macros/time.sql:2: source 'store_daily': the template tried to reach '__class__' of a str value"
    )


def test_only_harmless_jinja_globals_remain(project: Path) -> None:
    (project / "templates" / "globals.sql").write_text(
        "{% set ns = namespace(n=0) %}{% for i in range(3) %}{% set ns.n = ns.n + i %}{% endfor %}"
        "{% set comma = joiner(', ') %}"
        "SELECT {% for c in dict(customer_id=1, n=ns.n) %}{{ comma() }}{{ c }}{% endfor %}, now() AS ts "
        "FROM (SELECT 1 AS customer_id, {{ ns.n }} AS n)\n",
        encoding="utf-8",
    )
    (project / "definitions" / "globals.yml").write_text(
        "sources:\n  - {name: jinja_globals, template: globals.sql, timestamp: ts}\n", encoding="utf-8"
    )
    fsql.load_project(project, data_checks=False).validate()  # namespace, range, joiner and dict work
    (project / "templates" / "globals.sql").write_text("SELECT {{ lipsum() }} AS ts\n", encoding="utf-8")
    with pytest.raises(fsql.DefinitionError, match="'lipsum' is undefined"):
        fsql.load_project(project).validate()


# YAML: alias bombs, recursion, deep nesting; anchors within bounds keep working.


def alias_bomb(levels: int, indent: str = "") -> str:
    """`levels` anchors, each a list of nine aliases of the one before: 9**levels values."""
    lines = [f'{indent}a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"{indent}a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("levels", [9, 40])
def test_alias_bomb_in_project_vars_fails_fast(project: Path, levels: int) -> None:
    append(project / "fsql_project.yml", "  bomb:\n" + alias_bomb(levels, indent="    "))
    with pytest.raises(fsql.ProjectError) as raised:
        load_project_config(project)
    assert str(raised.value).startswith(f"fsql_project.yml:11:14: {BOMB_ERROR} (*a3 alone stands for 7381)")
    assert "write the values out" in str(raised.value)


@pytest.mark.parametrize("levels", [9, 40])
def test_alias_bomb_in_profiles_fails_fast(project: Path, levels: int) -> None:
    append(project / "profiles.yml", "bombs:\n" + alias_bomb(levels, indent="  "))
    with pytest.raises(fsql.ProjectError, match=rf"^profiles\.yml:\d+:\d+: {BOMB_ERROR}"):
        load_project_config(project)


def test_alias_bomb_in_a_definition_file_fails_fast(project: Path) -> None:
    (project / "definitions" / "bomb.yml").write_text(alias_bomb(9), encoding="utf-8")
    with pytest.raises(fsql.DefinitionError, match=rf"^definitions/bomb\.yml:5:10: {BOMB_ERROR}"):
        fsql.load_project(project).validate()


def test_alias_bomb_in_vars_option_fails_fast(project: Path) -> None:
    bomb = "{" + alias_bomb(9).replace("\n", ", ").rstrip(", ") + "}"
    result = runner.invoke(app, ["--project-dir", str(project), "--vars", bomb, "validate"])
    assert result.exit_code == 2
    assert "--vars:1:" in result.stderr and BOMB_ERROR in result.stderr


def test_alias_inside_its_own_anchor_is_refused(project: Path) -> None:
    append(project / "fsql_project.yml", "  loop: &loop [1, *loop]\n")
    with pytest.raises(fsql.ProjectError, match=r"^fsql_project\.yml:6:19: YAML alias \*loop is inside the value"):
        load_project_config(project)


@pytest.mark.parametrize("file", ["fsql_project.yml", "profiles.yml"])
def test_deep_nesting_is_a_clear_error(project: Path, file: str) -> None:
    append(project / file, "deep: " + "[\n" * 2000 + "]" * 2000 + "\n")
    with pytest.raises(fsql.ProjectError, match=rf"^{file}:\d+:1: {DEEP_ERROR}: no fsql file needs that"):
        load_project_config(project)


def test_deep_nesting_in_vars_option_is_a_clear_error(project: Path) -> None:
    result = runner.invoke(
        app, ["--project-dir", str(project), "--vars", "{a: " + "[" * 2000 + "]" * 2000 + "}", "validate"]
    )
    assert result.exit_code == 2
    assert f"--vars:1:54: {DEEP_ERROR}" in result.stderr


def test_merged_defaults_in_profiles_work(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FSQL_TEST_SCHEMA", "{{ not_a_template }}")  # rendered once, never again
    (project / "profiles.yml").write_text(
        "shop:\n"
        "  target: prod\n"
        "  outputs:\n"
        "    dev: &defaults\n"
        '      offline: "duckdb:///:memory:"\n'
        "      online_schema: \"{{ env_var('FSQL_TEST_SCHEMA') }}\"\n"
        "    prod:\n"
        "      <<: *defaults\n"
        '      online: "postgresql+psycopg://app@db:5432/features"\n'
        "    copy: *defaults\n",
        encoding="utf-8",
    )
    for name in ("dev", "prod", "copy"):
        target = load_project_config(project, target=name).target
        assert (target.offline_url, target.online_schema) == ("duckdb:///:memory:", "{{ not_a_template }}")
    assert load_project_config(project).target.online_url == "postgresql+psycopg://app@db:5432/features"


# Connection URLs: empty is an error; a repr hides the password.


def test_online_url_from_an_unset_env_var_fails_the_build(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FSQL_TEST_ONLINE_URL", raising=False)
    append(
        project / "profiles.yml",
        "    pg:\n      offline: \"duckdb:///:memory:\"\n      online: \"{{ env_var('FSQL_TEST_ONLINE_URL', '') }}\"\n",
    )
    result = runner.invoke(app, ["--project-dir", str(project), "-t", "pg", "build"])
    assert result.exit_code == 2, result.output
    assert (
        "profiles.yml:10:15: target 'pg': 'online' is empty: write a connection URL, or if it reads an environment "
        "variable (env_var('...')), set that variable; remove the key for a target without an online store"
    ) in " ".join(result.stderr.split())


@pytest.mark.parametrize(
    ("key", "without"),
    [("online", "remove the key for a target without an online store"), ("offline", "remove the key to use duckdb")],
)
def test_empty_url_written_out_is_an_error(project: Path, key: str, without: str) -> None:
    append(project / "profiles.yml", f"    empty:\n      {key}: ''\n")
    with pytest.raises(fsql.ProjectError) as raised:
        load_project_config(project, target="empty")
    assert str(raised.value).startswith(f"profiles.yml:9:{9 + len(key)}: target 'empty': '{key}' is empty: ")
    assert without in str(raised.value)


PASSWORD = "hunter2-not-shown"


def test_target_repr_hides_the_password(project: Path) -> None:
    append(
        project / "profiles.yml",
        f'    pg:\n      offline: "postgresql+psycopg://app:{PASSWORD}@db:5432/warehouse"\n'
        f'      online: "postgresql+psycopg://app:{PASSWORD}@db:5432/features"\n',
    )
    config = load_project_config(project, target="pg")
    for shown in (repr(config.target), str(config.target), repr(config)):
        assert PASSWORD not in shown
        assert "postgresql+psycopg://app:*****@db:5432/features" in shown
    assert config.target.online_url == f"postgresql+psycopg://app:{PASSWORD}@db:5432/features"
    assert config.target.offline_url == f"postgresql+psycopg://app:{PASSWORD}@db:5432/warehouse"


def test_target_made_in_python_hides_the_password_too() -> None:
    target = Target("t", "duckdb:///x.duckdb", "duckdb", f"postgresql://u:{PASSWORD}@h/db")
    assert repr(target) == (
        "Target(name='t', offline_url='duckdb:///x.duckdb', dialect='duckdb', "
        "online_url='postgresql://u:*****@h/db', online_schema='fsql_online', online_embedded=False, settings=())"
    )

"""Every table and index fsql makes has a name that fits Postgres's 63 bytes and collides with nothing.

Measured before: a view named `foo__fsql_new` was dropped by `--full-refresh --select foo`;
names of 49+ characters failed every rebuild and full refresh (a truncated `_pkey`); at
63+ characters the staging name truncated to the live table's own name; two views equal
in their first 63 bytes mapped to one table.
"""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

import psycopg
import pytest
from online_helpers import DEFINITIONS, build, stored, t, write_project, write_rows

import fsql
from fsql.errors import DefinitionError


def named(view: str, feature: str = "rate") -> str:
    definitions = DEFINITIONS.replace("  - name: driver_stats\n", f"  - name: {view}\n")
    return definitions.replace("{name: rate, type: double}", f"{{name: {feature}, type: double, expr: rate}}")


def two_views(first: str, second: str) -> str:
    view = named(first)
    block = view[view.index("feature_views:\n") + len("feature_views:\n") :]
    return view + block.replace(f"  - name: {first}\n", f"  - name: {second}\n")


def tables(dsn: str, schema: str) -> set[str]:
    with psycopg.connect(dsn) as connection:
        rows = connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)).fetchall()
    return {row[0] for row in rows}


@pytest.mark.parametrize("size", [62, 63])
def test_names_up_to_63_bytes_survive_create_rebuild_and_full_refresh(
    tmp_path: Path, postgres_dsn: str, postgres_schema: str, size: int
) -> None:
    view = ("v" * size)[:size]
    project = write_project(tmp_path / "p", postgres_dsn, postgres_schema, named(view))
    write_rows(project, [(1, t(2), None, 0.1, "a")])
    for run in (lambda: build(project, t(3)), lambda: build(project, t(3), full_refresh=True)):
        result = run()
        assert result.nodes[0].status == "success", result.nodes[0].message
    write_rows(project, [(1, t(3), None, 0.3, "b"), (2, t(3), None, 0.3, "c")])
    result = build(project, t(4))  # 2 new rows against 1 stored: rebuilt and swapped
    assert "rebuilt and swapped" in result.nodes[0].message
    assert stored(postgres_dsn, postgres_schema, view)[1][:2] == (0.3, "b")
    assert tables(postgres_dsn, postgres_schema) == {view, "_fsql_state"}  # nothing left behind
    rows = fsql.load_project(project).get_online_features(
        [{"driver_id": 2}], features=[f"{view}:rate"], now=t(3, 12).replace(tzinfo=UTC)
    )
    assert rows[0]["rate"] == 0.3


@pytest.mark.parametrize("size", [64, 100])
def test_online_view_names_over_63_bytes_are_refused_at_validate(
    tmp_path: Path, postgres_dsn: str, postgres_schema: str, size: int
) -> None:
    project = write_project(tmp_path / "p", postgres_dsn, postgres_schema, named("v" * size))
    with pytest.raises(DefinitionError) as caught:
        fsql.load_project(project).validate()
    assert f"the name is {size} bytes long" in str(caught.value)
    assert "at most 63 bytes" in str(caught.value) and "shorten the name, or set online: false" in str(caught.value)
    assert str(caught.value).startswith("definitions/defs.yml:")


def test_a_feature_name_over_63_bytes_in_an_online_view_is_refused(
    tmp_path: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    project = write_project(tmp_path / "p", postgres_dsn, postgres_schema, named("driver_stats", "f" * 64))
    with pytest.raises(DefinitionError, match=r"'f{64}' is 64 bytes long"):
        fsql.load_project(project).validate()


def test_multibyte_names_are_refused_as_names(tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> None:
    project = write_project(tmp_path / "p", postgres_dsn, postgres_schema, named("fahrtén_stats"))
    with pytest.raises(DefinitionError, match="'fahrtén_stats' is not a valid name"):
        fsql.load_project(project).validate()


@pytest.mark.parametrize("name", ["_fsql_state", "_fsql_new_x", "_fsqlx"])
def test_names_in_fsqls_reserved_prefix_are_refused(
    tmp_path: Path, postgres_dsn: str, postgres_schema: str, name: str
) -> None:
    project = write_project(tmp_path / "p", postgres_dsn, postgres_schema, named(name))
    with pytest.raises(DefinitionError, match="starts with '_fsql', which fsql reserves"):
        fsql.load_project(project).validate()


@pytest.mark.parametrize("other", ["foo__fsql_new", "foo_pkey", "foo_fsql_new"])
def test_a_full_refresh_or_rebuild_of_one_view_leaves_a_look_alike_view_alone(
    tmp_path: Path, postgres_dsn: str, postgres_schema: str, other: str
) -> None:
    project = write_project(tmp_path / "p", postgres_dsn, postgres_schema, two_views("foo", other))
    write_rows(project, [(1, t(2), None, 0.1, "a")])
    assert {n.status for n in build(project, t(3)).nodes} == {"success"}
    for options in ({"full_refresh": True}, {}):
        write_rows(project, [(1, t(2), None, 0.1, "a"), (2, t(3), None, 0.2, "b")])
        result = build(project, t(4), select="foo", **options)
        assert result.nodes[0].status == "success", result.nodes[0].message
        assert stored(postgres_dsn, postgres_schema, other) == {
            1: (0.1, "a", *stored(postgres_dsn, postgres_schema, other)[1][2:])
        }
    assert tables(postgres_dsn, postgres_schema) == {"foo", other, "_fsql_state"}


def test_an_online_schema_over_63_bytes_is_refused(tmp_path: Path, postgres_dsn: str) -> None:
    project = write_project(tmp_path / "p", postgres_dsn, "s" * 64)
    write_rows(project, [(1, t(2), None, 0.1, "a")])
    result = build(project, t(3))
    assert result.nodes[0].status == "error"
    assert "online_schema 'sss" in result.nodes[0].message and "set a shorter online_schema" in result.nodes[0].message

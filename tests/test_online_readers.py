"""A SELECT-only serving role reads across every write path, and readers never wait on a build.

Measured before: a rebuild-and-swap or a full refresh dropped the table a serving role was
granted, which then got "permission denied" after an ordinary incremental run with 30%+
new rows; adding a feature ran ALTER TABLE on the live table inside the build's
transaction, blocking every lookup for the whole run (9.6 s on 1M rows).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

import psycopg
import pytest
from online_helpers import DEFINITIONS, t, write_project, write_rows

import fsql
from fsql.online.lookup import OnlineStore
from fsql.online.materialize import MaterializeRequest, materialize_view

WITH_NEW_FEATURE = DEFINITIONS.replace(
    "      - {name: label, type: string}\n",
    "      - {name: label, type: string}\n      - {name: rate_x2, type: double, expr: rate * 2}\n",
)


@dataclass(frozen=True)
class Roles:
    build: str  # owns the online schema
    lookup: str  # may only SELECT its tables


@pytest.fixture
def roles(postgres_dsn: str, postgres_schema: str) -> Iterator[Roles]:
    suffix = uuid.uuid4().hex[:8]
    made = Roles(f"fsql_build_{suffix}", f"fsql_lookup_{suffix}")
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{made.build}" LOGIN')
        admin.execute(f'CREATE ROLE "{made.lookup}" LOGIN')
        admin.execute(f'ALTER SCHEMA "{postgres_schema}" OWNER TO "{made.build}"')
        admin.execute(f'GRANT USAGE ON SCHEMA "{postgres_schema}" TO "{made.lookup}"')
    try:
        yield made
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            for role in (made.build, made.lookup):
                admin.execute(f'REASSIGN OWNED BY "{role}" TO CURRENT_USER')  # the schema fixture drops it all
                admin.execute(f'DROP OWNED BY "{role}"')
                admin.execute(f'DROP ROLE "{role}"')


def as_role(dsn: str, role: str) -> str:
    """The online URL of `dsn`'s server and database, as `role`."""
    from sqlalchemy.engine import make_url

    url = make_url(dsn).set(drivername="postgresql+psycopg", username=role)
    return url.render_as_string(hide_password=False)


def build_as(project: Path, dsn: str, role: str, day: int, **options: object) -> str:
    """One run of the view as `role`, up to day `day`; returns its note."""
    from fsql.engines.duckdb import DuckDBEngine

    loaded = fsql.load_project(project)
    request = MaterializeRequest(
        loaded.definitions,
        "driver_stats",
        as_role(dsn, role),
        loaded.config.target.online_schema,
        end=t(day).replace(tzinfo=UTC),
        **options,  # type: ignore[arg-type]
    )
    return materialize_view(request, DuckDBEngine("duckdb:///:memory:", root=project), file_root=project).note


def lookup_as(project: Path, dsn: str, role: str, schema: str, day: int) -> list[dict[str, object]]:
    definitions = fsql.load_project(project).definitions
    with OnlineStore(as_role(dsn, role), schema=schema, definitions=definitions) as store:
        return store.get_online_features(
            [{"driver_id": 1}, {"driver_id": 2}], features=["driver_stats:rate"], now=t(day).replace(tzinfo=UTC)
        )


def test_a_select_only_role_reads_after_every_write_path(
    tmp_path: Path, postgres_dsn: str, postgres_schema: str, roles: Roles
) -> None:
    project = write_project(tmp_path / "p", postgres_dsn, postgres_schema)
    write_rows(project, [(1, t(2), None, 0.1, "a")])
    assert build_as(project, postgres_dsn, roles.build, 3) == "created"
    with psycopg.connect(postgres_dsn, user=roles.build, autocommit=True) as owner:
        # Granted once, by hand, as a DBA would: no default privileges to fall back on.
        owner.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{postgres_schema}" TO "{roles.lookup}"')
        owner.execute(f"COMMENT ON TABLE \"{postgres_schema}\".driver_stats IS 'driver rates, it''s online'")
        owner.execute(f"COMMENT ON COLUMN \"{postgres_schema}\".driver_stats.rate IS 'share of offers taken'")
    assert lookup_as(project, postgres_dsn, roles.lookup, postgres_schema, 3)[0]["rate"] == 0.1

    steps = [
        ("upsert", [(1, t(3), None, 0.3, "b")], {"rebuild_share": 1e9}, ""),
        ("rebuild", [(1, t(4), None, 0.4, "c"), (2, t(4), None, 0.4, "c")], {"rebuild_share": 0.0}, "rebuilt"),
        ("full refresh", [(1, t(5), None, 0.5, "d"), (2, t(5), None, 0.5, "d")], {"full_refresh": True}, "full"),
    ]
    for day, (_, rows, options, note) in enumerate(steps, start=4):
        write_rows(project, rows)
        assert note in build_as(project, postgres_dsn, roles.build, day, **options)
        found = lookup_as(project, postgres_dsn, roles.lookup, postgres_schema, day)
        assert found[0]["rate"] == rows[0][3]
    (project / "definitions" / "defs.yml").write_text(WITH_NEW_FEATURE)
    assert "new columns" in build_as(project, postgres_dsn, roles.build, 7)
    assert lookup_as(project, postgres_dsn, roles.lookup, postgres_schema, 6)[1]["rate"] == 0.5
    with psycopg.connect(postgres_dsn) as admin:
        comments = admin.execute(
            "SELECT obj_description(c.oid, 'pg_class'), col_description(c.oid, 2) FROM pg_class c "
            "WHERE c.oid = %s::regclass",
            (f'"{postgres_schema}".driver_stats',),
        ).fetchone()
    assert comments == ("driver rates, it's online", "share of offers taken")


@pytest.mark.parametrize(
    "change",
    ["new columns", "rebuild", "full refresh"],
)
def test_readers_do_not_wait_while_a_build_loads(
    tmp_path: Path, postgres_dsn: str, postgres_schema: str, change: str
) -> None:
    project = write_project(tmp_path / "p", postgres_dsn, postgres_schema)
    write_rows(project, [(1, t(2), None, 0.1, "a")])
    loaded = fsql.load_project(project)
    from fsql.engines.duckdb import DuckDBEngine

    engine = DuckDBEngine("duckdb:///:memory:", root=project)
    url = loaded.config.target.online_url
    assert url is not None
    base = MaterializeRequest(loaded.definitions, "driver_stats", url, postgres_schema, end=t(3).replace(tzinfo=UTC))
    materialize_view(base, engine, file_root=project)
    write_rows(project, [(1, t(3), None, 0.3, "b"), (2, t(3), None, 0.3, "b")])
    if change == "new columns":
        (project / "definitions" / "defs.yml").write_text(WITH_NEW_FEATURE)
    request = MaterializeRequest(
        fsql.load_project(project).definitions,
        "driver_stats",
        url,
        postgres_schema,
        end=t(4).replace(tzinfo=UTC),
        rebuild_share=0.0 if change == "rebuild" else 1e9,
        full_refresh=change == "full refresh",
    )
    seen: list[object] = []

    def read_while_loading() -> None:
        with psycopg.connect(postgres_dsn, autocommit=True) as reader:
            reader.execute("SET lock_timeout = '5s'")  # a blocked reader fails here instead of hanging the test
            seen.append(reader.execute(f'SELECT rate FROM "{postgres_schema}".driver_stats').fetchone())
            held = reader.execute(
                "SELECT mode FROM pg_locks WHERE relation = %s::regclass AND granted AND pid <> pg_backend_pid()",
                (f'"{postgres_schema}".driver_stats',),
            ).fetchall()
            seen.append({mode for (mode,) in held})

    materialize_view(request, engine, file_root=project, after_load=read_while_loading)
    assert seen[0] == (0.1,)  # the old value, read while the new rows were loading
    assert "AccessExclusiveLock" not in seen[1]

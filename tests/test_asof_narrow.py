"""The asof strategy's narrow shape: each view matched to the numbered spine, stitched back by row id.

The PIT bank runs every case on it too (engine "duckdb_narrow" in pit_harness); these tests hold
what is particular to it: when it is chosen, and that the stitch puts every view's values back on
their own spine row over a spine large enough to be scanned in parallel.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

import fsql
from fsql.compile.asof import AsofStrategy

VIEWS = 3
SPINE_ROWS = 300_000  # several row groups, so scans of the spine run on several threads


def _project(root: Path, views: int = VIEWS) -> Path:
    (root / "definitions").mkdir(parents=True)
    (root / "fsql_project.yml").write_text("name: narrow\ndialect: duckdb\n")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    # Spine rows in a shuffled order, each with duplicates of some (key, ts) and a NULL ts now and then.
    con.execute(
        f"COPY (SELECT i::BIGINT AS row_id, (hash(i) % 5000)::BIGINT AS entity_id, CASE WHEN i % 97 = 0 THEN NULL ELSE "
        f"TIMESTAMPTZ '2025-01-01' + to_microseconds((hash(i, 1) % 31536000000000)::BIGINT) END AS ts "
        f"FROM range({SPINE_ROWS}) t(i) ORDER BY hash(i, 2)) TO '{root}/spine.parquet' "
        f"(FORMAT parquet, ROW_GROUP_SIZE 20000)"
    )
    lines = ["entities:", "  - {name: entity, join_keys: [{name: entity_id, type: bigint}]}", "sources:"]
    for v in range(views):
        con.execute(
            f"COPY (SELECT (hash(i, {v}, 3) % 5000)::BIGINT AS entity_id, TIMESTAMPTZ '2025-01-01' + "
            f"to_microseconds((hash(i, {v}, 4) % 31536000000000)::BIGINT) AS event_ts, (i * 10 + {v})::BIGINT AS f{v} "
            f"FROM range(200000) t(i)) TO '{root}/view{v}.parquet' (FORMAT parquet)"
        )
        lines += [
            f"  - {{name: src{v}, path: view{v}.parquet, timestamp: event_ts,",
            f"     columns: {{entity_id: bigint, event_ts: timestamptz, f{v}: bigint}}}}",
        ]
    lines.append("feature_views:")
    for v in range(views):
        lines.append(
            f"  - {{name: view{v}, entities: [entity], source: src{v}, ttl: 30d, "
            f"features: [{{name: f{v}, type: bigint}}]}}"
        )
    (root / "definitions" / "views.yml").write_text("\n".join(lines) + "\n")
    return root


def _training(root: Path, narrow_from: int, views: int = VIEWS) -> tuple[object, str]:
    before = AsofStrategy.narrow_from_carried
    AsofStrategy.narrow_from_carried = narrow_from
    try:
        project = fsql.load_project(root)
        features = [f"view{v}" for v in range(views)]
        sql = project.training_sql(spine="spine", spine_timestamp="ts", features=features)
        table = project.training_set(spine=str(root / "spine.parquet"), spine_timestamp="ts", features=features)
    finally:
        AsofStrategy.narrow_from_carried = before
    return table, sql


def test_the_stitch_gives_every_spine_row_its_own_values(tmp_path: Path) -> None:
    root = _project(tmp_path)
    narrow, narrow_sql = _training(root, narrow_from=0)
    chained, chained_sql = _training(root, narrow_from=10**9)
    assert "MATERIALIZED" in narrow_sql and "_fsql_spine_row" in narrow_sql
    assert "_fsql_spine_row" not in chained_sql
    assert narrow.column_names == chained.column_names == ["row_id", "entity_id", "ts", "f0", "f1", "f2"]
    con = duckdb.connect()
    con.register("narrow", narrow)
    con.register("chained", chained)
    [(differ,)] = con.sql(
        "SELECT count(*) FROM ((FROM narrow EXCEPT ALL FROM chained) UNION ALL (FROM chained EXCEPT ALL FROM narrow))"
    ).fetchall()
    [(matched,)] = con.sql("SELECT count(*) FROM narrow WHERE f0 IS NOT NULL AND f2 IS NOT NULL").fetchall()
    assert narrow.num_rows == chained.num_rows == SPINE_ROWS
    assert differ == 0
    assert matched > SPINE_ROWS // 2  # the comparison is not between two columns of NULLs


def test_the_spine_is_read_once_so_its_row_ids_are_one_numbering(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Row ids stitch correctly only if every reference sees one numbering: DuckDB's plan holds the
    spine CTE once (materialized) and scans it per view; the spine file is read once."""
    root = _project(tmp_path)
    monkeypatch.setattr(AsofStrategy, "narrow_from_carried", 0)
    project = fsql.load_project(root, data_checks=False)
    features = [f"view{v}" for v in range(VIEWS)]
    sql = project.training_sql(spine=str(root / "spine.parquet"), spine_timestamp="ts", features=features)
    monkeypatch.chdir(root)
    [(_, plan)] = duckdb.connect().sql("EXPLAIN " + sql).fetchall()
    assert plan.count("CTE Name: spine") == 1
    assert plan.count("CTE Scan") == VIEWS + 1
    assert plan.count("READ_PARQUET") == VIEWS + 1  # the spine once, each view once


@pytest.mark.parametrize(("views", "features", "narrow"), [(5, 5, False), (10, 5, True), (3, 100, True)])
def test_the_narrow_shape_starts_at_100_carried_features(
    tmp_path: Path, views: int, features: int, narrow: bool
) -> None:
    """Chained, the k-th ASOF join carries the features of the k-1 before it: 5 x 5 carry 50, 10 x 5 carry 225."""
    root = tmp_path / "p"
    (root / "definitions").mkdir(parents=True)
    (root / "fsql_project.yml").write_text("name: narrow\ndialect: duckdb\n")
    lines = ["entities:", "  - {name: entity, join_keys: [{name: entity_id, type: bigint}]}", "sources:"]
    for v in range(views):
        columns = ", ".join(f"v{v}_f{k}: bigint" for k in range(features))
        lines.append(
            f"  - {{name: src{v}, path: view{v}.parquet, timestamp: event_ts, "
            f"columns: {{entity_id: bigint, event_ts: timestamptz, {columns}}}}}"
        )
    lines.append("feature_views:")
    for v in range(views):
        listed = ", ".join(f"{{name: v{v}_f{k}, type: bigint}}" for k in range(features))
        lines.append(f"  - {{name: view{v}, entities: [entity], source: src{v}, features: [{listed}]}}")
    (root / "definitions" / "views.yml").write_text("\n".join(lines) + "\n")
    sql = fsql.load_project(root, data_checks=False).training_sql(
        spine="spine", features=[f"view{v}" for v in range(views)]
    )
    assert ("AS MATERIALIZED" in sql) is narrow
    assert sql.count("__match") == (2 * views if narrow else 0)  # each match CTE: defined once, joined once
    assert sql.count("ASOF LEFT JOIN") == views


def test_a_spine_column_named_as_fsqls_row_numbering_is_refused(tmp_path: Path) -> None:
    """`_fsql_spine_row` numbers the spine's rows in the narrow shape: a spine column of that name would clash."""
    import pyarrow as pa

    from fsql.errors import CompileError

    root = _project(tmp_path, views=1)
    spine = pa.table({"entity_id": [1], "ts": pa.array([None], pa.timestamp("us", tz="UTC")), "_fsql_spine_row": [7]})
    with pytest.raises(CompileError, match="the spine has a column '_fsql_spine_row', the name fsql gives"):
        fsql.load_project(root).training_set(spine=spine, spine_timestamp="ts", features=["view0"])

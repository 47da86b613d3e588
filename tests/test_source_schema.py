"""A file (or table) source that lost a column the definitions read: a located error before any query."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from online_helpers import DEFINITIONS, build, t, write_project, write_rows

import fsql
from fsql.errors import DefinitionError

NO_ONLINE_STORE = "postgresql://nobody@127.0.0.1:1/none"  # training never connects to it
SPINE = pa.table({"driver_id": [1], "event_timestamp": pa.array([t(3)], pa.timestamp("us"))})


def drop_column(root: Path, column: str, *, rename: str | None = None) -> None:
    """Rewrite data/stats.parquet without `column` (or with it renamed)."""
    path = root / "data" / "stats.parquet"
    table = pq.read_table(path)
    if rename is None:
        table = table.drop_columns([column])
    else:
        table = table.rename_columns([rename if name == column else name for name in table.column_names])
    pq.write_table(table, path)


@pytest.fixture
def offline_project(tmp_path: Path) -> Path:
    root = write_project(tmp_path / "p", NO_ONLINE_STORE, "unused")
    write_rows(root, [(1, t(2), None, 0.5, "a")])
    return root


def test_training_on_a_file_lacking_a_feature_column_names_view_column_source_and_file(
    offline_project: Path,
) -> None:
    drop_column(offline_project, "label")
    with pytest.raises(DefinitionError) as raised:
        fsql.load_project(offline_project).training_set(features=["driver_stats"], spine=SPINE)
    assert str(raised.value) == (
        "definitions/defs.yml:6:5: feature view 'driver_stats': source 'stats' reads file data/stats.parquet, "
        "which has no column 'label' (read by feature 'label' at definitions/defs.yml:19:16). The file's columns: "
        "driver_id, event_ts, created_ts, rate. Put the column back in the file, or change the definitions that "
        "read it."
    )
    # Features that read only what the file still has are unaffected.
    table = fsql.load_project(offline_project).training_set(features=["driver_stats:rate"], spine=SPINE)
    assert table.column("rate").to_pylist() == [0.5]


def test_a_renamed_key_column_gets_a_suggestion_and_a_service_names_itself(offline_project: Path) -> None:
    services = "\nfeature_services:\n  - name: scoring\n    features: [driver_stats]\n"
    (offline_project / "definitions" / "defs.yml").write_text(DEFINITIONS + services)
    drop_column(offline_project, "driver_id", rename="driver")
    with pytest.raises(DefinitionError) as raised:
        fsql.load_project(offline_project).training_set(service="scoring", spine=SPINE)
    assert str(raised.value).startswith(
        "definitions/defs.yml:6:5: feature service 'scoring': feature view 'driver_stats': source 'stats' reads "
        "file data/stats.parquet, which has no column 'driver_id' (the join key). Did you mean 'driver'? The file's "
        "columns: driver, event_ts, created_ts, rate, label."
    )


def test_a_csv_file_is_checked_too(offline_project: Path) -> None:
    (offline_project / "definitions" / "defs.yml").write_text(DEFINITIONS.replace("stats.parquet", "stats.csv"))
    table = pq.read_table(offline_project / "data" / "stats.parquet").drop_columns(["rate", "label"])
    pacsv.write_csv(table, offline_project / "data" / "stats.csv")
    with pytest.raises(DefinitionError, match=r"which has no columns 'rate' \(read by feature 'rate' at "):
        fsql.load_project(offline_project).training_set(features=["driver_stats"], spine=SPINE)


def test_build_reports_the_dropped_column_on_the_views_node(
    tmp_path: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    root = write_project(tmp_path / "p", postgres_dsn, postgres_schema)
    write_rows(root, [(1, t(2), None, 0.5, "a")])
    drop_column(root, "rate")
    node = build(root, t(3)).nodes[0]
    assert node.status == "error"
    assert node.message.startswith(
        "definitions/defs.yml:6:5: feature view 'driver_stats': source 'stats' reads file data/stats.parquet, "
        "which has no column 'rate' (read by feature 'rate' at definitions/defs.yml:18:16)."
    )


def test_a_duckdb_table_source_is_checked_through_the_catalog(offline_project: Path) -> None:
    import duckdb

    profiles = (offline_project / "profiles.yml").read_text()
    (offline_project / "profiles.yml").write_text(profiles.replace("duckdb:///:memory:", "duckdb:///wh.duckdb"))
    (offline_project / "definitions" / "defs.yml").write_text(
        DEFINITIONS.replace("path: data/stats.parquet", "table: stats")
    )
    with duckdb.connect(str(offline_project / "wh.duckdb")) as connection:
        connection.execute(
            "CREATE TABLE stats AS SELECT * FROM read_parquet(?)", [str(offline_project / "data" / "stats.parquet")]
        )
        connection.execute("ALTER TABLE stats DROP COLUMN label")
    with pytest.raises(DefinitionError) as raised:
        fsql.load_project(offline_project).training_set(features=["driver_stats"], spine=SPINE)
    assert "source 'stats' reads table stats, which has no column 'label' (read by feature 'label' at " in str(
        raised.value
    )
    assert str(raised.value).endswith("Put the column back in the table, or change the definitions that read it.")

"""Materialization streams: the latest rows go from DuckDB to one COPY a batch at a time.

A view of many batches must land exactly (every row, every value, CSV edge values across
batch boundaries), refuse a NUL byte in a late batch as it does in the first, and keep the
process's Python-side memory to a few batches, not the whole result.
"""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from online_helpers import build, run_view, state, stored, t, write_project, write_rows

from fsql.online import materialize
from fsql.online.materialize import MaterializeResult

# Text values that stress CSV: quotes, separators, line breaks, the empty string, NULL.
LABELS = ["plain", 'say "hi"', "a,b", "two\nlines", "", None, "ünïcødé", "\\back\\slash"]


def rows_for(drivers: int, period: int) -> list[tuple[Any, ...]]:
    """Two rows per driver in each period (the later wins), a correction tie on every 5th."""
    base = t(1) + timedelta(days=period)
    rows = []
    for d in range(drivers):
        event = base + timedelta(seconds=d)
        rows.append((d, event - timedelta(hours=1), event, d * 0.5 + period, "older"))
        rows.append((d, event, event, d * 0.25 + period, LABELS[(d + period) % len(LABELS)]))
        if d % 5 == 0:  # same event time, later created time: this one wins
            rows.append((d, event, event + timedelta(minutes=1), -d - period * 1.0, f"fix{d}"))
    return rows


def expected(rows: list[tuple[Any, ...]]) -> dict[int, tuple[Any, ...]]:
    """The latest row per driver by (event_ts, created_ts), as `stored` returns it."""
    best: dict[int, tuple[Any, ...]] = {}
    for row in rows:
        if row[0] not in best or (row[1], row[2]) > (best[row[0]][1], best[row[0]][2]):
            best[row[0]] = row
    return {d: (r[3], r[4], r[1].replace(tzinfo=UTC), r[2].replace(tzinfo=UTC)) for d, r in best.items()}


def run(project: Path, end: datetime, *, rebuild_share: float = 0.3, full_refresh: bool = False) -> MaterializeResult:
    """One run of the view as `fsql build` makes it, on the write path `rebuild_share` picks."""
    return run_view(project, end, rebuild_share=rebuild_share, full_refresh=full_refresh)


@pytest.fixture
def project(tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> Path:
    return write_project(tmp_path / "p", postgres_dsn, postgres_schema)


@pytest.fixture
def batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Seven rows per batch; the sizes of the CSV chunks COPY was sent."""
    monkeypatch.setattr(materialize, "ROWS_PER_BATCH", 7)
    sent: list[int] = []
    write_csv = pacsv.write_csv

    def counted(data: Any, *args: Any, **kwargs: Any) -> None:
        sent.append(data.num_rows)
        write_csv(data, *args, **kwargs)

    monkeypatch.setattr(pacsv, "write_csv", counted)
    return sent


@pytest.mark.parametrize("rebuild_share", [0.0, 1e9], ids=["rebuild", "upsert"])
def test_a_view_of_many_batches_materializes_exactly(
    project: Path, postgres_dsn: str, postgres_schema: str, batches: list[int], rebuild_share: float
) -> None:
    first = rows_for(500, 0)
    write_rows(project, first)
    assert run(project, t(2), rebuild_share=rebuild_share).rows_written == 500
    assert sum(batches) == 500 and max(batches) == 7 and len(batches) >= 500 // 7  # one COPY, ~72 batches
    assert stored(postgres_dsn, postgres_schema) == expected(first)

    # A full update: every driver has newer rows; the 30 new drivers are inserted.
    batches.clear()
    second = first + rows_for(530, 2)
    write_rows(project, second)
    assert run(project, t(4), rebuild_share=rebuild_share).rows_read == 530
    assert sum(batches) == 530 and max(batches) == 7 and len(batches) >= 530 // 7
    assert stored(postgres_dsn, postgres_schema) == expected(second)
    assert state(postgres_dsn, postgres_schema)[1] == 530


def test_a_nul_byte_in_a_late_batch_is_refused_whole(
    project: Path, postgres_dsn: str, postgres_schema: str, batches: list[int]
) -> None:
    rows = rows_for(100, 0)
    nul = {61, 95, 97}  # past the first batches: the COPY has begun when the first is met
    rows = [(*r[:4], "x\x00y") if r[0] in nul and r[4] != "older" else r for r in rows]
    write_rows(project, rows)
    node = build(project, t(2)).nodes[0]
    assert node.status == "error"
    assert node.message.startswith(
        "feature view 'driver_stats': column 'label' holds a NUL byte (\\x00) in 3 rows, which Postgres text "
        "cannot store (first: driver_id=61; driver_id=95; driver_id=97); nothing was written."
    )
    assert state(postgres_dsn, postgres_schema) is None  # rolled back: no table, no state


def _peak_build(project: Path, end: datetime, monkeypatch: pytest.MonkeyPatch, rows_per_batch: int) -> int:
    """The Python-side peak (tracemalloc, above what was held before) of one full-refresh build."""
    monkeypatch.setattr(materialize, "ROWS_PER_BATCH", rows_per_batch)
    tracemalloc.start()
    try:
        held = tracemalloc.get_traced_memory()[0]
        run(project, end, full_refresh=True)
        return tracemalloc.get_traced_memory()[1] - held
    finally:
        tracemalloc.stop()


def test_python_memory_stays_within_a_few_batches(
    project: Path, postgres_dsn: str, postgres_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    drivers = 200_000
    label = "a label of some forty characters, quoted"
    table = pa.table(
        {
            "driver_id": pa.array(range(drivers), pa.int64()),
            "event_ts": pa.array([t(1)] * drivers, pa.timestamp("us")),
            "created_ts": pa.array([t(1)] * drivers, pa.timestamp("us")),
            "rate": pa.array([i / 7 for i in range(drivers)], pa.float64()),
            "label": pa.array([f"{label} {i}" for i in range(drivers)], pa.string()),
        }
    )
    pq.write_table(table, project / "data" / "stats.parquet")
    del table
    batch = 5_000
    run(project, t(2))  # warm: imports, caches, the table
    streamed = _peak_build(project, t(2), monkeypatch, batch)
    whole = _peak_build(project, t(2), monkeypatch, drivers)  # one batch: the result whole, as before
    assert len(stored(postgres_dsn, postgres_schema)) == drivers
    one_batch_csv = whole / (drivers / batch)  # the whole CSV text dominates the one-batch peak
    assert whole > 10_000_000  # ~100 bytes of CSV per row: the measure sees the rows
    assert streamed < whole / 5
    assert streamed < 4 * one_batch_csv + 2_000_000  # a few batches and the build's own fixed cost

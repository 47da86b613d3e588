"""`fsql drift`: the SQL statistics agree with numpy/scipy, planted shifts and NULLs are found and
steady columns are not, on DuckDB and a real Postgres; thresholds come from the YAML; the SQL of
every dialect is golden."""

from __future__ import annotations

import html
import json
import re
import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.stats
import sqlglot
from pit_window import check_bigquery_sql
from sqlglot import exp
from typer.testing import CliRunner

import fsql
from fsql.cli import app
from fsql.compile.spine import Spine
from fsql.drift.html import write_html
from fsql.drift.model import EPSILON
from fsql.drift.run import DriftReport, Side, compile_drift, plan, run_drift, window_relation
from fsql.errors import DefinitionError, FsqlError, ProjectError

FIXTURE = Path(__file__).parent / "fixtures" / "drift_project"
GOLDEN = Path(__file__).parent / "golden" / "drift"
DIALECTS = ("duckdb", "postgres", "bigquery", "spark")
START = datetime(2024, 3, 1, tzinfo=UTC)
SPLIT = datetime(2024, 3, 15, tzinfo=UTC)
END = datetime(2024, 4, 1, tzinfo=UTC)
N_REFERENCE, N_CURRENT = 3000, 2000
FEATURES = ("shifted", "steady", "visits", "plan", "region", "sparse", "active")
NUMERIC = ("shifted", "steady", "visits", "sparse")
TOLERANCE = 1e-9


# --- the data: every user has one event, and its spine row comes a minute later ---------------


def _period(rng: np.random.Generator, n: int, *, current: bool, first_id: int, start: datetime) -> dict[str, Any]:
    seconds = rng.uniform(0, 14 * 86400, n)
    null_share = 0.30 if current else 0.02
    sparse = rng.normal(10, 3, n)
    return {
        "user_id": np.arange(first_id, first_id + n),
        "event_ts": [start + timedelta(seconds=float(s)) for s in seconds],
        "shifted": rng.normal(0.8 if current else 0.0, 1.0, n),  # planted: a mean shift
        "steady": rng.normal(5.0, 2.0, n),
        "visits": rng.poisson(3, n),  # integers: many ties, merged quantile edges
        # planted: shares move, and a category new in the current (its reference share is EPSILON)
        "plan": rng.choice(
            ["free", "pro", "team", "max"], n, p=[0.3, 0.4, 0.25, 0.05] if current else [0.6, 0.3, 0.1, 0]
        ),
        "region": rng.choice(["north", "south", "east", "west", "central"], n),
        "sparse": [None if rng.random() < null_share else float(v) for v in sparse],  # planted: NULLs
        "active": rng.random(n) < 0.5,
    }


def generate(seed: int = 11) -> pa.Table:
    rng = np.random.default_rng(seed)
    reference = _period(rng, N_REFERENCE, current=False, first_id=1, start=START)
    current = _period(rng, N_CURRENT, current=True, first_id=N_REFERENCE + 1, start=SPLIT)
    columns = {k: list(reference[k]) + list(current[k]) for k in reference}
    return pa.table(
        {
            "user_id": pa.array(columns["user_id"], pa.int64()),
            "event_ts": pa.array(columns["event_ts"], pa.timestamp("us", tz="UTC")),
            "shifted": pa.array(columns["shifted"], pa.float64()),
            "steady": pa.array(columns["steady"], pa.float64()),
            "visits": pa.array(columns["visits"], pa.int64()),
            "plan": pa.array(columns["plan"], pa.string()),
            "region": pa.array(columns["region"], pa.string()),
            "sparse": pa.array(columns["sparse"], pa.float64()),
            "active": pa.array(columns["active"], pa.bool_()),
            "seen_at": pa.array(columns["event_ts"], pa.timestamp("us", tz="UTC")),
        }
    )


def spine_of(events: pa.Table) -> pa.Table:
    times = [t + timedelta(minutes=1) for t in events.column("event_ts").to_pylist()]
    return pa.table(
        {"user_id": events.column("user_id"), "event_timestamp": pa.array(times, pa.timestamp("us", tz="UTC"))}
    )


def write_project(root: Path, *, location: str | None = None, profile: str | None = None) -> Path:
    shutil.copytree(FIXTURE, root)
    if location is not None:
        defs = root / "definitions" / "defs.yml"
        defs.write_text(defs.read_text().replace("path: data/events.parquet", location))
    if profile is not None:
        (root / "profiles.yml").write_text(profile)
    events = generate()
    (root / "data").mkdir()
    pq.write_table(events, root / "data" / "events.parquet")
    pq.write_table(spine_of(events), root / "data" / "spine.parquet")
    return root


def split(events: pa.Table, root: Path) -> tuple[Path, Path]:
    """The reference and current training sets as files (each row's features are its own event's)."""
    paths = []
    for name, rows in (("reference", slice(0, N_REFERENCE)), ("current", slice(N_REFERENCE, None))):
        path = root / "target" / "training" / f"{name}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(
            events.select(["user_id", *FEATURES]).slice(rows.start, (rows.stop or len(events)) - rows.start), path
        )
        paths.append(path)
    return paths[0], paths[1]


# --- the same statistics, computed by numpy and scipy ----------------------------------------------


def values(table: pa.Table, name: str) -> np.ndarray:
    return np.array([v for v in table.column(name).to_pylist() if v is not None])


def edges(reference: np.ndarray, bins: int = 10) -> np.ndarray:
    """Edge k: the smallest value with at least k/bins of the values at or below it (inverted CDF), exactly."""
    ordered = np.sort(reference)
    n = len(ordered)
    return np.unique([ordered[-(-k * n // bins) - 1] for k in range(1, bins)])


def psi_of(r_counts: np.ndarray, c_counts: np.ndarray) -> float:
    r = np.where(r_counts == 0, EPSILON, r_counts / r_counts.sum())
    c = np.where(c_counts == 0, EPSILON, c_counts / c_counts.sum())
    return float(np.sum((c - r) * np.log(c / r)))


def numeric_expected(reference: np.ndarray, current: np.ndarray) -> dict[str, float]:
    cut = edges(reference)
    assert np.array_equal(cut, np.unique(np.quantile(reference, np.arange(1, 10) / 10, method="inverted_cdf")))
    r_counts = np.bincount(np.searchsorted(cut, reference, side="left"), minlength=len(cut) + 1)
    c_counts = np.bincount(np.searchsorted(cut, current, side="left"), minlength=len(cut) + 1)
    return {"psi": psi_of(r_counts, c_counts), "ks": float(scipy.stats.ks_2samp(reference, current).statistic)}


def categorical_expected(reference: np.ndarray, current: np.ndarray) -> dict[str, float]:
    categories = sorted(set(reference.tolist()) | set(current.tolist()))
    r_counts = np.array([np.sum(reference == c) for c in categories])
    c_counts = np.array([np.sum(current == c) for c in categories])
    chi2 = scipy.stats.chi2_contingency(np.array([r_counts, c_counts]), correction=False).statistic
    return {"psi": psi_of(r_counts, c_counts), "chi2": float(chi2)}


def check_against_scipy(report: DriftReport, reference: pa.Table, current: pa.Table) -> None:
    by_name = {f.feature: f for f in report.features}
    assert set(by_name) == set(FEATURES)
    for name in FEATURES:
        r, c = values(reference, name), values(current, name)
        found = by_name[name]
        assert found.reference_values == len(r) and found.current_values == len(c)
        assert found.reference_rows == reference.num_rows and found.current_rows == current.num_rows
        if name in NUMERIC:
            expected = numeric_expected(r, c)
            assert found.kind == "numeric" and found.chi2 is None
            assert found.ks == pytest.approx(expected["ks"], abs=TOLERANCE), name
        else:
            expected = categorical_expected(r, c)
            assert found.kind == "categorical" and found.ks is None
            assert found.chi2 == pytest.approx(expected["chi2"], abs=TOLERANCE), name
        assert found.psi == pytest.approx(expected["psi"], abs=TOLERANCE), name


def check_verdicts(report: DriftReport) -> None:
    status = {f.feature: f.status for f in report.features}
    assert status["shifted"] == "significant" and status["plan"] == "significant"  # planted shifts found
    assert status["sparse"] == "nulls"  # 30 % NULL
    for steady in ("steady", "visits", "region", "active"):  # not shifted: not found
        assert status[steady] == "ok", (steady, report.as_json())
    assert report.failed
    assert report.skipped == [("seen_at", "type timestamptz: neither numeric nor categorical")]


# --- DuckDB ------------------------------------------------------------------------------------------


def test_statistics_of_training_set_files_agree_with_scipy_on_duckdb(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p")
    reference, current = split(pq.read_table(root / "data" / "events.parquet"), root)
    project = fsql.load_project(root)
    report = run_drift(project, service="usage", reference=Side(file=reference), current=Side(file=current))
    check_against_scipy(report, pq.read_table(reference), pq.read_table(current))
    check_verdicts(report)
    assert report.sql_path == Path("target/run/duckdb/drift/usage.sql")
    assert (root / report.sql_path).is_file()


def test_spine_windows_run_the_training_query_in_the_engine(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p")
    project = fsql.load_project(root)
    report = run_drift(
        project, service="usage", reference=Side(window=(START, SPLIT)), current=Side(window=(SPLIT, END)),
        spine="data/spine.parquet",
    )  # fmt: skip
    spine = pq.read_table(root / "data" / "spine.parquet")
    expected = project.training_set(service="usage", spine=spine)
    times = expected.column("event_timestamp").to_pylist()
    in_reference = pa.array([t < SPLIT for t in times])
    check_against_scipy(report, expected.filter(in_reference), expected.filter(pa.compute.invert(in_reference)))
    check_verdicts(report)
    sql = (root / "target" / "run" / "duckdb" / "drift" / "usage.sql").read_text()
    assert "ASOF LEFT JOIN" in sql  # the training query itself, not rows brought back


def test_an_empty_current_window_is_a_clear_error(tmp_path: Path) -> None:
    project = fsql.load_project(write_project(tmp_path / "p"))
    later = (END, END + timedelta(days=7))
    with pytest.raises(FsqlError, match=r"the current side \(spine window \[2024-04-01T00:00:00\+00:00, "):
        run_drift(
            project, service="usage", reference=Side(window=(START, SPLIT)), current=Side(window=later),
            spine="data/spine.parquet",
        )  # fmt: skip


def test_csv_training_sets_give_the_statistics_parquet_ones_do(tmp_path: Path) -> None:
    import pyarrow.csv as pv

    root = write_project(tmp_path / "p")
    reference, current = split(pq.read_table(root / "data" / "events.parquet"), root)
    as_csv = []
    for path in (reference, current):
        pv.write_csv(pq.read_table(path), path.with_suffix(".csv"))
        as_csv.append(path.with_suffix(".csv"))
    project = fsql.load_project(root)
    from_parquet = run_drift(project, service="usage", reference=Side(file=reference), current=Side(file=current))
    from_csv = run_drift(project, service="usage", reference=Side(file=as_csv[0]), current=Side(file=as_csv[1]))
    assert "read_csv" in (root / "target" / "run" / "duckdb" / "drift" / "usage.sql").read_text().lower()
    for a, b in zip(from_parquet.features, from_csv.features, strict=True):
        assert (a.feature, a.status, a.current_values) == (b.feature, b.status, b.current_values)
        for x, y in ((a.psi, b.psi), (a.ks, b.ks), (a.chi2, b.chi2)):
            assert (x is None and y is None) or x == pytest.approx(y, abs=TOLERANCE)


def test_a_training_set_file_without_a_feature_column_says_which(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p")
    reference, current = split(pq.read_table(root / "data" / "events.parquet"), root)
    pq.write_table(pq.read_table(current).drop_columns(["plan"]), current)
    with pytest.raises(
        ProjectError, match=r"the current training set '.*current.parquet' lacks feature column\(s\) plan"
    ):
        run_drift(fsql.load_project(root), service="usage", reference=Side(file=reference), current=Side(file=current))


def test_thresholds_come_from_the_feature_over_the_view_over_the_defaults(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p")
    defs = root / "definitions" / "defs.yml"
    text = defs.read_text()
    text = text.replace("drift: {null_rate: 0.05}", "drift: {null_rate: 0.5, psi_significant: 100, psi_moderate: 0.1}")
    text = text.replace("{name: steady, type: double}", "{name: steady, type: double, drift: {enabled: false}}")
    text = text.replace("{name: shifted, type: double}", "{name: shifted, type: double, drift: {ks: 0.2, bins: 4}}")
    defs.write_text(text)
    reference, current = split(pq.read_table(root / "data" / "events.parquet"), root)
    report = run_drift(
        fsql.load_project(root), service="usage", reference=Side(file=reference), current=Side(file=current)
    )
    by_name = {f.feature: f for f in report.features}
    assert "steady" not in by_name and ("steady", "drift: {enabled: false}") in report.skipped
    assert by_name["sparse"].status == "ok"  # 30 % NULL is under the view's 50 %
    assert by_name["plan"].status == "moderate"  # PSI over 0.1, under the view's 100
    shifted = by_name["shifted"]
    assert shifted.status == "significant" and shifted.bins == 4 and shifted.reasons[-1].startswith("KS ")
    r, c = values(pq.read_table(reference), "shifted"), values(pq.read_table(current), "shifted")
    cut = edges(r, 4)
    counts = [np.bincount(np.searchsorted(cut, v, side="left"), minlength=len(cut) + 1) for v in (r, c)]
    assert shifted.psi == pytest.approx(psi_of(*counts), abs=TOLERANCE)


@pytest.mark.parametrize(
    ("drift", "message"),
    [
        ("{psi_moderat: 0.1}", "unknown key 'psi_moderat'. Did you mean 'psi_moderate'?"),
        ("{psi_moderate: 0.3, psi_significant: 0.2}", "psi_moderate (0.3) is greater than psi_significant (0.2)"),
        ("{null_rate: 5}", "'null_rate' must be between 0 and 1, not 5"),
        ("{bins: 1}", "'bins' must be between 2 and 100, not 1"),
        ("{psi_significant: high}", "'psi_significant' must be a number"),
        ("[0.25]", "drift must be a mapping of keys to values"),
    ],
)
def test_a_wrong_drift_setting_is_a_definition_error_at_its_line(tmp_path: Path, drift: str, message: str) -> None:
    root = write_project(tmp_path / "p")
    defs = root / "definitions" / "defs.yml"
    defs.write_text(
        defs.read_text().replace("{name: visits, type: bigint}", f"{{name: visits, type: bigint, drift: {drift}}}")
    )
    line = next(i for i, text in enumerate(defs.read_text().splitlines(), 1) if "name: visits" in text)
    with pytest.raises(DefinitionError) as caught:
        fsql.load_project(root).validate(data_checks=False)
    assert message in str(caught.value)
    assert f"defs.yml:{line}:" in str(caught.value)


def test_a_views_drift_setting_is_checked_at_its_line_too(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p")
    defs = root / "definitions" / "defs.yml"
    defs.write_text(defs.read_text().replace("drift: {null_rate: 0.05}", "drift: {null_rate: 0.05, enabled: maybe}"))
    line = next(i for i, text in enumerate(defs.read_text().splitlines(), 1) if "enabled: maybe" in text)
    with pytest.raises(DefinitionError, match=rf"defs.yml:{line}:\d+: feature view 'stats' drift: 'enabled' must be"):
        fsql.load_project(root).validate(data_checks=False)


def test_cli_prints_json_and_exits_1_on_significant_drift(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_project(tmp_path / "p")
    monkeypatch.chdir(root)
    reference, current = split(pq.read_table(root / "data" / "events.parquet"), root)
    args = ["drift", "--service", "usage", "--reference", str(reference), "--current", str(current), "-o", "json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    assert document["failed"] is True and document["epsilon"] == EPSILON
    statuses = {f["feature"]: f["status"] for f in document["features"]}
    assert statuses["shifted"] == "significant" and statuses["steady"] == "ok"
    steady = CliRunner().invoke(
        app, ["drift", "-s", "usage", "--reference", str(reference), "--current", str(reference)]
    )
    assert steady.exit_code == 0, steady.output
    assert "7 features compared" in steady.stderr and "0 significant" in steady.stderr


def test_cli_windows_need_a_spine_and_a_window_reads_start_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(write_project(tmp_path / "p"))
    runner = CliRunner()
    no_spine = runner.invoke(app, ["drift", "-s", "usage", "--reference-window", "2024-03-01..2024-03-15",
                                   "--current-window", "2024-03-15..2024-04-01"])  # fmt: skip
    assert no_spine.exit_code == 2 and "give it with --spine" in no_spine.stderr
    both = runner.invoke(app, ["drift", "-s", "usage", "--reference", "x.parquet", "--reference-window", "a..b"])
    assert both.exit_code == 2 and "exactly one of them" in both.stderr
    windows = ["--spine", "data/spine.parquet", "--current-window", "2024-03-15..2024-04-01"]
    backwards = runner.invoke(app, ["drift", "-s", "usage", *windows, "--reference-window", "2024-03-15..2024-03-01"])
    assert backwards.exit_code == 2 and "START must come before END" in backwards.stderr
    ran = runner.invoke(app, ["drift", "-s", "usage", *windows, "--reference-window", "2024-03-01..2024-03-15"])
    assert ran.exit_code == 1 and "significant" in ran.stderr
    empty = runner.invoke(app, ["drift", "-s", "usage", *windows[:2], "--reference-window", "2024-03-01..2024-03-15",
                                "--current-window", "2025-01-01..2025-02-01"])  # fmt: skip
    assert empty.exit_code == 2 and "the current side (spine window [2025-01-01" in empty.stderr
    assert "has no rows" in empty.stderr


# --- Postgres ----------------------------------------------------------------------------------------


def _postgres_project(tmp_path: Path, dsn: str, schema: str) -> Path:
    url = dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    profile = f"drift:\n  target: pg\n  outputs:\n    pg:\n      offline: '{url}'\n"
    root = write_project(tmp_path / "p", location=f"table: {schema}.events", profile=profile)
    events = pq.read_table(root / "data" / "events.parquet")
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(
            f'CREATE TABLE "{schema}".events (user_id BIGINT, event_ts TIMESTAMPTZ, shifted DOUBLE PRECISION, '
            f"steady DOUBLE PRECISION, visits BIGINT, plan TEXT, region TEXT, sparse DOUBLE PRECISION, "
            f"active BOOLEAN, seen_at TIMESTAMPTZ)"
        )
        with connection.cursor() as cursor, cursor.copy(f'COPY "{schema}".events FROM STDIN') as copy:
            for row in events.to_pylist():
                copy.write_row(list(row.values()))
    return root


def test_statistics_agree_with_scipy_on_postgres(tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> None:
    root = _postgres_project(tmp_path, postgres_dsn, postgres_schema)
    project = fsql.load_project(root)
    assert project.config.target.dialect == "postgres"
    reference, current = split(pq.read_table(root / "data" / "events.parquet"), root)
    report = run_drift(project, service="usage", reference=Side(file=reference), current=Side(file=current))
    check_against_scipy(report, pq.read_table(reference), pq.read_table(current))
    check_verdicts(report)
    assert "AS MATERIALIZED" in (root / "target" / "run" / "postgres" / "drift" / "usage.sql").read_text()


def test_spine_windows_on_postgres_read_the_training_query(
    tmp_path: Path, postgres_dsn: str, postgres_schema: str
) -> None:
    root = _postgres_project(tmp_path, postgres_dsn, postgres_schema)
    project = fsql.load_project(root)
    spine = pq.read_table(root / "data" / "spine.parquet")
    report = run_drift(
        project, service="usage", reference=Side(window=(START, SPLIT)), current=Side(window=(SPLIT, END)),
        spine=spine,
    )  # fmt: skip
    events = pq.read_table(root / "data" / "events.parquet")
    check_against_scipy(report, events.slice(0, N_REFERENCE), events.slice(N_REFERENCE))
    check_verdicts(report)
    assert "LEFT JOIN LATERAL" in (root / "target" / "run" / "postgres" / "drift" / "usage.sql").read_text()


# --- BigQuery SQL, transpiled to DuckDB and run ---------------------------------------------------


def test_bigquery_drift_sql_transpiled_and_run_agrees_with_scipy(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p")
    project = fsql.load_project(root, data_checks=False)
    reference, current = split(pq.read_table(root / "data" / "events.parquet"), root)
    planned, _ = plan(project, "usage")
    sides = [exp.Table(this=exp.to_identifier(name, quoted=True)) for name in ("ref_set", "cur_set")]
    sql = compile_drift([p.compared for p in planned], reference=sides[0], current=sides[1], dialect="bigquery",
                        title="files")  # fmt: skip
    check_bigquery_sql(sql)
    assert "MATERIALIZED" not in sql and "NULLS" not in sql
    connection = duckdb.connect()
    connection.register("ref_set", pq.read_table(reference))
    connection.register("cur_set", pq.read_table(current))
    rows = connection.sql(sqlglot.parse_one(sql, read="bigquery").sql("duckdb")).to_arrow_table().to_pylist()
    by_name = {row["feature"]: row for row in rows}
    for name in FEATURES:
        r, c = values(pq.read_table(reference), name), values(pq.read_table(current), name)
        expected = numeric_expected(r, c) if name in NUMERIC else categorical_expected(r, c)
        for statistic, value in expected.items():
            assert by_name[name][statistic] == pytest.approx(value, abs=TOLERANCE), (name, statistic)


@pytest.mark.spark
def test_spark_drift_sql_run_on_local_spark_agrees_with_scipy(tmp_path: Path) -> None:
    from pit_window import spark_session, spark_view

    root = write_project(tmp_path / "p")
    project = fsql.load_project(root, data_checks=False)
    reference, current = split(pq.read_table(root / "data" / "events.parquet"), root)
    planned, _ = plan(project, "usage")
    names = (f"drift_ref_{abs(hash(tmp_path)) % 10**8}", f"drift_cur_{abs(hash(tmp_path)) % 10**8}")
    for name, path in zip(names, (reference, current), strict=True):
        spark_view(name, pq.read_table(path))
    sides = [exp.Table(this=exp.to_identifier(name, quoted=True)) for name in names]
    sql = compile_drift([p.compared for p in planned], reference=sides[0], current=sides[1], dialect="spark",
                        title="files")  # fmt: skip
    rows = [row.asDict() for row in spark_session().sql(sql).collect()]
    by_name = {row["feature"]: row for row in rows}
    for name in FEATURES:
        r, c = values(pq.read_table(reference), name), values(pq.read_table(current), name)
        expected = numeric_expected(r, c) if name in NUMERIC else categorical_expected(r, c)
        for statistic, value in expected.items():
            assert by_name[name][statistic] == pytest.approx(value, abs=TOLERANCE), (name, statistic)


# --- golden SQL per dialect --------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
def test_golden_drift_sql(dialect: str, update_golden: bool, tmp_path: Path) -> None:
    project = fsql.load_project(FIXTURE, data_checks=False)  # SQL text only: no data needed
    project.config = replace(project.config, target_dir=tmp_path)
    planned, _ = plan(project, "usage")
    spine = Spine(fsql.compile.spine_relation("spine", dialect))
    sides = [
        window_relation(project.definitions, spine, window, label=label, service="usage", dialect=dialect)
        for label, window in (("reference", (START, SPLIT)), ("current", (SPLIT, END)))
    ]
    title = "service 'usage': spine windows [2024-03-01, 2024-03-15) and [2024-03-15, 2024-04-01)"
    sql = compile_drift(
        [p.compared for p in planned], reference=sides[0], current=sides[1], dialect=dialect, title=title
    )
    path = GOLDEN / dialect / "usage.sql"
    if update_golden or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(sql)
        if not update_golden:
            pytest.fail(f"wrote missing golden file {path}; review it and rerun")
    assert sql == path.read_text(), f"{path} differs: review, then rerun with --update-golden"


# --- the HTML report ---------------------------------------------------------------------------------


class _Svgs(HTMLParser):
    """Each histogram's rects, by feature and side, with the count their title gives."""

    def __init__(self) -> None:
        super().__init__()
        self.bars: dict[str, dict[str, list[str]]] = {}
        self._feature: str | None = None
        self._side: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "svg":
            self._feature = str(found["data-feature"])
            self.bars[self._feature] = {"reference": [], "current": []}
        elif tag == "rect" and self._feature is not None:
            self._side = found["class"]

    def handle_data(self, data: str) -> None:
        if self._feature is not None and self._side is not None:
            self.bars[self._feature][self._side].append(data)
            self._side = None

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._feature = None


def test_html_report_draws_each_features_histogram_reference_against_current(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p")
    reference, current = split(pq.read_table(root / "data" / "events.parquet"), root)
    report = run_drift(
        fsql.load_project(root), service="usage", reference=Side(file=reference), current=Side(file=current),
        histograms=True,
    )  # fmt: skip
    page = write_html(report, tmp_path / "out" / "drift.html").read_text()
    assert "<script" not in page  # static: opens from the file system, no server
    parser = _Svgs()
    parser.feed(page)
    assert set(parser.bars) == set(FEATURES)
    r, c = values(pq.read_table(reference), "shifted"), values(pq.read_table(current), "shifted")
    cut = edges(r)
    expected = [np.bincount(np.searchsorted(cut, v, side="left"), minlength=len(cut) + 1) for v in (r, c)]
    histogram = report.histograms["shifted"]
    assert histogram.reference == expected[0].tolist() and histogram.current == expected[1].tolist()
    assert histogram.labels[0] == f"<= {cut[0]:.4g}" and histogram.labels[-1] == f"> {cut[-1]:.4g}"
    assert len(parser.bars["shifted"]["reference"]) == len(cut) + 1
    assert parser.bars["shifted"]["current"][-1].startswith(f"> {cut[-1]:.4g}: current {expected[1][-1]} ")
    plan_bars = dict(zip(report.histograms["plan"].labels, report.histograms["plan"].reference, strict=True))
    assert plan_bars["max"] == 0 and set(plan_bars) == {"free", "pro", "team", "max"}


def test_cli_writes_the_html_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_project(tmp_path / "p")
    monkeypatch.chdir(root)
    reference, current = split(pq.read_table(root / "data" / "events.parquet"), root)
    args = ["drift", "-s", "usage", "--reference", str(reference), "--current", str(current), "--html", "r.html"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "wrote r.html" in result.stderr
    assert (root / "r.html").read_text().count('<svg class="histogram"') == len(FEATURES)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_both_sides_training_queries_keep_their_ctes_apart(dialect: str) -> None:
    """Spark hoists nested CTEs into one WITH: the two sides' CTEs must not share a name."""
    sql = (GOLDEN / dialect / "usage.sql").read_text()
    names = [cte.alias for cte in sqlglot.parse_one(sql, read=dialect).find_all(exp.CTE)]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    assert "_fsql_reference__spine" in names and "_fsql_current__spine" in names


@pytest.mark.browser
def test_in_a_real_browser_every_histogram_is_drawn_to_its_counts(tmp_path: Path) -> None:
    """Headless Chromium lays the report out: each feature's SVG has a width, and its bars' drawn
    heights follow the counts (the tallest bar is the largest count, an empty bin has none)."""
    import os
    import subprocess

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no chromium: .ci/run installs it (apt-get install -y chromium)")
        pytest.skip("no chromium or chromium-browser on PATH (apt-get install -y chromium)")
    root = write_project(tmp_path / "p")
    reference, current = split(pq.read_table(root / "data" / "events.parquet"), root)
    report = run_drift(
        fsql.load_project(root), service="usage", reference=Side(file=reference), current=Side(file=current),
        histograms=True,
    )  # fmt: skip
    page = write_html(report, tmp_path / "drift.html")
    # The report has no script of its own; a copy gets one that writes what the browser laid out.
    measure = (
        "<script>document.body.setAttribute('data-layout', JSON.stringify([...document.querySelectorAll('svg')]"
        ".map(s => ({feature: s.dataset.feature, width: s.getBoundingClientRect().width, bars: [...s.querySelectorAll"
        "('rect')].map(r => ({side: r.getAttribute('class'), height: r.getBBox().height}))}))));</script>"
    )
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", measure + "</body>"))
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'chromium'}"]
    dumped = subprocess.run([*flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True, check=True).stdout
    found = re.search(r'data-layout="([^"]*)"', dumped)
    assert found is not None, dumped[:2000]
    layout = {s["feature"]: s for s in json.loads(html.unescape(found.group(1)))}
    assert set(layout) == set(FEATURES)
    for feature, drawn in layout.items():
        assert drawn["width"] > 0, feature
        for side in ("reference", "current"):
            heights = [b["height"] for b in drawn["bars"] if b["side"] == side]
            counts = getattr(report.histograms[feature], side)
            assert len(heights) == len(counts) and max(heights) > 0, (feature, side, heights)
            assert heights.index(max(heights)) == counts.index(max(counts)), (feature, side, heights, counts)
            assert all(h == 0 for h, c in zip(heights, counts, strict=True) if c == 0), (feature, side)
    screenshot = Path(__file__).resolve().parents[1] / "target" / "drift-screenshot.png"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([*flags, "--window-size=1200,1600", f"--screenshot={screenshot}", page.as_uri()],
                   capture_output=True, check=True)  # fmt: skip
    assert screenshot.stat().st_size > 0

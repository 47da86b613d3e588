"""`fsql drift`: compare a service's features between a reference and a current training set.

Each side is a training set file fsql wrote (`fsql train`: parquet, or CSV), loaded into
the offline engine, or a window `[start, end)` of a spine's timestamps, for which the
compiled training query itself becomes the side's relation: the training set is never
pulled into Python. One query (see `fsql.drift.sql`) then computes every statistic, its
SQL written to target/run/<dialect>/drift/<service>.sql before it runs. Judging uses each
feature's thresholds (`drift:` on the feature, then its view, then the defaults).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from fsql import artifacts
from fsql.column_types import NUMBERS, TEXTS
from fsql.compile import render, resolve_features, training_query
from fsql.compile.context import column
from fsql.compile.spine import DEFAULT_SPINE_TIMESTAMP, SPINE_FILE_SUFFIXES, Spine, columns_probe, spine_relation
from fsql.compile.strategy import readable_file_formats, strategy_for
from fsql.engines import OfflineEngine, open_engine
from fsql.errors import FsqlError, ProjectError
from fsql.spec import Definitions

from .model import EPSILON, Thresholds
from .sql import CATEGORICAL, MATERIALIZED_CTES, NUMERIC, Compared, drift_query, histogram_query

if TYPE_CHECKING:
    from fsql.api import Project, SpineInput

# A feature's status, worst first: significant and nulls make `fsql drift` exit 1.
STATUSES = ("significant", "nulls", "moderate", "ok")
FAILING = ("significant", "nulls")


@dataclass(frozen=True)
class Side:
    """One side of the comparison: a training set file, or a window of the spine's timestamps."""

    file: Path | None = None
    window: tuple[datetime, datetime] | None = None

    def __post_init__(self) -> None:
        if (self.file is None) == (self.window is None):
            raise ProjectError("a drift side is a training set file or a spine window, exactly one of them")

    def describe(self) -> str:
        if self.file is not None:
            return str(self.file)
        assert self.window is not None
        start, end = (t.astimezone(UTC).isoformat() for t in self.window)
        return f"spine window [{start}, {end})"


@dataclass
class FeatureDrift:
    feature: str
    view: str
    kind: str  # numeric | categorical
    thresholds: Thresholds
    reference_rows: int
    current_rows: int
    reference_values: int
    current_values: int
    psi: float | None
    ks: float | None
    chi2: float | None
    bins: int
    status: str = "ok"
    reasons: list[str] = field(default_factory=list)

    @property
    def null_rate_reference(self) -> float | None:
        return _rate(self.reference_rows - self.reference_values, self.reference_rows)

    @property
    def null_rate_current(self) -> float | None:
        return _rate(self.current_rows - self.current_values, self.current_rows)

    def as_json(self) -> dict[str, Any]:
        t = self.thresholds
        return {
            "feature": self.feature, "view": self.view, "kind": self.kind, "status": self.status,
            "reasons": self.reasons, "reference_rows": self.reference_rows, "current_rows": self.current_rows,
            "null_rate_reference": self.null_rate_reference, "null_rate_current": self.null_rate_current,
            "psi": self.psi, "ks": self.ks, "chi2": self.chi2,
            "bins" if self.kind == NUMERIC else "categories": self.bins,
            "thresholds": {
                "psi_moderate": t.psi_moderate, "psi_significant": t.psi_significant, "null_rate": t.null_rate,
                "ks": t.ks, "bins": t.bins,
            },
        }  # fmt: skip


@dataclass
class Histogram:
    """A feature's cells, reference against current: bins in order, or its most frequent categories."""

    feature: str
    kind: str
    labels: list[str]
    reference: list[int]
    current: list[int]


@dataclass
class DriftReport:
    service: str
    reference: str
    current: str
    dialect: str
    features: list[FeatureDrift] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (feature, why)
    sql_path: Path | None = None
    seconds: float = 0.0
    histograms: dict[str, Histogram] = field(default_factory=dict)  # when asked for (`--html`)

    @property
    def failed(self) -> bool:
        return any(f.status in FAILING for f in self.features)

    def as_json(self) -> dict[str, Any]:
        return {
            "service": self.service, "reference": self.reference, "current": self.current,
            "dialect": self.dialect, "epsilon": EPSILON, "failed": self.failed,
            "sql_path": str(self.sql_path) if self.sql_path else None, "seconds": round(self.seconds, 4),
            "features": [f.as_json() for f in self.features],
            "skipped": [{"feature": name, "reason": why} for name, why in self.skipped],
        }  # fmt: skip


@dataclass(frozen=True)
class _Planned:
    compared: Compared
    view: str
    thresholds: Thresholds


def plan(project: Project, service: str) -> tuple[list[_Planned], list[tuple[str, str]]]:
    """The service's features to compare (numeric or categorical, not disabled) and those left out, with why."""
    request = resolve_features(project.definitions, service=service)
    planned, skipped = [], []
    for view_request in request.views:
        for output in view_request.features:
            thresholds = Thresholds.resolve(output.feature.drift, view_request.view.drift)
            kind = _kind(output.feature.type)
            if not thresholds.enabled:
                skipped.append((output.output_name, "drift: {enabled: false}"))
            elif kind is None:
                why = f"type {output.feature.type.value.lower()}: neither numeric nor categorical"
                skipped.append((output.output_name, why))
            else:
                compared = Compared(output.output_name, kind, thresholds.bins)
                planned.append(_Planned(compared, view_request.view.name, thresholds))
    return planned, skipped


def _kind(type_: exp.DType) -> str | None:
    if type_ in NUMBERS:
        return NUMERIC
    if type_ in TEXTS or type_ == exp.DType.BOOLEAN:
        return CATEGORICAL
    return None


def run_drift(
    project: Project,
    *,
    service: str,
    reference: Side,
    current: Side,
    spine: SpineInput | None = None,
    spine_timestamp: str = DEFAULT_SPINE_TIMESTAMP,
    histograms: bool = False,
) -> DriftReport:
    """Compute and judge the drift of a service's features from `reference` to `current`.

    Args:
        spine: the spine the windows read (needed when a side is a window).
        histograms: also fetch each feature's cells (a second query) into `report.histograms`.

    Raises:
        ProjectError: a window without a spine, a file missing or lacking a feature column.
        FsqlError: the current (or the reference) side has no rows.
    """
    started = time.perf_counter()
    planned, skipped = plan(project, service)
    engine = open_engine(project.config.target, project.config.root)
    report = DriftReport(service, reference.describe(), current.describe(), engine.dialect, skipped=skipped)
    try:
        if not planned:
            return report
        names = [p.compared.name for p in planned]
        sides = [_relation(project, engine, side, label, service, names, spine, spine_timestamp)
                 for side, label in ((reference, "reference"), (current, "current"))]  # fmt: skip
        sql = compile_drift(
            [p.compared for p in planned], reference=sides[0], current=sides[1], dialect=engine.dialect,
            title=f"service '{service}': reference {reference.describe()}, current {current.describe()}",
        )  # fmt: skip
        path = artifacts.write_sql(project.config.target_dir, "run", engine.dialect, f"drift/{service}", sql)
        report.sql_path = path.relative_to(project.config.root) if path.is_relative_to(project.config.root) else path
        result = engine.query_arrow(sql, sql_path=report.sql_path, node=f"drift.{service}")
        rows = {r["feature"]: r for r in result.to_pylist()}
        if histograms and all(rows[n]["current_rows"] for n in names):
            query = histogram_query(
                sides[0], sides[1], [p.compared for p in planned], materialize=engine.dialect in MATERIALIZED_CTES
            )
            text = render(query, engine.dialect, [f"fsql drift histograms of service '{service}'"])
            shown = artifacts.write_sql(
                project.config.target_dir, "run", engine.dialect, f"drift/{service}_histograms", text
            )
            cells = engine.query_arrow(text, sql_path=shown, node=f"drift.{service}.histograms").to_pylist()
            report.histograms = _histograms(planned, cells)
    finally:
        engine.close()
    first = next(iter(rows.values()))
    for label, side in (("current", current), ("reference", reference)):
        count = first[f"{label}_rows"]
        if not count:
            raise FsqlError(
                f"fsql drift: the {label} side ({side.describe()}) has no rows, so there is nothing to compare: "
                f"pick a window (or file) that holds spine rows of service '{service}'"
            )
    report.features = [_judged(p, rows[p.compared.name]) for p in planned]
    report.seconds = time.perf_counter() - started
    return report


def _relation(
    project: Project, engine: OfflineEngine, side: Side, label: str, service: str, names: list[str],
    spine: SpineInput | None, spine_timestamp: str,
) -> exp.Expr:  # fmt: skip
    if side.file is not None:
        return _file_relation(project, engine, side.file, label, names)
    assert side.window is not None
    if spine is None:
        raise ProjectError(f"the {label} side is a spine window: give the spine it reads with --spine")
    probed = project.spine(engine, spine, spine_timestamp)
    return window_relation(
        project.definitions, probed, side.window, label=label, service=service, dialect=engine.dialect,
        file_root=project.config.root,
    )  # fmt: skip


def window_relation(
    definitions: Definitions, spine: Spine, window: tuple[datetime, datetime], *, label: str, service: str,
    dialect: str, file_root: Path | None = None,
) -> exp.Select:  # fmt: skip
    """The training query of `service` over the spine rows with `start <= timestamp < end`."""
    start, end = (exp.cast(exp.Literal.string(t.astimezone(UTC).isoformat()), "TIMESTAMPTZ") for t in window)
    ts = exp.cast(column(spine.timestamp), "TIMESTAMPTZ")
    windowed = (
        exp.select(exp.Star())
        .from_(spine.relation.copy())
        .where(exp.and_(exp.GTE(this=ts.copy(), expression=start), exp.LT(this=ts, expression=end)))
    )
    relation = windowed.subquery(exp.to_identifier(f"_fsql_{label}_spine", quoted=True))
    windowed_spine = Spine(relation, spine.timestamp, spine.columns, None, spine.types)
    query, _ = training_query(definitions, spine=windowed_spine, dialect=dialect, service=service, file_root=file_root)
    return query


def compile_drift(features: list[Compared], *, reference: exp.Expr, current: exp.Expr, dialect: str, title: str) -> str:
    """The SQL text of the drift query for `dialect` (its header says what it compares)."""
    query = drift_query(reference, current, features, materialize=dialect in MATERIALIZED_CTES)
    header = [
        f"fsql drift of {title}",
        f"dialect {dialect}; a spine window's training query uses strategy {strategy_for(dialect).name}; "
        "run it in a session whose time zone is UTC",
        f"one row per feature: null counts, PSI (bins at the reference's quantiles, empty shares as {EPSILON}),",
        "KS for numeric features, PSI and Pearson's chi-square over the categories of categorical ones",
    ]
    return render(query, dialect, header)


def _file_relation(project: Project, engine: OfflineEngine, path: Path, label: str, names: list[str]) -> exp.Expr:
    """The training set file as the engine reads it: scanned in place where the engine scans
    files of its format (DuckDB), else loaded into it (a temporary table on Postgres)."""
    import pyarrow.csv as pv
    import pyarrow.parquet as pq

    found = path if path.exists() else project.config.root / path
    if not found.is_file():
        raise ProjectError(f"the {label} training set '{path}' was not found (looked in . and {project.config.root})")
    found = found.resolve()
    is_csv = found.name.lower().endswith(SPINE_FILE_SUFFIXES[2:])
    if ("csv" if is_csv else "parquet") in readable_file_formats(engine.dialect):
        relation = spine_relation(str(found), engine.dialect)
        _check_columns(engine.result_columns(columns_probe(relation, engine.dialect)), names, label, path)
        return relation
    table = pv.read_csv(found) if is_csv else pq.read_table(found)
    _check_columns(tuple(table.column_names), names, label, path)
    name = f"_fsql_drift_{label}"
    engine.register_arrow(name, table.select(names))
    return exp.Table(this=exp.to_identifier(name, quoted=True))


def _check_columns(columns: tuple[str, ...], names: list[str], label: str, path: Path) -> None:
    missing = [n for n in names if n not in columns]
    if missing:
        raise ProjectError(
            f"the {label} training set '{path}' lacks feature column(s) {', '.join(missing)}: build it for the same "
            f"service with `fsql train`"
        )


def _judged(planned: _Planned, row: dict[str, Any]) -> FeatureDrift:
    t = planned.thresholds
    drift = FeatureDrift(
        planned.compared.name, planned.view, planned.compared.kind, t,
        int(row["reference_rows"]), int(row["current_rows"]), int(row["reference_values"]),
        int(row["current_values"]), row["psi"], row["ks"], row["chi2"], int(row["bins"] or 0),
    )  # fmt: skip
    if not drift.reference_values or not drift.current_values:
        # Every value NULL on a side: no distribution to compare (the null rate says it).
        drift.psi = drift.ks = drift.chi2 = None
    found: set[str] = set()
    rate = drift.null_rate_current
    if rate is not None and rate > t.null_rate:
        found.add("nulls")
        drift.reasons.append(f"null rate {rate:.1%} > {t.null_rate:.1%}")
    if drift.psi is not None and drift.psi > t.psi_significant:
        found.add("significant")
        drift.reasons.append(f"PSI {drift.psi:.3f} > {t.psi_significant:g}")
    elif drift.psi is not None and drift.psi > t.psi_moderate:
        found.add("moderate")
        drift.reasons.append(f"PSI {drift.psi:.3f} > {t.psi_moderate:g} (moderate)")
    if t.ks is not None and drift.ks is not None and drift.ks > t.ks:
        found.add("significant")
        drift.reasons.append(f"KS {drift.ks:.3f} > {t.ks:g}")
    drift.status = next((s for s in STATUSES if s in found), "ok")
    return drift


MOST_CATEGORIES = 20  # a report shows at most these, the rest summed as "(other)"


def _histograms(planned: list[_Planned], rows: list[dict[str, Any]]) -> dict[str, Histogram]:
    found = {}
    for p in planned:
        name, kind = p.compared.name, p.compared.kind
        cells = [r for r in rows if r["feature"] == name and r["part"] == "cell"]
        if kind == NUMERIC:
            edges = sorted(r["edge"] for r in rows if r["feature"] == name and r["part"] == "edge")
            by_bin = {int(r["label"]): r for r in cells}
            bins = range(len(edges) + 1)
            labels = [_bin_label(edges, i) for i in bins]
            counts = [(by_bin[i]["r"], by_bin[i]["c"]) if i in by_bin else (0, 0) for i in bins]
        else:
            ordered = sorted(cells, key=lambda r: (-(r["r"] + r["c"]), str(r["label"])))
            kept, rest = ordered[:MOST_CATEGORIES], ordered[MOST_CATEGORIES:]
            labels = [str(r["label"]) for r in kept] + (["(other)"] if rest else [])
            counts = [(r["r"], r["c"]) for r in kept]
            if rest:
                counts.append((sum(r["r"] for r in rest), sum(r["c"] for r in rest)))
        found[name] = Histogram(name, kind, labels, [int(r) for r, _ in counts], [int(c) for _, c in counts])
    return found


def _bin_label(edges: list[float], index: int) -> str:
    if not edges:
        return "all"
    if index == 0:
        return f"<= {edges[0]:.4g}"
    if index == len(edges):
        return f"> {edges[-1]:.4g}"
    return f"({edges[index - 1]:.4g}, {edges[index]:.4g}]"


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None

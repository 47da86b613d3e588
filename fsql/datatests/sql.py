"""A data test -> one SQL query for a dialect, built with sqlglot.

dbt's convention: a test is a query whose rows are its failures. fsql wraps that query
so the engine returns only the number of failures (`_fsql_failures`, on every row) and a
few failing rows as samples: nothing else leaves the warehouse. A freshness test returns
one row instead, the newest event time at or before the time it is measured against, and
the age is compared with its thresholds by the runner.

The tested relation is a source as its definition reads it, or a feature view's feature
rows (the compiler's own `feature_rows`: rows with a NULL key or event time never reach a
view) with the event and created times under their source's column names.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import sqlglot
from sqlglot import exp

from fsql.compile import render
from fsql.compile.context import CREATED_TS, EVENT_TS, column, ident
from fsql.compile.latest import for_engine
from fsql.compile.passes import feature_rows
from fsql.compile.request import OutputFeature, ViewRequest
from fsql.definitions import source_relation
from fsql.spec import Definitions, Source

from .model import DataTest

FAILURES = "_fsql_failures"  # the count of failing rows, on every sample row
LATEST = "latest_event"  # freshness: the newest event time at or before `at`
SAMPLES = 5
_TESTED = "tested"


def compile_test(
    definitions: Definitions, test: DataTest, *, dialect: str, at: datetime, file_root: Path | None = None
) -> str:
    """The SQL text of one test for `dialect`.

    Args:
        at: freshness is measured against this instant (a literal in the SQL); other kinds ignore it.
        file_root: anchor relative file paths here (for SQL fsql runs itself).
    """
    tested = tested_relation(definitions, test)
    if test.kind == "freshness":
        query = _freshness(source_of(definitions, test).timestamp, tested, at)
    elif test.kind == "expression":
        query = _counted(_expression(test, tested, definitions.dialect))
    else:
        query = _counted(_FAILING[test.kind](test, tested))
    query = for_engine(query, definitions, dialect, file_root)
    header = [
        f"fsql data test '{test.name}': {test.kind} on {test.node_kind} '{test.node}' ({test.where})",
        "its rows are the failures: their number in _fsql_failures, and a few of them"
        if test.kind != "freshness"
        else f"the newest event time at or before {_iso(at)}, compared with the thresholds by fsql",
    ]
    return render(query, dialect, header)


def tested_relation(definitions: Definitions, test: DataTest) -> exp.Subquery:
    """The rows a test reads, as a subquery aliased `tested`."""
    if test.node_kind == "source":
        source = definitions.sources[test.node]
        return exp.select(exp.Star()).from_(source_relation(source, definitions.dialect)).subquery(ident(_TESTED))
    view = definitions.feature_views[test.node]
    source = definitions.sources[view.source]
    features = tuple(OutputFeature(f, f.name) for f in view.features if f.aggregate is None)
    rows = feature_rows(ViewRequest(view, source, features), definitions.dialect)
    projections: list[exp.Expr] = [column(k.name) for k in view.join_keys]
    projections.append(exp.alias_(column(EVENT_TS), source.timestamp, quoted=True))
    if source.created_timestamp:
        projections.append(exp.alias_(column(CREATED_TS), source.created_timestamp, quoted=True))
    projections.extend(column(f.output_name) for f in features)
    return exp.select(*projections).from_(rows.subquery(ident("feature_rows"))).subquery(ident(_TESTED))


def _rows(tested: exp.Subquery) -> exp.Select:
    return exp.select(exp.Star()).from_(tested.copy())


def _not_null(test: DataTest, tested: exp.Subquery) -> exp.Select:
    return _rows(tested).where(exp.or_(*(exp.Is(this=column(c), expression=exp.Null()) for c in test.columns)))


def _unique(test: DataTest, tested: exp.Subquery) -> exp.Select:
    """Each group of rows sharing the columns' values, when it has more than one row (NULLs are left out)."""
    count = exp.Count(this=exp.Star())
    present = [exp.Not(this=exp.Is(this=column(c), expression=exp.Null())) for c in test.columns]
    return (
        exp.select(*(column(c) for c in test.columns), exp.alias_(count.copy(), "n_records", quoted=True))
        .from_(tested.copy())
        .where(exp.and_(*present))
        .group_by(*(column(c) for c in test.columns))
        .having(exp.GT(this=count, expression=exp.Literal.number(1)))
    )


def _accepted_values(test: DataTest, tested: exp.Subquery) -> exp.Select:
    """Rows whose value is not among the accepted ones (a NULL is not a failure: see not_null)."""
    listed = exp.In(this=column(test.columns[0]), expressions=[exp.convert(v) for v in test.values])
    return _rows(tested).where(exp.Not(this=exp.paren(listed, copy=False)))


def _accepted_range(test: DataTest, tested: exp.Subquery) -> exp.Select:
    """Rows outside [min, max] (or (min, max) when not inclusive); a NULL is not a failure."""
    value = column(test.columns[0])
    low_op, high_op = (exp.GTE, exp.LTE) if test.inclusive else (exp.GT, exp.LT)
    within = [
        *([low_op(this=value.copy(), expression=exp.convert(test.min))] if test.min is not None else []),
        *([high_op(this=value.copy(), expression=exp.convert(test.max))] if test.max is not None else []),
    ]
    return _rows(tested).where(exp.Not(this=exp.paren(exp.and_(*within), copy=False)))


def _row_count(test: DataTest, tested: exp.Subquery) -> exp.Select:
    """One row, the relation's row count, when it is out of bounds."""
    counted = exp.select(exp.alias_(exp.Count(this=exp.Star()), "row_count", quoted=True)).from_(tested.copy())
    n = column("row_count")
    outside = [
        *([exp.LT(this=n.copy(), expression=exp.convert(test.min))] if test.min is not None else []),
        *([exp.GT(this=n.copy(), expression=exp.convert(test.max))] if test.max is not None else []),
    ]
    return exp.select(exp.Star()).from_(counted.subquery(ident("counted"))).where(exp.or_(*outside))


def _expression(test: DataTest, tested: exp.Subquery, source_dialect: str) -> exp.Select:
    """Rows for which the predicate is false (NULL is not false, as in dbt's expression_is_true)."""
    assert test.expression is not None, "checked when the test was read"
    predicate = sqlglot.parse_one(test.expression, read=source_dialect)
    for read in predicate.find_all(exp.Column):
        read.this.set("quoted", True)
    return _rows(tested).where(exp.Not(this=exp.paren(predicate, copy=False)))


_FAILING: dict[str, Callable[[DataTest, exp.Subquery], exp.Select]] = {
    "not_null": _not_null,
    "unique": _unique,
    "accepted_values": _accepted_values,
    "accepted_range": _accepted_range,
    "row_count": _row_count,
}


def _counted(failing: exp.Select) -> exp.Select:
    """The number of failing rows on each of at most SAMPLES of them: one query, a handful of rows back."""
    total = exp.Window(this=exp.Count(this=exp.Star()))
    return (
        exp.select(exp.alias_(total, FAILURES, quoted=True), exp.Column(this=exp.Star(), table=ident("failures")))
        .from_(failing.subquery(ident("failures")))
        .limit(SAMPLES)
    )


def _freshness(time_column: str, tested: exp.Subquery, at: datetime) -> exp.Select:
    """The newest event time at or before `at`, as a UTC instant (NULL when there is none)."""
    instant = exp.cast(column(time_column), "TIMESTAMPTZ")
    bound = exp.cast(exp.Literal.string(_iso(at)), "TIMESTAMPTZ")
    return (
        exp.select(exp.alias_(exp.Max(this=instant.copy()), LATEST, quoted=True))
        .from_(tested.copy())
        .where(exp.LTE(this=instant, expression=bound))
    )


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00:00")


def source_of(definitions: Definitions, test: DataTest) -> Source:
    name = test.node if test.node_kind == "source" else definitions.feature_views[test.node].source
    return definitions.sources[name]

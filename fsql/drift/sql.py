"""Drift statistics as one SQL query for a dialect, built with sqlglot.

The query reads two relations, `_fsql_reference` and `_fsql_current` (CTEs: a training
set file loaded into the engine, or the compiled training query over a spine window), and
returns one row per feature. Nothing but those rows leaves the engine. NULLs are counted,
then left out of every distribution.

Numeric features (integers and fractions):
- bins: B (default 10) cut at the reference's quantiles. Edge k (k = 1..B-1) is the
  smallest reference value v with at least k/B of the non-NULL reference values <= v
  (numpy's `quantile(method="inverted_cdf")`); equal edges merge. A value x falls in bin
  `count of edges < x`: bin 0 is x <= e1, bin i is e_i < x <= e_(i+1), the last x > e_last.
- PSI = sum over bins of (c - r) * ln(c / r), r and c the shares of the reference's and
  the current's non-NULL values in the bin, a share of 0 taken as EPSILON (1e-4).
- KS: the two-sample Kolmogorov-Smirnov statistic, max over values x of
  |F_ref(x) - F_cur(x)| with F the empirical CDFs (scipy's `ks_2samp(...).statistic`).

Categorical features (text, booleans): each distinct value is a category.
- PSI over the categories' shares, with the same EPSILON.
- chi2: Pearson's chi-square statistic of the 2 x K table of counts (reference and
  current by category), sum of (O - E)^2 / E with E = row total * column total / N
  (scipy's `chi2_contingency(table, correction=False)` statistic), with K - 1 degrees of freedom.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlglot import exp

from fsql.compile.context import column, ident

from .model import EPSILON

REFERENCE = "_fsql_reference"
CURRENT = "_fsql_current"
_CUTS = "_fsql_cuts"
NUMERIC, CATEGORICAL = "numeric", "categorical"
# The columns of each result row.
RESULT_COLUMNS = (
    "feature", "kind", "reference_rows", "current_rows", "reference_values", "current_values",
    "psi", "ks", "chi2", "bins",
)  # fmt: skip


@dataclass(frozen=True)
class Compared:
    """One feature of the training set to compare: its column, numeric or categorical, its bins."""

    name: str
    kind: str  # NUMERIC or CATEGORICAL
    bins: int = 10


# Dialects whose CTEs can be asked to be computed once (`AS MATERIALIZED`): each side is read
# by every feature's statistics, and DuckDB otherwise inlines a CTE at every reference.
MATERIALIZED_CTES = frozenset({"duckdb", "postgres"})


def drift_query(
    reference: exp.Expr, current: exp.Expr, features: Sequence[Compared], *, materialize: bool = False
) -> exp.Select:
    """The query: one row per feature, with the columns of RESULT_COLUMNS.

    Args:
        reference, current: a query or a table, each holding every feature as a column.
        materialize: compute the two sides once (`AS MATERIALIZED`; see MATERIALIZED_CTES).

    Example:
        >>> q = drift_query(exp.to_table("a"), exp.to_table("b"), [Compared("x", NUMERIC)])
        >>> q.sql("duckdb")[:45]
        'WITH "_fsql_reference" AS (SELECT * FROM a), '
    """
    if not features:
        raise ValueError("drift_query needs at least one feature")
    return _assembled(reference, current, features, _row, materialize).order_by(_ascending("feature"))


def histogram_query(
    reference: exp.Expr, current: exp.Expr, features: Sequence[Compared], *, materialize: bool = False
) -> exp.Select:
    """The cells behind the statistics, for a report's histograms: rows (feature, part, label, r, c, edge).

    `part` 'cell' is one bin (label: its index) or category (label: the value as text) with the
    reference's and the current's counts; `part` 'edge' is a numeric feature's bin edge.
    """
    if not features:
        raise ValueError("histogram_query needs at least one feature")
    return _assembled(reference, current, features, _histogram_rows, materialize)


def _assembled(
    reference: exp.Expr,
    current: exp.Expr,
    features: Sequence[Compared],
    final: Callable[[Compared, _Names], exp.Query],
    materialize: bool,
) -> exp.Select:
    """The CTEs every feature's statistics read, and the UNION ALL of `final` per feature over them."""
    sides = (_relation(reference.copy(), REFERENCE), _relation(current.copy(), CURRENT))
    ctes: list[tuple[str, exp.Expr]] = [(REFERENCE, sides[0]), (CURRENT, sides[1])]
    ctes.append((_CUTS, _cuts(max(f.bins for f in features))))
    parts: list[exp.Query] = []
    for index, feature in enumerate(features):
        names = _Names(index)
        ctes.append((names.values, _values(feature.name)))
        ctes.append((names.totals, _totals(names)))
        if feature.kind == NUMERIC:
            ctes.append((names.edges, _edges(names, feature.bins)))
            ctes.append((names.cells, _bins(names)))
        else:
            ctes.append((names.cells, _categories(names)))
        parts.append(final(feature, names))
    union: exp.Query = parts[0]
    for part in parts[1:]:
        union = exp.union(union, part, distinct=False, copy=False)
    query = exp.select(exp.Star()).from_(union.subquery(ident("_fsql_drift")))
    for index, (name, body) in enumerate(ctes):
        query = query.with_(ident(name), as_=body, materialized=True if materialize and index < 2 else None, copy=False)
    return query


def _histogram_rows(feature: Compared, names: _Names) -> exp.Query:
    def text(value: str) -> exp.Expr:
        return exp.cast(exp.Literal.string(value), "TEXT")

    cells = exp.select(
        exp.alias_(text(feature.name), "feature", quoted=True),
        exp.alias_(text("cell"), "part", quoted=True),
        exp.alias_(exp.cast(column("cell"), "TEXT"), "label", quoted=True),
        exp.alias_(exp.cast(column("r"), "BIGINT"), "r", quoted=True),
        exp.alias_(exp.cast(column("c"), "BIGINT"), "c", quoted=True),
        exp.alias_(_double(exp.Null()), "edge", quoted=True),
    ).from_(_table(names.cells))
    if feature.kind != NUMERIC:
        return cells
    edges = exp.select(
        exp.alias_(text(feature.name), "feature", quoted=True),
        exp.alias_(text("edge"), "part", quoted=True),
        exp.alias_(exp.cast(exp.Null(), "TEXT"), "label", quoted=True),
        exp.alias_(exp.cast(_num(0), "BIGINT"), "r", quoted=True),
        exp.alias_(exp.cast(_num(0), "BIGINT"), "c", quoted=True),
        exp.alias_(_double(column("edge")), "edge", quoted=True),
    ).from_(_table(names.edges))
    return exp.union(cells, edges, distinct=False, copy=False)


class _Names:
    def __init__(self, index: int) -> None:
        prefix = f"_fsql_f{index}"
        self.values, self.totals = f"{prefix}_values", f"{prefix}_totals"
        self.edges, self.cells = f"{prefix}_edges", f"{prefix}_cells"


def _relation(relation: exp.Expr, side: str) -> exp.Expr:
    if not isinstance(relation, exp.Query):
        return exp.select(exp.Star()).from_(relation)
    return _prefixed_ctes(relation, f"{side}__")


def _prefixed_ctes(query: exp.Query, prefix: str) -> exp.Query:
    """The query with its CTEs renamed `<prefix><name>`: both sides are training queries with
    the same CTE names, and some dialects (Spark) hoist nested CTEs into one WITH.

    A CTE is visible to the CTEs after it and to the query body, never to itself (not
    recursive): `spine AS (SELECT * FROM spine)` reads the table, and keeps reading it.
    """
    with_ = query.args.get("with_")
    if not isinstance(with_, exp.With):
        return query
    ctes = list(with_.expressions)
    for index, cte in enumerate(ctes):
        old = cte.alias
        new = f"{prefix}{old}"
        readers: list[exp.Expr] = [c.this for c in ctes[index + 1 :]]
        readers.extend(v for k, v in query.args.items() if k != "with_" and isinstance(v, exp.Expr))
        for reader in readers:
            _rename_reads(reader, old, new)
        for join in query.args.get("joins") or []:
            _rename_reads(join, old, new)
        cte.set("alias", exp.TableAlias(this=ident(new)))
    return query


def _rename_reads(node: exp.Expr, old: str, new: str) -> None:
    """Reads of relation `old` (a table, or a bare name in FROM/JOIN) read `new`, aliased `old`
    when they had no alias, so the columns qualified with `old` still resolve."""
    for found in list(node.find_all(exp.Table, exp.Identifier)):
        if isinstance(found, exp.Identifier):
            if found.name == old and isinstance(found.parent, exp.From | exp.Join) and found.arg_key == "this":
                found.replace(exp.Table(this=ident(new), alias=exp.TableAlias(this=ident(old))))
        elif found.name == old and not found.args.get("db") and not found.args.get("catalog"):
            if not found.alias:
                found.set("alias", exp.TableAlias(this=ident(old)))
            found.set("this", ident(new))


def _table(name: str, alias: str | None = None) -> exp.Table:
    return exp.Table(this=ident(name), alias=exp.TableAlias(this=ident(alias)) if alias else None)


def _num(value: float | int) -> exp.Expr:
    return exp.Literal.number(value)


def _double(value: exp.Expr) -> exp.Cast:
    return exp.cast(value, "DOUBLE")


def _when(condition: exp.Expr, then: exp.Expr, otherwise: exp.Expr) -> exp.Case:
    return exp.Case(ifs=[exp.If(this=condition, true=then)], default=otherwise)


def _ascending(name: str) -> exp.Ordered:
    """ORDER BY name, over values never NULL: NULLS FIRST is BigQuery's and Spark's default, so none
    of them needs a NULLS clause it cannot translate inside a window."""
    return exp.Ordered(this=column(name), nulls_first=True)


def _sum(value: exp.Expr) -> exp.Sum:
    return exp.Sum(this=value)


def _cuts(bins: int) -> exp.Query:
    """k = 1 .. bins-1, one row each: the quantile cuts (a UNION ALL reads the same on every dialect)."""
    selects = [exp.select(exp.alias_(_num(k), "k", quoted=True)) for k in range(1, max(bins, 2))]
    query: exp.Query = selects[0]
    for select in selects[1:]:
        query = exp.union(query, select, distinct=False, copy=False)
    return query


def _values(name: str) -> exp.Query:
    """(side, x, n): each distinct non-NULL value with its count, side 0 the reference and 1 the current."""

    def side(relation: str, number: int) -> exp.Select:
        value = column(name)
        return (
            exp.select(
                exp.alias_(_num(number), "side", quoted=True),
                exp.alias_(value.copy(), "x", quoted=True),
                exp.alias_(exp.Count(this=exp.Star()), "n", quoted=True),
            )
            .from_(_table(relation))
            .where(exp.Not(this=exp.Is(this=value.copy(), expression=exp.Null())))
            .group_by(value.copy())
        )

    return exp.union(side(REFERENCE, 0), side(CURRENT, 1), distinct=False)


def _by_side(side: int, value: exp.Expr) -> exp.Expr:
    """SUM(CASE WHEN side = s THEN value ELSE 0 END), 0 (not NULL) when no row has that side."""
    return exp.Coalesce(
        this=_sum(_when(exp.EQ(this=column("side"), expression=_num(side)), value, _num(0))),
        expressions=[_num(0)],
    )


def _totals(names: _Names) -> exp.Select:
    """One row: the non-NULL values of the reference (`r_total`) and of the current (`c_total`)."""
    return exp.select(
        exp.alias_(_by_side(0, column("n")), "r_total", quoted=True),
        exp.alias_(_by_side(1, column("n")), "c_total", quoted=True),
    ).from_(_table(names.values))


def _edges(names: _Names, bins: int) -> exp.Select:
    """The reference's quantile edges: x where, for a cut k, (cum - n) * B < k * total <= cum * B."""
    cumulative = exp.Window(
        this=_sum(column("n")),
        order=exp.Order(expressions=[_ascending("x")]),
        spec=exp.WindowSpec(kind="ROWS", start="UNBOUNDED", start_side="PRECEDING", end="CURRENT ROW"),
    )
    ranked = (
        exp.select(
            column("x"),
            column("n"),
            exp.alias_(cumulative, "cum", quoted=True),
            exp.alias_(exp.Window(this=_sum(column("n"))), "total", quoted=True),
        )
        .from_(_table(names.values))
        .where(exp.EQ(this=column("side"), expression=_num(0)))
    )
    b, k = _num(bins), column("k", "cuts")
    cum, n, total = column("cum", "ranked"), column("n", "ranked"), column("total", "ranked")
    below = exp.LT(this=exp.Mul(this=exp.paren(exp.Sub(this=cum.copy(), expression=n)), expression=b.copy()),
                   expression=exp.Mul(this=k.copy(), expression=total.copy()))  # fmt: skip
    reaches = exp.LTE(this=exp.Mul(this=k.copy(), expression=total), expression=exp.Mul(this=cum, expression=b.copy()))
    return (
        exp.select(exp.alias_(column("x", "ranked"), "edge", quoted=True))
        .distinct()
        .from_(ranked.subquery(ident("ranked")))
        .join(_table(_CUTS, "cuts"), join_type="CROSS")
        .where(exp.and_(exp.LT(this=k.copy(), expression=b), below, reaches))
    )


def _bins(names: _Names) -> exp.Select:
    """(cell, r, c): the count of reference and current values in each bin (bin = edges below x).

    One sort instead of a join: the values and the edges in one sequence ordered by x, values
    before an edge equal to them; a value's bin is the running count of edges before it.
    """
    marks = exp.union(
        exp.select(column("side"), column("x"), column("n"), exp.alias_(_num(0), "is_edge", quoted=True)).from_(
            _table(names.values)
        ),
        exp.select(
            exp.alias_(_num(-1), "side", quoted=True),
            exp.alias_(column("edge"), "x", quoted=True),
            exp.alias_(_num(0), "n", quoted=True),
            exp.alias_(_num(1), "is_edge", quoted=True),
        ).from_(_table(names.edges)),
        distinct=False,
    )
    edges_before = exp.Window(
        this=_sum(column("is_edge")),
        order=exp.Order(expressions=[_ascending("x"), _ascending("is_edge")]),
        spec=exp.WindowSpec(kind="ROWS", start="UNBOUNDED", start_side="PRECEDING", end="CURRENT ROW"),
    )
    ranked = exp.select(
        column("side"), column("n"), column("is_edge"), exp.alias_(edges_before, "cell", quoted=True)
    ).from_(marks.subquery(ident("marks")))
    binned = (
        exp.select(column("side"), column("n"), column("cell"))
        .from_(ranked.subquery(ident("ranked")))
        .where(exp.EQ(this=column("is_edge"), expression=_num(0)))
    )
    return _cells(binned.subquery(ident("binned")))


def _categories(names: _Names) -> exp.Select:
    """(cell, r, c): the count of reference and current values of each category."""
    return _cells(exp.select(column("side"), column("n"), exp.alias_(column("x"), "cell", quoted=True)).from_(
        _table(names.values)
    ).subquery(ident("binned")))  # fmt: skip


def _cells(rows: exp.Subquery) -> exp.Select:
    return (
        exp.select(
            column("cell"),
            exp.alias_(_by_side(0, column("n")), "r", quoted=True),
            exp.alias_(_by_side(1, column("n")), "c", quoted=True),
        )
        .from_(rows)
        .group_by(column("cell"))
    )


def _share(count: str, total: str) -> exp.Expr:
    """count / total as a double, EPSILON when the count is 0."""
    share = exp.Div(this=_double(column(count, "cells")), expression=_double(column(total, "t")))
    return _when(exp.EQ(this=column(count, "cells"), expression=_num(0)), _double(_num(EPSILON)), share)


def _psi() -> exp.Expr:
    r, c = _share("r", "r_total"), _share("c", "c_total")
    return _sum(
        exp.Mul(
            this=exp.paren(exp.Sub(this=c.copy(), expression=r.copy())),
            expression=exp.Ln(this=exp.Div(this=c, expression=r)),
        )
    )


def _chi2() -> exp.Expr:
    """sum over categories and sides of (O - E)^2 / E, E = side total * category total / N."""
    r, c = _double(column("r", "cells")), _double(column("c", "cells"))
    r_total, c_total = _double(column("r_total", "t")), _double(column("c_total", "t"))
    n = exp.paren(exp.Add(this=r_total.copy(), expression=c_total.copy()))
    both = exp.paren(exp.Add(this=r.copy(), expression=c.copy()))

    def term(observed: exp.Expr, side_total: exp.Expr) -> exp.Expr:
        expected = exp.paren(exp.Div(this=exp.Mul(this=side_total, expression=both.copy()), expression=n.copy()))
        difference = exp.paren(exp.Sub(this=observed, expression=expected.copy()))
        return exp.Div(this=exp.Mul(this=difference, expression=difference.copy()), expression=expected)

    return _sum(exp.Add(this=term(r, r_total), expression=term(c, c_total)))


def _ks(names: _Names) -> exp.Select:
    """max |F_ref(x) - F_cur(x)| over the values, each CDF a running sum of counts over its total."""
    order = exp.Order(expressions=[_ascending("x")])
    spec = exp.WindowSpec(kind="ROWS", start="UNBOUNDED", start_side="PRECEDING", end="CURRENT ROW")

    def cdf(side: str, total: str) -> exp.Expr:
        running = exp.Window(this=_sum(column(side)), order=order.copy(), spec=spec.copy())
        whole = exp.Nullif(this=column(total, "t"), expression=_num(0))
        return exp.Div(this=_double(running), expression=_double(whole))

    per_value = (
        exp.select(column("x"), exp.alias_(_by_side(0, column("n")), "r", quoted=True),
                   exp.alias_(_by_side(1, column("n")), "c", quoted=True))
        .from_(_table(names.values))
        .group_by(column("x"))
    )  # fmt: skip
    gap = exp.Abs(this=exp.Sub(this=cdf("r", "r_total"), expression=cdf("c", "c_total")))
    gaps = (
        exp.select(exp.alias_(gap, "gap", quoted=True))
        .from_(per_value.subquery(ident("per_value")))
        .join(_table(names.totals, "t"), join_type="CROSS")
    )
    return exp.select(exp.alias_(exp.Max(this=column("gap")), "ks", quoted=True)).from_(gaps.subquery(ident("gaps")))


def _row(feature: Compared, names: _Names) -> exp.Select:
    stats = exp.select(
        exp.alias_(_psi(), "psi", quoted=True),
        exp.alias_(_chi2() if feature.kind == CATEGORICAL else exp.Null(), "chi2", quoted=True),
        exp.alias_(exp.Count(this=exp.Star()), "bins", quoted=True),
    ).from_(_table(names.cells, "cells")).join(_table(names.totals, "t"), join_type="CROSS")  # fmt: skip
    ks: exp.Expr = exp.Subquery(this=_ks(names)) if feature.kind == NUMERIC else exp.Null()

    def count(relation: str) -> exp.Expr:
        return exp.Subquery(this=exp.select(exp.Count(this=exp.Star())).from_(_table(relation)))

    return (
        exp.select(
            exp.alias_(exp.cast(exp.Literal.string(feature.name), "TEXT"), "feature", quoted=True),
            exp.alias_(exp.cast(exp.Literal.string(feature.kind), "TEXT"), "kind", quoted=True),
            exp.alias_(exp.cast(count(REFERENCE), "BIGINT"), "reference_rows", quoted=True),
            exp.alias_(exp.cast(count(CURRENT), "BIGINT"), "current_rows", quoted=True),
            exp.alias_(exp.cast(column("r_total", "t"), "BIGINT"), "reference_values", quoted=True),
            exp.alias_(exp.cast(column("c_total", "t"), "BIGINT"), "current_values", quoted=True),
            exp.alias_(_double(column("psi", "s")), "psi", quoted=True),
            exp.alias_(_double(ks), "ks", quoted=True),
            exp.alias_(_double(column("chi2", "s")), "chi2", quoted=True),
            exp.alias_(exp.cast(column("bins", "s"), "BIGINT"), "bins", quoted=True),
        )
        .from_(_table(names.totals, "t"))
        .join(stats.subquery(ident("s")), join_type="CROSS")
    )

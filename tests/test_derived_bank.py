"""The expression bank of derived features: each expression, checked and rewritten once, gives the
same values on DuckDB, on Postgres (request fields bound as a typed array parameter, as the online
lookup binds them), in the BigQuery SQL (transpiled to DuckDB and executed: no BigQuery runs here)
and on Spark (marked `spark`), and those values are the ones written below: x / 0 is NULL,
integer division is floating point, LN/SQRT/POWER outside their domain give NULL, GREATEST and
LEAST skip NULLs, seconds_between keeps microseconds."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pyarrow as pa
import pytest
import sqlglot
from sqlglot import exp

from fsql.compile import render
from fsql.compile.derived import derived_value
from fsql.derived import DerivedView, read_derived_view
from fsql.yamlfile import Mapping, load_plain_yaml

T0 = datetime(2024, 1, 1, tzinfo=UTC)
INPUTS = pa.table(
    {
        "id": pa.array([1, 2, 3, 4], pa.int64()),
        "a": pa.array([6.0, 1.0, None, -8.0], pa.float64()),
        "b": pa.array([3, 0, None, 2], pa.int64()),
        "c": pa.array([2.0, 0.0, -1.0, 0.5], pa.float64()),
        "t0": pa.array([T0, T0, None, T0], pa.timestamp("us", tz="UTC")),
        "t1": pa.array(
            [T0 + timedelta(seconds=90, microseconds=500001), T0 - timedelta(seconds=2), T0, T0 + timedelta(days=1)],
            pa.timestamp("us", tz="UTC"),
        ),
    }
)
REQUEST = [4.0, 0.0, -2.0, None]  # the request field r, one per row

# name: (expression, its values on rows 1..4)
BANK: dict[str, tuple[str, list[Any]]] = {
    "div": ("a / b", [2.0, None, None, -4.0]),
    "int_div": ("b / 2", [1.5, 0.0, None, 1.0]),
    "div_zero": ("a / 0", [None, None, None, None]),
    "nested_div": ("1 / (c / r)", [2.0, None, 2.0, None]),
    "ln": ("ln(r)", [math.log(4.0), None, None, None]),
    "sqrt": ("sqrt(c)", [math.sqrt(2.0), 0.0, None, math.sqrt(0.5)]),
    "power": ("power(a, c)", [36.0, 1.0, None, None]),
    "power_zero": ("power(c, -1)", [0.5, None, -1.0, 2.0]),
    "exp": ("exp(c)", [math.exp(2.0), 1.0, math.exp(-1.0), math.exp(0.5)]),
    "exp_range": ("exp(a * 1000)", [None, None, None, 0.0]),
    "abs": ("abs(a)", [6.0, 1.0, None, 8.0]),
    "greatest": ("greatest(a, c, r)", [6.0, 1.0, -1.0, 0.5]),
    "least": ("least(a, r)", [4.0, 0.0, -2.0, -8.0]),
    "greatest_null": ("greatest(a, b)", [6.0, 1.0, None, 2.0]),
    "case": (
        "CASE WHEN b > 2 THEN 'many' WHEN b IS NULL THEN 'unknown' ELSE 'few' END",
        ["many", "few", "unknown", "few"],
    ),
    "coalesce": ("coalesce(a, r, 0)", [6.0, 1.0, -2.0, -8.0]),
    "nullif": ("nullif(b, 0)", [3, None, None, 2]),
    "compare": ("a > c AND r IS NOT NULL", [True, True, None, False]),
    "not_or": ("NOT (b = 0 OR c < 0)", [True, False, False, True]),
    "seconds": ("seconds_between(t0, t1)", [90.500001, -2.0, None, 86400.0]),
    "integer_math": ("b * 2 + 1 - b", [4, 1, None, 3]),
    "negate": ("-a + r", [-2.0, -1.0, None, None]),
}


def bank_view() -> DerivedView:
    items = "".join(f"  - {{name: {name}, expr: {expr!r}}}\n" for name, (expr, _) in BANK.items())
    text = f"name: bank\ninputs: [v]\nrequest: {{r: double}}\nfeatures:\n{items}"
    shown = Path("bank.yml")
    m = Mapping(
        load_plain_yaml(text, shown=shown), path=shown, what="derived view 'bank'", lines=tuple(text.splitlines())
    )
    types = {"a": exp.DType.DOUBLE, "b": exp.DType.BIGINT, "c": exp.DType.DOUBLE}
    types |= {"t0": exp.DType.TIMESTAMPTZ, "t1": exp.DType.TIMESTAMPTZ}
    return read_derived_view(m, name="bank", features_of=lambda ref, where: [("v", n, t) for n, t in types.items()])


def bank_sql(dialect: str, request: exp.Expr, join: exp.Expr | None = None, on: exp.Expr | None = None) -> str:
    """SELECT id, <every bank expression> FROM inputs, the request field r read as `request`."""
    view = bank_view()
    fields = {f.name: f for f in view.request}
    values = [
        exp.alias_(
            derived_value(
                feature,
                read_input=lambda ref: exp.column(ref.split(":")[1], "inputs", quoted=True),
                read_request=lambda f: request.copy(),
                request_fields=fields,
                dialect=dialect,
            ),
            feature.name,
            quoted=True,
        )
        for feature in view.features
    ]
    query = exp.select(exp.column("id", "inputs", quoted=True), *values).from_(exp.to_table("inputs").as_("inputs"))
    if join is not None:
        query = query.join(join, on=on)
    return render(query.order_by(exp.column("id", "inputs", quoted=True)), dialect, [])


def expected_rows() -> list[dict[str, Any]]:
    return [{"id": i + 1, **{name: values[i] for name, (_, values) in BANK.items()}} for i in range(4)]


def assert_bank(rows: list[dict[str, Any]]) -> None:
    for got, want in zip(rows, expected_rows(), strict=True):
        for name, value in want.items():
            actual = got[name]
            if isinstance(value, float) and actual is not None:
                assert isinstance(actual, float) and math.isclose(actual, value, rel_tol=1e-12), (got["id"], name)
            else:
                assert actual == value and type(actual) is type(value), (got["id"], name, actual, value)


def _on_duckdb(sql: str) -> list[dict[str, Any]]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("inputs_arrow", INPUTS.append_column("r", pa.array(REQUEST, pa.float64())))
    con.execute("CREATE TABLE inputs AS SELECT * FROM inputs_arrow")
    return con.sql(sql).to_arrow_table().to_pylist()


def test_bank_on_duckdb() -> None:
    assert_bank(_on_duckdb(bank_sql("duckdb", exp.column("r", "inputs", quoted=True))))


def test_bank_in_bigquery_sql_transpiled_to_duckdb() -> None:
    sql = bank_sql("bigquery", exp.column("r", "inputs", quoted=True))
    assert "UNIX_MICROS(CAST(" in sql and "FLOAT64" in sql
    assert_bank(_on_duckdb(sqlglot.transpile(sql, read="bigquery", write="duckdb")[0]))


def _on_postgres(dsn: str, sql: str, params: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`sql` run once per parameter set on a table of the bank's inputs; all the rows, in order."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("SET TimeZone = 'UTC'")
        connection.execute(
            "CREATE TEMP TABLE inputs (id bigint, a double precision, b bigint, c double precision, "
            "t0 timestamptz, t1 timestamptz)"
        )
        rows = []
        with connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO inputs VALUES (%s, %s, %s, %s, %s, %s)",
                [tuple(row.values()) for row in INPUTS.to_pylist()],
            )
            for bound in params:
                cursor.execute(sql, bound, prepare=True, binary=True)
                names = [d.name for d in cursor.description or ()]
                rows += [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    return rows


@pytest.mark.postgres
def test_bank_on_postgres_with_the_request_field_bound_as_the_lookup_binds_it(postgres_dsn: str) -> None:
    # The online lookup's shape: request fields unnested WITH ORDINALITY from a typed array parameter.
    array = exp.DataType(this=exp.DType.ARRAY, expressions=[exp.DataType(this=exp.DType.DOUBLE)], nested=True)
    unnest = exp.Unnest(
        expressions=[exp.cast(exp.Placeholder(this="r"), array)],
        offset=exp.to_identifier("n", quoted=True),
        alias=exp.TableAlias(
            this=exp.to_identifier("request", quoted=True), columns=[exp.to_identifier("r", quoted=True)]
        ),
    )
    on = exp.EQ(this=exp.column("n", "request", quoted=True), expression=exp.column("id", "inputs", quoted=True))
    sql = bank_sql("postgres", exp.column("r", "request", quoted=True), unnest, on)
    assert_bank(_on_postgres(postgres_dsn, sql.replace("%(r)s", "%(r)b"), [{"r": REQUEST}]))


@pytest.mark.postgres
def test_bank_on_postgres_with_the_request_field_bound_as_one_scalar(postgres_dsn: str) -> None:
    # The lookup's shape when every entity row sends one value: a typed scalar parameter, NULL included.
    scalar = exp.cast(exp.Placeholder(this="r"), exp.DataType(this=exp.DType.DOUBLE))
    one_row = exp.select(exp.Literal.number(1)).subquery("one_row", copy=False)
    on = exp.column("id", "inputs", quoted=True).eq(exp.Placeholder(this="id"))
    sql = bank_sql("postgres", scalar, one_row, on)  # one statement per row, each with its own r
    params = [{"r": r, "id": index + 1} for index, r in enumerate(REQUEST)]
    assert_bank(_on_postgres(postgres_dsn, sql.replace("%(r)s", "%(r)b"), params))


@pytest.mark.spark
def test_bank_on_spark() -> None:
    from pit_window import spark_session, spark_view

    spark_view("inputs", INPUTS.append_column("r", pa.array(REQUEST, pa.float64())))
    rows = [
        row.asDict() for row in spark_session().sql(bank_sql("spark", exp.column("r", "inputs", quoted=True))).collect()
    ]
    assert_bank(rows)

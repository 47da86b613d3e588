"""The expression language of derived features: what an expression may say, its type, and the
rewrites that make it mean one thing on every dialect (see fsql.derived for the contract).

Reads are normalized to columns of two internal tables, INPUT_TABLE (named `view:feature`) and
REQUEST_TABLE (named after the field). Knows no dialect and no connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlglot import exp

from fsql.datatypes import type_label
from fsql.errors import did_you_mean
from fsql.yamlfile import Where

if TYPE_CHECKING:
    from fsql.derived import DerivedInput, RequestField

INPUT_TABLE = "_fsql_input"
REQUEST_TABLE = "_fsql_request"
SECONDS_BETWEEN = "seconds_between"
NUMERIC = frozenset({exp.DType.BIGINT, exp.DType.INT, exp.DType.DOUBLE, exp.DType.FLOAT})
_INTEGER = frozenset({exp.DType.BIGINT, exp.DType.INT})
_TIMES = frozenset({exp.DType.TIMESTAMP, exp.DType.TIMESTAMPTZ, exp.DType.DATE})
_DOUBLE = exp.DType.DOUBLE
# ln(DBL_MAX): EXP of more overflows (an error on Postgres, infinity elsewhere).
_EXP_LIMIT = "709.782712893384"
_NON_DETERMINISTIC: dict[type[exp.Expr], str] = {
    exp.Rand: "random",
    exp.CurrentTimestamp: "current_timestamp",
    exp.CurrentDate: "current_date",
    exp.CurrentTime: "current_time",
}
_NON_DETERMINISTIC_NAMES = frozenset(
    {"now", "random", "rand", "uuid", "gen_random_uuid", "clock_timestamp", "statement_timestamp", "localtimestamp"}
)
# The functions an expression may call, by the name users write.
FUNCTIONS = (
    "abs",
    "coalesce",
    "exp",
    "greatest",
    "least",
    "ln",
    "nullif",
    "power",
    "sqrt",
    SECONDS_BETWEEN,
)
_FUNCTION_NODES: tuple[type[exp.Expr], ...] = (
    exp.Abs,
    exp.Coalesce,
    exp.Exp,
    exp.Greatest,
    exp.Least,
    exp.Ln,
    exp.Nullif,
    exp.Pow,
    exp.Sqrt,
)
_OPERATOR_NODES: tuple[type[exp.Expr], ...] = (
    exp.Column,
    exp.Identifier,
    exp.Literal,
    exp.Null,
    exp.Boolean,
    exp.Paren,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.Neg,
    exp.Case,
    exp.If,
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.And,
    exp.Or,
    exp.Not,
    exp.Is,
)


@dataclass(frozen=True)
class Scope:
    inputs: tuple[DerivedInput, ...]
    request: tuple[RequestField, ...]
    what: str

    def names(self) -> list[str]:
        return [*(i.feature for i in self.inputs), *(r.name for r in self.request)]


class Checker:
    """Resolves the names an expression reads, refuses what is outside the subset, and types it."""

    def __init__(self, scope: Scope, where: Where, what: str, text: str) -> None:
        self.text = text
        self.scope = scope
        self.where = where
        self.what = what
        self.types: dict[tuple[str, str], exp.DType] = {}

    def _at(self, node: exp.Expr) -> Where:
        """Where a column is written: sqlglot keeps its start offset in the expression's text."""
        meta = node.this.meta if isinstance(node.this, exp.Identifier) else node.meta
        start = meta.get("start")
        if start is None:
            return self.where
        line_start = self.text.rfind("\n", 0, start) + 1
        return self.where.at(self.text.count("\n", 0, start) + 1, start - line_start + 1)

    def resolve(self, tree: exp.Expr) -> exp.Expr:
        for node in list(tree.walk()):
            self._check_node(node)
        return tree.transform(self._resolve_column)

    def _check_node(self, node: exp.Expr) -> None:
        if isinstance(node, exp.Anonymous) and node.name.lower() == SECONDS_BETWEEN:
            if len(node.expressions) != 2:
                raise self.where.error(f"{self.what}: {SECONDS_BETWEEN}(start, end) takes exactly two arguments")
            return
        if isinstance(node, exp.Cast):
            raise self.where.error(
                f"{self.what}: CAST is outside the expression language of derived features (casts round and "
                f"parse differently per dialect): declare the feature's 'type' instead; its result is cast to it"
            )
        name = _function_name(node)
        if name is not None and (type(node) in _NON_DETERMINISTIC or name in _NON_DETERMINISTIC_NAMES):
            name = _NON_DETERMINISTIC.get(type(node), name)
            raise self.where.error(
                f"{self.what}: {name}() is not deterministic, so training and serving would see different values: "
                f"send the value as a request field instead (e.g. 'request: {{requested_at: timestamptz}}')"
            )
        if isinstance(node, _FUNCTION_NODES + _OPERATOR_NODES):
            return
        if name is not None:
            raise self.where.error(
                f"{self.what}: unknown function '{name}'.{did_you_mean(name, list(FUNCTIONS))} "
                f"Derived features may call {', '.join(FUNCTIONS)}."
            )
        raise self.where.error(
            f"{self.what}: '{node.sql()}' ({node.key}) is outside the expression language of derived features: "
            f"use arithmetic, comparisons, AND/OR/NOT, IS NULL, CASE and the functions {', '.join(FUNCTIONS)}"
        )

    def _resolve_column(self, node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.Column):
            return node
        if isinstance(node.this, exp.Star) or node.args.get("db"):
            raise self._at(node).error(f"{self.what}: '{node.sql()}' is not a feature or request field")
        name, table = node.name, node.table
        inputs = [i for i in self.scope.inputs if i.feature == name and (not table or i.view == table)]
        fields = [r for r in self.scope.request if r.name == name and not table]
        if len(inputs) + len(fields) > 1:
            owners = [f"view '{i.view}'" for i in inputs] + ["the request" for _ in fields]
            raise self._at(node).error(
                f"{self.what}: '{name}' is in {' and '.join(owners)}: write it as view.{name} to say which"
            )
        if inputs:
            self.types[(INPUT_TABLE, inputs[0].ref)] = inputs[0].type
            return _reference(INPUT_TABLE, inputs[0].ref)
        if fields:
            self.types[(REQUEST_TABLE, name)] = fields[0].type
            return _reference(REQUEST_TABLE, name)
        shown = f"{table}.{name}" if table else name
        raise self._at(node).error(
            f"{self.what}: unknown input '{shown}'.{did_you_mean(name, self.scope.names()) or ''} "
            f"It reads its view's inputs ({', '.join(i.ref for i in self.scope.inputs) or 'none'}) and request "
            f"fields ({', '.join(r.name for r in self.scope.request) or 'none'}): add it to 'inputs' or 'request'"
        )

    def type_of(self, node: exp.Expr) -> exp.DType | None:
        if isinstance(node, exp.Column):
            return self.types[(node.table, node.name)]
        if isinstance(node, exp.Paren):
            return self.type_of(node.this)
        if isinstance(node, exp.Null):
            return None
        if isinstance(node, exp.Boolean):
            return exp.DType.BOOLEAN
        if isinstance(node, exp.Literal):
            if node.is_string:
                return exp.DType.TEXT
            return exp.DType.BIGINT if node.this.lstrip("-").isdigit() else _DOUBLE
        if isinstance(node, exp.Anonymous):  # seconds_between, checked in _check_node
            for argument in node.expressions:
                self._expect(argument, _TIMES, f"{SECONDS_BETWEEN}()")
            return _DOUBLE
        if isinstance(node, exp.Div):
            self._expect(node.this, NUMERIC, "'/'")
            self._expect(node.expression, NUMERIC, "'/'")
            return _DOUBLE
        if isinstance(node, exp.Add | exp.Sub | exp.Mul):
            return self._numeric(node, [node.this, node.expression], f"'{_SYMBOLS[type(node)]}'")
        if isinstance(node, exp.Neg | exp.Abs):
            return self._numeric(node, [node.this], "'-'" if isinstance(node, exp.Neg) else "abs()")
        if isinstance(node, exp.Ln | exp.Exp | exp.Sqrt):
            self._expect(node.this, NUMERIC, f"{node.key}()")
            return _DOUBLE
        if isinstance(node, exp.Pow):
            self._expect(node.this, NUMERIC, "power()")
            self._expect(node.expression, NUMERIC, "power()")
            return _DOUBLE
        if isinstance(node, exp.And | exp.Or):
            self._expect(node.this, {exp.DType.BOOLEAN}, node.key.upper())
            self._expect(node.expression, {exp.DType.BOOLEAN}, node.key.upper())
            return exp.DType.BOOLEAN
        if isinstance(node, exp.Not):
            self._expect(node.this, {exp.DType.BOOLEAN}, "NOT")
            return exp.DType.BOOLEAN
        if isinstance(node, exp.Is):
            self.type_of(node.this)
            return exp.DType.BOOLEAN
        if isinstance(node, exp.EQ | exp.NEQ | exp.GT | exp.GTE | exp.LT | exp.LTE):
            self._unify([node.this, node.expression], "a comparison")
            return exp.DType.BOOLEAN
        if isinstance(node, exp.Case):
            if node.this is not None:
                raise self.where.error(f"{self.what}: write CASE WHEN <condition> THEN ..., not CASE <value> WHEN ...")
            for branch in node.args.get("ifs") or []:
                self._expect(branch.this, {exp.DType.BOOLEAN}, "a WHEN condition")
            results = [b.args["true"] for b in node.args.get("ifs") or []]
            return self._unify([*results, *([node.args["default"]] if node.args.get("default") else [])], "CASE")
        if isinstance(node, exp.If):
            self._expect(node.this, {exp.DType.BOOLEAN}, "IF's condition")
            branches = [node.args["true"], *([node.args["false"]] if node.args.get("false") else [])]
            return self._unify(branches, "IF")
        if isinstance(node, exp.Coalesce | exp.Greatest | exp.Least):
            return self._unify([node.this, *node.expressions], f"{node.key}()")
        if isinstance(node, exp.Nullif):
            return self._unify([node.this, node.expression], "nullif()")
        raise self.where.error(f"{self.what}: cannot type '{shown_sql(node)}'")

    def _expect(self, node: exp.Expr, allowed: frozenset[exp.DType] | set[exp.DType], context: str) -> None:
        type_ = self.type_of(node)
        if type_ is not None and type_ not in allowed:
            wanted = "numbers" if allowed == NUMERIC else " or ".join(sorted(type_label(t) for t in allowed))
            raise self.where.error(
                f"{self.what}: {context} takes {wanted}, but '{shown_sql(node)}' is {type_label(type_)}"
            )

    def _numeric(self, node: exp.Expr, operands: list[exp.Expr], context: str) -> exp.DType:
        types = []
        for operand in operands:
            self._expect(operand, NUMERIC, context)
            types.append(self.type_of(operand))
        return exp.DType.BIGINT if all(t is None or t in _INTEGER for t in types) else _DOUBLE

    def _unify(self, nodes: list[exp.Expr], context: str) -> exp.DType | None:
        types = {t for t in map(self.type_of, nodes) if t is not None}
        if len(types) <= 1:
            return next(iter(types), None)
        if types <= NUMERIC:
            return exp.DType.BIGINT if types <= _INTEGER else _DOUBLE
        if types <= {exp.DType.TIMESTAMP, exp.DType.TIMESTAMPTZ}:
            return exp.DType.TIMESTAMPTZ
        shown = ", ".join(sorted(type_label(t) for t in types))
        raise self.where.error(f"{self.what}: {context} mixes types that do not compare or combine: {shown}")


_SYMBOLS: dict[type[exp.Expr], str] = {exp.Add: "+", exp.Sub: "-", exp.Mul: "*"}


def shown_sql(node: exp.Expr) -> str:
    """The expression as users know it: inputs and request fields by their plain names."""

    def plain(n: exp.Expr) -> exp.Expr:
        if isinstance(n, exp.Column) and n.table in (INPUT_TABLE, REQUEST_TABLE):
            return exp.column(n.name.partition(":")[2] or n.name)
        return n

    return node.transform(plain).sql()


def _function_name(node: exp.Expr) -> str | None:
    if isinstance(node, exp.Anonymous):
        return node.name.lower()
    if isinstance(node, exp.Func):
        return node.sql_name().lower()
    return None


def _reference(table: str, name: str) -> exp.Column:
    return exp.Column(this=exp.to_identifier(name, quoted=True), table=exp.to_identifier(table, quoted=True))


def rewrite(tree: exp.Expr) -> exp.Expr:
    """Rewrite where the dialects disagree, so the AST means one thing everywhere (see the module doc).

    Example:
        >>> import sqlglot
        >>> rewrite(sqlglot.parse_one("a / b")).sql()
        'CAST(a AS DOUBLE) / NULLIF(CAST(b AS DOUBLE), 0)'
    """
    root = tree.copy()
    # Children before parents (reversed pre-order), so a rewritten parent copies rewritten children.
    for node in reversed(list(root.walk(bfs=False))):
        new = _rewrite_node(node)
        if new is not node:
            if node is root:
                root = new
            else:
                node.replace(new)
    return root


def _double(node: exp.Expr) -> exp.Expr:
    return exp.cast(node.copy(), exp.DataType(this=_DOUBLE))


def _rewrite_node(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.Div):
        guarded = exp.Nullif(this=_double(node.expression), expression=exp.Literal.number(0))
        return exp.Div(this=_double(node.this), expression=guarded)
    if isinstance(node, exp.Ln):
        return _when(exp.GT(this=node.this.copy(), expression=exp.Literal.number(0)), exp.Ln(this=_double(node.this)))
    if isinstance(node, exp.Sqrt):
        positive = exp.GTE(this=node.this.copy(), expression=exp.Literal.number(0))
        return _when(positive, exp.Sqrt(this=_double(node.this)))
    if isinstance(node, exp.Exp):
        # Postgres raises on underflow too: below -745 the double is 0 (DuckDB's and Spark's answer).
        tiny = exp.If(this=exp.LT(this=node.this.copy(), expression=exp.Literal.number(-745)), true=_double_zero())
        below = exp.LT(this=node.this.copy(), expression=exp.Literal.number(_EXP_LIMIT))
        return exp.Case(ifs=[tiny, exp.If(this=below, true=exp.Exp(this=_double(node.this)))])
    if isinstance(node, exp.Pow):
        base, power = node.this, node.expression
        fractional = exp.NEQ(this=power.copy(), expression=exp.Floor(this=power.copy()))
        complex_ = exp.and_(exp.LT(this=base.copy(), expression=exp.Literal.number(0)), fractional)
        undefined = exp.and_(
            exp.EQ(this=base.copy(), expression=exp.Literal.number(0)),
            exp.LT(this=power.copy(), expression=exp.Literal.number(0)),
        )
        value = exp.Pow(this=_double(base), expression=_double(power))
        return _when(exp.Not(this=exp.paren(exp.or_(complex_, undefined))), value)
    if isinstance(node, exp.Greatest | exp.Least):
        arguments = [node.this, *node.expressions]
        # Each argument falls back to the others: NULLs are skipped, all NULL gives NULL.
        filled = [
            exp.Coalesce(this=a.copy(), expressions=[b.copy() for b in arguments if b is not a]) for a in arguments
        ]
        return type(node)(this=filled[0], expressions=filled[1:], ignore_nulls=True)
    return node


def _double_zero() -> exp.Expr:
    return exp.cast(exp.Literal.number(0), exp.DataType(this=_DOUBLE))


def _when(condition: exp.Expr, value: exp.Expr) -> exp.Case:
    return exp.Case(ifs=[exp.If(this=condition, true=value)])

"""Evaluating a parsed ``where`` condition over the whole customer table at once (pandas).

Kept apart from :mod:`campaigns.conditions` (the grammar and the parser) so that loading a config,
which parses every condition, does not import pandas.

A value the condition cannot use for one customer (``lower()`` of a number, a number compared
with text, ``abs()`` of an email address) is an error *for that customer*: the condition does not
hold for them, and :class:`Evaluation` says who they are and why, so that the planner leaves them
out with the reason ``condition error`` instead of stopping the run. Operations run vectorised;
only when pandas refuses a whole column does the evaluator go through it value by value.
"""

from __future__ import annotations

import numbers
import operator
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from campaigns.conditions import (
    Binary,
    Call,
    InList,
    IsNull,
    Literal,
    Name,
    Node,
    Unary,
)


@dataclass(frozen=True)
class Evaluation:
    """Which rows satisfy a condition, and which could not be evaluated.

    ``matches`` is false wherever ``errors`` is true; ``problems`` says, per failing part of the
    condition, what went wrong and for how many rows (``"column 1: lower() needs text, got a
    number (300 customers)"``).
    """

    matches: pd.Series
    errors: npt.NDArray[np.bool_]
    problems: tuple[str, ...]


def evaluate(tree: Node, table: pd.DataFrame, now: datetime) -> pd.Series:
    """A boolean Series aligned with ``table``: which rows satisfy the condition ``tree``."""
    return evaluate_rows(tree, table, now).matches


def evaluate_rows(tree: Node, table: pd.DataFrame, now: datetime) -> Evaluation:
    """The condition ``tree`` over ``table``, with the rows it could not be evaluated for."""
    evaluator = _Evaluator(table, now)
    matches = _as_mask(evaluator.eval(tree), table.index) & ~evaluator.errors
    problems = tuple(
        f"column {position}: {what} ({count:,} customer{'s' if count != 1 else ''})"
        for (position, what), count in evaluator.problems.items()
    )
    return Evaluation(matches, evaluator.errors, problems)


def _as_mask(value: Any, index: pd.Index) -> pd.Series:
    if isinstance(value, pd.Series):
        if value.dtype == bool:
            return value
        return value.fillna(False).astype(bool)
    return pd.Series(bool(value), index=index)


_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "%": operator.mod,
}


def _missing(value: Any) -> bool:
    return value is None or value is pd.NaT or (isinstance(value, float) and value != value)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    if isinstance(value, str):
        return "text"
    if isinstance(value, bool):
        return "true/false"
    if _is_number(value):
        return "a number"
    if isinstance(value, datetime):
        return "a date"
    return type(value).__name__


def _numeric(value: Any) -> bool:
    """A column or value pandas can do arithmetic on without surprises (no text)."""
    if isinstance(value, pd.Series):
        return pd.api.types.is_numeric_dtype(value.dtype) and not pd.api.types.is_bool_dtype(
            value.dtype
        )
    return _is_number(value)


class _Evaluator:
    def __init__(self, table: pd.DataFrame, now: datetime) -> None:
        self.table = table
        self.now = pd.Timestamp(now)
        self.errors = np.zeros(len(table), dtype=bool)
        #: (position, what went wrong) -> how many rows
        self.problems: dict[tuple[int, str], int] = {}

    # --------------------------------------------------------------------------- per-row errors

    def fail(self, node: Node, rows: npt.NDArray[np.bool_], what: str) -> None:
        """Mark ``rows`` as not evaluable because of ``node``."""
        new = rows & ~self.errors
        if new.any():
            key = (node.position, what)
            self.problems[key] = self.problems.get(key, 0) + int(new.sum())
            self.errors |= rows

    def values(self, value: Any) -> npt.NDArray[np.object_]:
        """``value`` as one Python object per row (a scalar repeated)."""
        if isinstance(value, pd.Series):
            return value.astype(object).to_numpy()
        out = np.empty(len(self.table), dtype=object)
        out[:] = [value] * len(self.table)
        return out

    def per_row(
        self,
        node: Node,
        function: Callable[..., Any],
        args: list[Any],
        allowed: Callable[..., bool],
        what: Callable[..., str],
        result: str = "number",
    ) -> pd.Series:
        """``function`` applied row by row; rows whose values ``allowed`` refuses (or that
        raise) are errors, described by ``what``; a missing value gives a missing result."""
        columns = [self.values(a) for a in args]
        results = np.empty(len(self.table), dtype=object)
        bad = np.zeros(len(self.table), dtype=bool)
        reasons: dict[str, npt.NDArray[np.bool_]] = {}
        for i, row in enumerate(zip(*columns, strict=True)):
            if any(_missing(v) for v in row):
                results[i] = None
                continue
            if not allowed(*row):
                bad[i] = True
                reason = what(*row)
                reasons.setdefault(reason, np.zeros(len(self.table), dtype=bool))[i] = True
                results[i] = None
                continue
            try:
                results[i] = function(*row)
            except (TypeError, ValueError, ArithmeticError) as exc:
                bad[i] = True
                reasons.setdefault(str(exc), np.zeros(len(self.table), dtype=bool))[i] = True
                results[i] = None
        for reason, rows in reasons.items():
            self.fail(node, rows, reason)
        series = pd.Series(results, index=self.table.index)
        if result == "bool":
            return series.fillna(False).astype(bool)
        if result == "number":
            return pd.to_numeric(series).astype(float)
        return series

    # -------------------------------------------------------------------------------- the tree

    def eval(self, node: Node) -> Any:
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, Name):
            return self.table[node.name]
        if isinstance(node, Unary):
            operand = self.eval(node.operand)
            if node.op == "not":
                return ~_as_mask(operand, self.table.index)
            if _numeric(operand):
                return -operand
            return self.per_row(
                node,
                operator.neg,
                [operand],
                _is_number,
                lambda v: f"'-' needs a number, got {_kind(v)}",
            )
        if isinstance(node, Binary):
            return self.binary(node)
        if isinstance(node, InList):
            operand = self.eval(node.operand)
            series = (
                operand
                if isinstance(operand, pd.Series)
                else pd.Series(operand, index=self.table.index)
            )
            found = series.isin(list(node.values))
            return ~found & series.notna() if node.negated else found
        if isinstance(node, IsNull):
            operand = self.eval(node.operand)
            series = (
                operand
                if isinstance(operand, pd.Series)
                else pd.Series(operand, index=self.table.index)
            )
            return series.notna() if node.negated else series.isna()
        if isinstance(node, Call):
            return self.call(node)
        raise AssertionError(node)  # pragma: no cover

    def binary(self, node: Binary) -> Any:
        if node.op in {"and", "or"}:
            left = _as_mask(self.eval(node.left), self.table.index)
            right = _as_mask(self.eval(node.right), self.table.index)
            return left & right if node.op == "and" else left | right
        left, right = self.eval(node.left), self.eval(node.right)
        if node.op in _COMPARE:
            return self.compare(node, left, right)
        return self.arithmetic(node, left, right)

    def compare(self, node: Binary, left: Any, right: Any) -> Any:
        compare = _COMPARE[node.op]
        try:
            result = compare(left, right)
        except TypeError:
            # Mixed values (a number against text): compare row by row, the others are errors.
            result = self.per_row(
                node,
                compare,
                [left, right],
                _comparable,
                lambda a, b: f"cannot compare {_kind(a)} with {_kind(b)} using '{node.op}'",
                result="bool",
            )
        # NaN compares unequal to everything, so "x != 1" would be true for a missing x:
        # a comparison with a missing value is false, whatever the operator.
        for side in (left, right):
            if isinstance(side, pd.Series):
                result = result & side.notna()
        return result

    def arithmetic(self, node: Binary, left: Any, right: Any) -> Any:
        function = _ARITHMETIC[node.op]
        if _numeric(left) and _numeric(right):
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                result = function(left, right)
            if isinstance(result, pd.Series) and node.op in {"/", "%"}:
                result = result.replace([np.inf, -np.inf], np.nan)
            elif not isinstance(result, pd.Series) and isinstance(result, float):
                result = result if np.isfinite(result) else np.nan
            return result

        # Text is only ever added to text; "*" of text would repeat it (a gigabyte from
        # "'a' * 999999999"), so every other operator needs numbers.
        def allowed(a: Any, b: Any) -> bool:
            if node.op == "+" and isinstance(a, str) and isinstance(b, str):
                return True
            return _is_number(a) and _is_number(b)

        def safe(a: Any, b: Any) -> Any:
            if node.op in {"/", "%"} and b == 0:
                return None
            return function(a, b)

        return self.per_row(
            node,
            safe,
            [left, right],
            allowed,
            lambda a, b: f"'{node.op}' needs numbers, got {_kind(a)} and {_kind(b)}",
            result="number" if node.op != "+" else "any",
        )

    def call(self, node: Call) -> Any:
        args = [self.eval(a) for a in node.args]
        name = node.function
        if name == "days_since":
            value = args[0]
            with warnings.catch_warnings():
                # Text that is no date at all makes pandas warn before giving NaT.
                warnings.simplefilter("ignore", UserWarning)
                values = pd.to_datetime(value, errors="coerce")
            if isinstance(value, pd.Series):
                unusable = (value.notna() & pd.Series(values).isna()).to_numpy()
                self.fail(node, unusable, "days_since() needs a date")
            elif value is not None and values is pd.NaT:
                self.fail(node, np.ones(len(self.table), bool), "days_since() needs a date")
            return (self.now - values) / pd.Timedelta(days=1)
        if name in {"lower", "upper"}:
            value = args[0]
            change = str.lower if name == "lower" else str.upper
            if isinstance(value, pd.Series) and (
                pd.api.types.is_string_dtype(value.dtype) or value.dtype == object
            ):
                texts = value.map(lambda v: isinstance(v, str) or _missing(v))
                if bool(texts.all()):
                    return value.str.lower() if name == "lower" else value.str.upper()
            return self.per_row(
                node,
                change,
                [value],
                lambda v: isinstance(v, str),
                lambda v: f"{name}() needs text, got {_kind(v)}",
                result="text",
            )
        if name == "abs":
            value = args[0]
            if _numeric(value):
                return abs(value)
            return self.per_row(
                node, abs, [value], _is_number, lambda v: f"abs() needs a number, got {_kind(v)}"
            )
        first, second = args
        if isinstance(first, pd.Series):
            return first.where(first.notna(), second)
        return second if first is None else first


def _comparable(a: Any, b: Any) -> bool:
    if isinstance(a, numbers.Real) and isinstance(b, numbers.Real):  # numbers, true/false
        return True
    if isinstance(a, (str, bool)) or isinstance(b, (str, bool)):
        return type(a) is type(b)
    return isinstance(a, datetime) and isinstance(b, datetime)

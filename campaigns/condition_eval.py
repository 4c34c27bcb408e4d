"""Evaluating a parsed ``where`` condition over the whole customer table at once (pandas).

Kept apart from :mod:`campaigns.conditions` (the grammar and the parser) so that loading a config,
which parses every condition, does not import pandas.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from campaigns.conditions import (
    Binary,
    Call,
    ConditionError,
    InList,
    IsNull,
    Literal,
    Name,
    Node,
    Unary,
)


def evaluate(tree: Node, table: pd.DataFrame, now: datetime) -> pd.Series:
    """A boolean Series aligned with ``table``: which rows satisfy the condition ``tree``."""
    return _as_mask(_Evaluator(table, now).eval(tree), table.index)


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


class _Evaluator:
    def __init__(self, table: pd.DataFrame, now: datetime) -> None:
        self.table = table
        self.now = pd.Timestamp(now)

    def eval(self, node: Node) -> Any:
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, Name):
            return self.table[node.name]
        if isinstance(node, Unary):
            operand = self.eval(node.operand)
            if node.op == "not":
                return ~_as_mask(operand, self.table.index)
            return -operand
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
        try:
            if node.op in _COMPARE:
                result = _COMPARE[node.op](left, right)
                # NaN compares unequal to everything, so "x != 1" would be true for a missing x:
                # a comparison with a missing value is false, whatever the operator.
                for side in (left, right):
                    if isinstance(side, pd.Series):
                        result = result & side.notna()
                return result
            with np.errstate(divide="ignore", invalid="ignore"):
                result = _ARITHMETIC[node.op](left, right)
            if isinstance(result, pd.Series) and node.op in {"/", "%"}:
                result = result.replace([np.inf, -np.inf], np.nan)
            return result
        except TypeError as exc:
            raise ConditionError(f"cannot apply '{node.op}' here ({exc})", node.position) from None

    def call(self, node: Call) -> Any:
        args = [self.eval(a) for a in node.args]
        if node.function == "days_since":
            values = pd.to_datetime(args[0], errors="coerce")
            return (self.now - values) / pd.Timedelta(days=1)
        if node.function in {"lower", "upper"}:
            value = args[0]
            if isinstance(value, pd.Series):
                return value.str.lower() if node.function == "lower" else value.str.upper()
            return str(value).lower() if node.function == "lower" else str(value).upper()
        if node.function == "abs":
            return abs(args[0])
        first, second = args
        if isinstance(first, pd.Series):
            return first.where(first.notna(), second)
        return second if first is None else first

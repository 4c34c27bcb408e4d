"""The ``where`` condition language: a small, safe expression language over customer traits.

    income > 40000 and country in ["GB", "DE"]
    days_since(signup_at) < 90 or not (children == 0)
    monetary / frequency >= 25 and email is not null

Grammar (lowest precedence first)::

    expr       := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | comparison
    comparison := sum [ ("=="|"!="|"<"|"<="|">"|">=") sum
                       | ["not"] "in" "[" literal ("," literal)* "]"
                       | "is" ["not"] "null" ]
    sum        := term (("+"|"-") term)*
    term       := unary (("*"|"/"|"%") unary)*
    unary      := "-" unary | primary
    primary    := NUMBER | STRING | "true" | "false" | NAME | NAME "(" [expr ("," expr)*] ")"
                | "(" expr ")"

Names are columns of the customer table (traits, RFM features, ``segment_id``, ``segment``).
Functions: ``days_since(column)``, ``lower(x)``, ``upper(x)``, ``abs(x)``, ``coalesce(x, y)``.
An expression is parsed once into a tree and evaluated over the whole table at once with pandas;
nothing is ever passed to Python's ``eval``. A comparison with a missing value is false.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from campaigns.errors import CampaignError

if TYPE_CHECKING:
    import pandas as pd


class ConditionError(CampaignError):
    """A condition that does not parse, or names a column or function that does not exist.

    ``position`` is the 1-based column in the expression where the problem starts.
    """

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"column {position}: {message}")
        self.position = position


# ------------------------------------------------------------------------------------- tokens

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>\d+(?:\.\d+)?|\.\d+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|<|>|\+|-|\*|/|%|\(|\)|\[|\]|,)
    """,
    re.VERBOSE,
)
_KEYWORDS = frozenset({"and", "or", "not", "in", "is", "null", "true", "false"})


@dataclass(frozen=True)
class _Token:
    kind: str  # number, string, name, keyword, op, end
    text: str
    position: int  # 1-based


def _tokens(text: str) -> list[_Token]:
    tokens = []
    index = 0
    while index < len(text):
        match = _TOKEN.match(text, index)
        if match is None:
            hint = "; use '==' to compare" if text[index] == "=" else ""
            raise ConditionError(f"unexpected character {text[index]!r}{hint}", index + 1)
        kind = match.lastgroup or ""
        if kind != "space":
            value = match.group()
            if kind == "name" and value in _KEYWORDS:
                kind = "keyword"
            tokens.append(_Token(kind, value, index + 1))
        index = match.end()
    tokens.append(_Token("end", "", len(text) + 1))
    return tokens


# --------------------------------------------------------------------------------------- tree


@dataclass(frozen=True)
class Node:
    """A node of a parsed condition."""

    position: int


@dataclass(frozen=True)
class Literal(Node):
    value: Any


@dataclass(frozen=True)
class Name(Node):
    name: str


@dataclass(frozen=True)
class Call(Node):
    function: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Unary(Node):
    op: str  # "-" or "not"
    operand: Node


@dataclass(frozen=True)
class Binary(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class InList(Node):
    operand: Node
    values: tuple[Any, ...]
    negated: bool


@dataclass(frozen=True)
class IsNull(Node):
    operand: Node
    negated: bool


_FUNCTIONS: dict[str, int] = {"days_since": 1, "lower": 1, "upper": 1, "abs": 1, "coalesce": 2}


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.index = 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def accept(self, *texts: str) -> _Token | None:
        if self.token.kind in {"op", "keyword"} and self.token.text in texts:
            return self.take()
        return None

    def expect(self, text: str) -> _Token:
        token = self.accept(text)
        if token is None:
            raise ConditionError(
                f"expected '{text}' but found {_describe(self.token)}", self.token.position
            )
        return token

    def parse(self) -> Node:
        if self.token.kind == "end":
            raise ConditionError("empty condition", 1)
        node = self.expr()
        if self.token.kind != "end":
            raise ConditionError(
                f"unexpected {_describe(self.token)}; join conditions with 'and' or 'or'",
                self.token.position,
            )
        return node

    def expr(self) -> Node:
        node = self.and_expr()
        while token := self.accept("or"):
            node = Binary(token.position, "or", node, self.and_expr())
        return node

    def and_expr(self) -> Node:
        node = self.not_expr()
        while token := self.accept("and"):
            node = Binary(token.position, "and", node, self.not_expr())
        return node

    def not_expr(self) -> Node:
        if token := self.accept("not"):
            return Unary(token.position, "not", self.not_expr())
        return self.comparison()

    def comparison(self) -> Node:
        left = self.sum()
        if token := self.accept("==", "!=", "<", "<=", ">", ">="):
            return Binary(token.position, token.text, left, self.sum())
        start = self.token
        negated = False
        if self.token.kind == "keyword" and self.token.text == "not":
            following = self.tokens[self.index + 1]
            if following.kind == "keyword" and following.text == "in":
                self.take()
                negated = True
        if self.accept("in"):
            return InList(start.position, left, self.literal_list(), negated)
        if self.accept("is"):
            negated = self.accept("not") is not None
            self.expect("null")
            return IsNull(start.position, left, negated)
        return left

    def literal_list(self) -> tuple[Any, ...]:
        self.expect("[")
        values = [self.literal()]
        while self.accept(","):
            values.append(self.literal())
        self.expect("]")
        return tuple(values)

    def literal(self) -> Any:
        token = self.take()
        negative = False
        if token.kind == "op" and token.text == "-":
            negative, token = True, self.take()
        if token.kind == "number":
            value = float(token.text) if "." in token.text else int(token.text)
            return -value if negative else value
        if token.kind == "string" and not negative:
            return _unquote(token.text)
        if token.kind == "keyword" and token.text in {"true", "false"} and not negative:
            return token.text == "true"
        raise ConditionError(
            f"expected a number, string, true or false in the list but found {_describe(token)}",
            token.position,
        )

    def sum(self) -> Node:
        node = self.term()
        while token := self.accept("+", "-"):
            node = Binary(token.position, token.text, node, self.term())
        return node

    def term(self) -> Node:
        node = self.unary()
        while token := self.accept("*", "/", "%"):
            node = Binary(token.position, token.text, node, self.unary())
        return node

    def unary(self) -> Node:
        if token := self.accept("-"):
            return Unary(token.position, "-", self.unary())
        return self.primary()

    def primary(self) -> Node:
        token = self.take()
        if token.kind == "number":
            return Literal(
                token.position, float(token.text) if "." in token.text else int(token.text)
            )
        if token.kind == "string":
            return Literal(token.position, _unquote(token.text))
        if token.kind == "keyword" and token.text in {"true", "false"}:
            return Literal(token.position, token.text == "true")
        if token.kind == "name":
            if self.accept("("):
                return self.call(token)
            return Name(token.position, token.text)
        if token.kind == "op" and token.text == "(":
            node = self.expr()
            self.expect(")")
            return node
        raise ConditionError(f"expected a value but found {_describe(token)}", token.position)

    def call(self, name: _Token) -> Node:
        if name.text not in _FUNCTIONS:
            known = ", ".join(sorted(_FUNCTIONS))
            raise ConditionError(
                f"unknown function {name.text!r}{_did_you_mean(name.text, _FUNCTIONS)}; "
                f"functions: {known}",
                name.position,
            )
        args: list[Node] = []
        if not self.accept(")"):
            args.append(self.expr())
            while self.accept(","):
                args.append(self.expr())
            self.expect(")")
        wanted = _FUNCTIONS[name.text]
        if len(args) != wanted:
            plural = "s" if wanted > 1 else ""
            raise ConditionError(
                f"{name.text}() takes {wanted} argument{plural}, got {len(args)}", name.position
            )
        return Call(name.position, name.text, tuple(args))


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


def _describe(token: _Token) -> str:
    return "the end" if token.kind == "end" else repr(token.text)


def _did_you_mean(name: str, choices: Collection[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


# ------------------------------------------------------------------------------ the condition


def _walk(node: Node) -> Iterator[Node]:
    yield node
    for child in _children(node):
        yield from _walk(child)


def _children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, Binary):
        return (node.left, node.right)
    if isinstance(node, (Unary,)):
        return (node.operand,)
    if isinstance(node, (InList, IsNull)):
        return (node.operand,)
    if isinstance(node, Call):
        return node.args
    return ()


@dataclass(frozen=True)
class Condition:
    """A parsed ``where`` condition; :meth:`evaluate` gives a boolean per customer."""

    text: str
    tree: Node

    @classmethod
    def parse(cls, text: str) -> Condition:
        """Parse ``text``; a syntax error names the column where it is."""
        return cls(text, _Parser(text).parse())

    @property
    def names(self) -> list[tuple[str, int]]:
        """Every column name the condition reads, with its position."""
        return [(n.name, n.position) for n in _walk(self.tree) if isinstance(n, Name)]

    def check_names(self, columns: Collection[str]) -> None:
        """Raise :class:`ConditionError` for the first name that is not a column."""
        for name, position in self.names:
            if name not in columns:
                raise ConditionError(
                    f"unknown name {name!r}{_did_you_mean(name, columns)}", position
                )

    def evaluate(self, table: pd.DataFrame, now: datetime) -> pd.Series:
        """A boolean Series aligned with ``table``: which rows satisfy the condition."""
        # Evaluation needs pandas; parsing (at config load, for every command) does not.
        from campaigns.condition_eval import evaluate

        self.check_names(table.columns)
        return evaluate(self.tree, table, now)

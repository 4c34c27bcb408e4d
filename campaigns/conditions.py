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

Limits: a condition is at most :data:`MAX_CHARS` characters and :data:`MAX_PARTS` parts (names,
values, operators, calls), nested at most :data:`MAX_DEPTH` deep (parentheses, ``not``, ``-``,
calls); arithmetic other than ``+`` needs numbers, so text is never repeated (``'a' * 9999``).
Each limit is a :class:`ConditionError` with a column, never a ``RecursionError``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from campaigns.errors import CampaignError

if TYPE_CHECKING:
    import pandas as pd

    from campaigns.condition_eval import Evaluation


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

#: The longest condition, in characters.
MAX_CHARS = 100_000
#: The most parts (names, values, operators, calls; a list after ``in`` is one) in a condition.
MAX_PARTS = 200
#: The deepest nesting of parentheses, ``not``, ``-`` and function calls.
MAX_DEPTH = 32


class _Parser:
    def __init__(self, text: str) -> None:
        if len(text) > MAX_CHARS:
            raise ConditionError(
                f"condition of {len(text):,} characters is longer than {MAX_CHARS:,}; "
                "use a segment or a trait computed in the data instead",
                MAX_CHARS + 1,
            )
        self.tokens = _tokens(text)
        self.index = 0
        self.parts = 0
        self.depth = 0

    def part(self, position: int) -> None:
        """Count one more part of the tree (at ``position``), within :data:`MAX_PARTS`."""
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise ConditionError(
                f"condition has more than {MAX_PARTS} parts; split it into segments or "
                "use a list ('x in [...]') instead of many 'or' terms",
                position,
            )

    def enter(self, position: int) -> None:
        """One level deeper (parentheses, not, -, a call), within :data:`MAX_DEPTH`."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ConditionError(
                f"condition is nested deeper than {MAX_DEPTH} levels "
                "(parentheses, 'not', '-', function calls)",
                position,
            )

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
            self.part(token.position)
            node = Binary(token.position, "or", node, self.and_expr())
        return node

    def and_expr(self) -> Node:
        node = self.not_expr()
        while token := self.accept("and"):
            self.part(token.position)
            node = Binary(token.position, "and", node, self.not_expr())
        return node

    def not_expr(self) -> Node:
        if token := self.accept("not"):
            self.part(token.position)
            self.enter(token.position)
            operand = self.not_expr()
            self.depth -= 1
            return Unary(token.position, "not", operand)
        return self.comparison()

    def comparison(self) -> Node:
        left = self.sum()
        if token := self.accept("==", "!=", "<", "<=", ">", ">="):
            self.part(token.position)
            return Binary(token.position, token.text, left, self.sum())
        start = self.token
        negated = False
        if self.token.kind == "keyword" and self.token.text == "not":
            following = self.tokens[self.index + 1]
            if following.kind == "keyword" and following.text == "in":
                self.take()
                negated = True
        if self.accept("in"):
            self.part(start.position)
            return InList(start.position, left, self.literal_list(), negated)
        if self.accept("is"):
            self.part(start.position)
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
            self.part(token.position)
            node = _arithmetic(token, node, self.term())
        return node

    def term(self) -> Node:
        node = self.unary()
        while token := self.accept("*", "/", "%"):
            self.part(token.position)
            node = _arithmetic(token, node, self.unary())
        return node

    def unary(self) -> Node:
        if token := self.accept("-"):
            self.part(token.position)
            self.enter(token.position)
            operand = self.unary()
            self.depth -= 1
            return Unary(token.position, "-", operand)
        return self.primary()

    def primary(self) -> Node:
        token = self.take()
        self.part(token.position)
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
            self.enter(token.position)
            node = self.expr()
            self.expect(")")
            self.depth -= 1
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
        self.enter(name.position)
        if not self.accept(")"):
            args.append(self.expr())
            while self.accept(","):
                args.append(self.expr())
            self.expect(")")
        self.depth -= 1
        wanted = _FUNCTIONS[name.text]
        if len(args) != wanted:
            plural = "s" if wanted > 1 else ""
            raise ConditionError(
                f"{name.text}() takes {wanted} argument{plural}, got {len(args)}", name.position
            )
        return Call(name.position, name.text, tuple(args))


def _arithmetic(token: _Token, left: Node, right: Node) -> Binary:
    """``left OP right``; text is refused where it cannot work ("'a' * 999999999" would take a
    gigabyte per customer): only ``+`` takes text, and only with text."""
    if token.text != "+":
        for side in (left, right):
            if isinstance(side, Literal) and isinstance(side.value, str):
                raise ConditionError(
                    f"'{token.text}' needs numbers, but {side.value[:20]!r} is text", side.position
                )
    return Binary(token.position, token.text, left, right)


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
        """A boolean Series aligned with ``table``: which rows satisfy the condition (a row it
        cannot be evaluated for does not; see :meth:`evaluate_rows`)."""
        return self.evaluate_rows(table, now).matches

    def evaluate_rows(self, table: pd.DataFrame, now: datetime) -> Evaluation:
        """Which rows satisfy the condition, and which it could not be evaluated for (a
        number where it needs text...), with what went wrong."""
        # Evaluation needs pandas; parsing (at config load, for every command) does not.
        from campaigns.condition_eval import evaluate_rows

        self.check_names(table.columns)
        return evaluate_rows(self.tree, table, now)

    def check_types(self, columns: Mapping[str, str]) -> None:
        """Raise :class:`ConditionError` where the condition uses a column against its type:
        ``frequency >= 'abc'``, ``lower(frequency)``, ``abs(email)``.

        :param columns: column name to ``"number"``, ``"text"``, ``"date"`` or ``"bool"``; a
            column not given (or ``"any"``) is not checked
        """
        _type_of(self.tree, columns)


# ---------------------------------------------------------------------------------- type check

_KIND = {"number": "a number", "text": "text", "date": "a date", "bool": "true/false"}


def _describe_node(node: Node, kind: str) -> str:
    what = _KIND.get(kind, kind)
    if isinstance(node, Name):
        return f"{node.name!r} is {what}"
    if isinstance(node, Literal):
        return f"{node.value!r} is {what}"
    return f"the value is {what}"


def _type_of(node: Node, columns: Mapping[str, str]) -> str:
    """The type of ``node``'s value ("any" when unknown); a mismatch is a ConditionError."""
    if isinstance(node, Literal):
        if isinstance(node.value, bool):
            return "bool"
        return "text" if isinstance(node.value, str) else "number"
    if isinstance(node, Name):
        return columns.get(node.name, "any")
    if isinstance(node, Unary):
        kind = _type_of(node.operand, columns)
        if node.op == "-" and kind not in {"number", "any"}:
            raise ConditionError(
                f"'-' needs a number, but {_describe_node(node.operand, kind)}", node.position
            )
        return "bool" if node.op == "not" else "number"
    if isinstance(node, (InList, IsNull)):
        _type_of(node.operand, columns)
        return "bool"
    if isinstance(node, Call):
        kinds = [_type_of(a, columns) for a in node.args]
        wanted = {"lower": "text", "upper": "text", "abs": "number"}.get(node.function)
        if node.function == "days_since" and kinds[0] not in {"date", "text", "any"}:
            raise ConditionError(
                f"days_since() needs a date, but {_describe_node(node.args[0], kinds[0])}",
                node.position,
            )
        if wanted is not None and kinds[0] not in {wanted, "any"}:
            raise ConditionError(
                f"{node.function}() needs {_KIND[wanted]}, but "
                f"{_describe_node(node.args[0], kinds[0])}",
                node.position,
            )
        if node.function == "days_since":
            return "number"
        return wanted or (kinds[0] if kinds[0] != "any" else kinds[-1])
    assert isinstance(node, Binary)
    left, right = _type_of(node.left, columns), _type_of(node.right, columns)
    if node.op in {"and", "or"}:
        return "bool"
    if "any" in (left, right):
        return "bool" if node.op in {"==", "!=", "<", "<=", ">", ">="} else "any"
    if node.op in {"==", "!=", "<", "<=", ">", ">="}:
        # A date column compares with a date written as text ("signup_at > '2025-01-01'"),
        # true/false with 1/0.
        if left != right and {left, right} not in ({"date", "text"}, {"bool", "number"}):
            raise ConditionError(
                f"cannot compare {_KIND.get(left, left)} with {_KIND.get(right, right)} "
                f"using '{node.op}' ({_describe_node(node.left, left)}, "
                f"{_describe_node(node.right, right)})",
                node.position,
            )
        return "bool"
    if node.op == "+" and left == right == "text":
        return "text"
    for side, kind in ((node.left, left), (node.right, right)):
        if kind != "number":
            raise ConditionError(
                f"'{node.op}' needs numbers, but {_describe_node(side, kind)}", node.position
            )
    return "number"

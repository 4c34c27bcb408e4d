"""Which names a template reads, and a did-you-mean for the ones its context lacks."""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import nodes


@dataclass(frozen=True)
class AttributeRead:
    """``{{ customer.first_name }}`` (or ``customer["first_name"]``) at a template line."""

    name: str
    attribute: str
    line: int


def attribute_reads(tree: nodes.Template, name: str) -> Iterator[AttributeRead]:
    """Every attribute the template reads from the top-level ``name`` (such as ``customer``)."""
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getattr):
            if isinstance(node.node, nodes.Name) and node.node.name == name:
                yield AttributeRead(name, node.attr, node.lineno)
        elif isinstance(node, nodes.Getitem):
            key = node.arg
            if (
                isinstance(node.node, nodes.Name)
                and node.node.name == name
                and isinstance(key, nodes.Const)
                and isinstance(key.value, str)
            ):
                yield AttributeRead(name, key.value, node.lineno)


def did_you_mean(word: str, choices: Collection[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices``, or nothing."""
    close = difflib.get_close_matches(word, sorted(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


_NO_ATTRIBUTE = re.compile(r"^'dict object' has no attribute '([^']+)'$")
_UNDEFINED = re.compile(r"^'([^']+)' is undefined$")

#: Top-level context names whose values are records a template reads attributes of.
_RECORDS = ("customer", "segment", "variant", "campaign")


def explain_undefined(message: str, context: Mapping[str, Any]) -> str:
    """Jinja's "'dict object' has no attribute 'frist_name'" in our words: which of the
    context's records lacks it, and its closest attribute."""
    found = _NO_ATTRIBUTE.match(message)
    if found:
        attribute = found.group(1)
        records = [
            (name, context[name])
            for name in _RECORDS
            if isinstance(context.get(name), Mapping) and attribute not in context[name]
        ]
        for name, record in records:
            hint = did_you_mean(attribute, [str(k) for k in record])
            if hint:
                return f"{name} has no attribute {attribute!r}{hint}"
        if records:
            name = records[0][0]
            return f"{name} has no attribute {attribute!r}"
        return message
    found = _UNDEFINED.match(message)
    if found:
        return f"unknown name {found.group(1)!r}{did_you_mean(found.group(1), list(context))}"
    return message

"""Budgets for rendering one message: time, output size, loop and range lengths, nesting.

A template is trusted code from the workspace, but one line of it can still hang a run
(``{% for i in range(99999) %}{% for j in range(99999) %}``) or take gigabytes (``'A' * 10**9``).
Every message renders under a :class:`Budget`; going over it raises :class:`OverBudget` (a Jinja
``SecurityError``, so the renderer reports it with the template's name and line), and the message
fails alone.

What is checked, and where:

- time: at every call from a template (functions, methods, macros, ``caller()``) and at every
  1,024th step of every ``{% for %}`` loop (without a loop or a call, a template's output is
  bounded by its own length);
- size: the rendered output, every string a call, a filter or an operator would build (checked
  *before* it is built where the size is known in advance: ``*``, ``%``, ``center``, ``format``,
  ``replace``, ``join``...), every value stored in a ``namespace``;
- ``range()``: at most :attr:`RenderLimits.max_range` items;
- nesting: calls (a recursive macro) at most :data:`MAX_CALL_DEPTH` deep.
"""

from __future__ import annotations

import contextvars
import operator
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.utils import Namespace

#: Calls (macros, ``caller()``, functions) nested deeper than this are refused: a recursive
#: macro fails with a clear error long before Python's recursion limit.
MAX_CALL_DEPTH = 100

#: Loop steps between two looks at the clock.
_STEPS_PER_CHECK = 1024


@dataclass(frozen=True)
class RenderLimits:
    """The budget of one message (all its parts together); see ``[settings.limits]``.

    :param seconds: wall-clock time to render one message
    :param max_chars: characters of one rendered part, and of any string built while rendering
    :param max_range: items one ``range()`` may produce
    """

    seconds: float = 2.0
    max_chars: int = 1_000_000
    max_range: int = 100_000


class OverBudget(SecurityError):
    """A template went over its time or size budget, or nested calls too deep."""


class Budget:
    """The running budget of one message: a deadline and the limits."""

    def __init__(self, limits: RenderLimits) -> None:
        self.limits = limits
        self.deadline = time.monotonic() + limits.seconds
        self.depth = 0

    def check_time(self) -> None:
        """Raise :class:`OverBudget` once the message's time is up."""
        if time.monotonic() > self.deadline:
            raise OverBudget(
                f"over the render time budget ({self.limits.seconds:g} s per message, "
                "[settings.limits] render_seconds)"
            )

    def check_size(self, chars: int, what: str = "text") -> None:
        """Raise :class:`OverBudget` if ``chars`` characters are over the size budget."""
        if chars > self.limits.max_chars:
            raise OverBudget(
                f"{what} of {chars:,} characters is over the size budget "
                f"({self.limits.max_chars:,}, [settings.limits] max_message_chars)"
            )


_CURRENT: contextvars.ContextVar[Budget | None] = contextvars.ContextVar(
    "campaign_render_budget", default=None
)


@contextmanager
def budget(limits: RenderLimits) -> Iterator[Budget]:
    """Render under a fresh budget for ``limits`` (one message)."""
    current = Budget(limits)
    token = _CURRENT.set(current)
    try:
        yield current
    finally:
        _CURRENT.reset(token)


def start_budget(limits: RenderLimits) -> contextvars.Token[Budget | None]:
    """Start a message's budget (the fast form of :func:`budget`); pass the token to
    :func:`end_budget`."""
    return _CURRENT.set(Budget(limits))


def end_budget(token: contextvars.Token[Budget | None]) -> None:
    """End the budget :func:`start_budget` began."""
    _CURRENT.reset(token)


def current() -> Budget | None:
    """The budget of the message being rendered, if any."""
    return _CURRENT.get()


# ------------------------------------------------------------------------------ size estimates

_WIDTH = re.compile(r"\d+")


def _widest(format_string: str) -> int:
    """The largest number written in a format string (a width or precision)."""
    return max(
        (int(n) if len(n) < 12 else 10**12 for n in _WIDTH.findall(format_string)), default=0
    )


def _size(value: Any) -> int | None:
    if isinstance(value, (str, list, tuple)):
        return len(value)
    return None


def check_repeat(left: Any, right: Any) -> None:
    """``'A' * 10**9`` and ``[0] * 10**9``: refuse before Python builds them."""
    found = current()
    if found is None:
        return
    for seq, times in ((left, right), (right, left)):
        n = _size(seq)
        if n is not None and isinstance(times, int) and not isinstance(times, bool):
            found.check_size(n * max(times, 0), "a repeated string or list")


def check_modulo(left: Any, right: Any) -> None:
    """``'%0999999999d' % 1``: a width over the budget is refused."""
    found = current()
    if found is not None and isinstance(left, str):
        found.check_size(len(left) + _widest(left), "a formatted string")


def check_power(left: Any, right: Any) -> None:
    """``10 ** 10 ** 10`` would compute for ever: integer powers are kept to 4,096 bits."""
    if (
        isinstance(left, int)
        and isinstance(right, int)
        and abs(left) > 1
        and right * abs(left).bit_length() > 4096
    ):
        raise OverBudget(f"{left} ** {right} is too large to compute")


def _pad_width(args: tuple[Any, ...]) -> int:
    return max((a for a in args if isinstance(a, int) and not isinstance(a, bool)), default=0)


def precheck_str_method(
    text: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    """Refuse ``text.name(*args)`` if its result would be over the size budget."""
    found = current()
    if found is None:
        return
    if name in {"center", "ljust", "rjust", "zfill"}:
        found.check_size(_pad_width(args), f"str.{name}()")
    elif name == "expandtabs":
        width = _pad_width((*args, *kwargs.values())) or 8
        found.check_size(len(text) + text.count("\t") * width, "str.expandtabs()")
    elif name in {"format", "format_map"}:
        found.check_size(len(text) + _widest(text), "a formatted string")
    elif name == "replace" and len(args) >= 2 and isinstance(args[1], str):
        old = args[0] if isinstance(args[0], str) else ""
        found.check_size(len(text) + (len(text) + 1) * len(args[1]) - len(old), "str.replace()")
    elif name == "join" and args:
        items = args[0]
        if isinstance(items, (list, tuple)):
            found.check_size(
                sum(len(x) for x in items if isinstance(x, str)) + len(text) * len(items),
                "str.join()",
            )


STR_METHODS = frozenset(
    {"center", "ljust", "rjust", "zfill", "expandtabs", "format", "format_map", "replace", "join"}
)


# ------------------------------------------------------------------------------------ globals


def capped_range(*args: int) -> range:
    """``range()`` in templates: at most ``max_range`` items."""
    found = current()
    limit = found.limits.max_range if found is not None else RenderLimits().max_range
    values = range(*args)
    if len(values) > limit:
        raise OverBudget(
            f"range of {len(values):,} items is over the limit ({limit:,}, "
            "[settings.limits] max_range)"
        )
    return values


class CappedNamespace(Namespace):
    """``namespace()`` whose values are size-checked: ``{% set ns.s = ns.s ~ ns.s %}`` in a loop
    stops at the size budget instead of doubling to gigabytes."""

    def __setitem__(self, name: str, value: Any) -> None:
        found = current()
        if found is not None:
            size = _size(value)
            if size is not None:
                found.check_size(size, f"namespace value {name!r}")
        super().__setitem__(name, value)


def checked_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """A built-in filter whose output can be far larger than its input, size-checked first."""

    def estimate(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
        text = value if isinstance(value, str) else ""
        if name in {"center", "indent"}:
            width = _pad_width((*args, *(v for v in kwargs.values() if isinstance(v, int))))
            lines = text.count("\n") + 1
            return len(text) + width * (lines if name == "indent" else 1)
        if name == "format":
            return len(text) + _widest(text)
        if name == "replace" and len(args) >= 2:
            return len(text) + (len(text) + 1) * len(str(args[1]))
        if name == "join":
            sep = args[0] if args and isinstance(args[0], str) else ""
            return sum(len(x) for x in value if isinstance(x, str)) + len(sep) * len(value)
        if name == "wordwrap":
            wrap = kwargs.get("wrapstring", args[2] if len(args) > 2 else "\n")
            return len(text) * (1 + len(str(wrap)))
        return 0

    def wrapper(*call_args: Any, **kwargs: Any) -> Any:
        # Jinja folds a filter of constants when it compiles the template, outside any
        # message's budget: then the default limits apply.
        found = current() or Budget(RenderLimits())
        # Filters that take the environment or context get it first; the value comes next.
        offset = 1 if getattr(function, "jinja_pass_arg", None) is not None else 0
        args = list(call_args)
        if name == "join" and len(args) > offset and not isinstance(args[offset], (list, tuple)):
            args[offset] = list(args[offset])
        value = args[offset] if len(args) > offset else None
        found.check_size(estimate(value, tuple(args[offset + 1 :]), kwargs), f"filter {name}")
        return function(*args, **kwargs)

    wrapper.__name__ = getattr(function, "__name__", name)
    pass_arg = getattr(function, "jinja_pass_arg", None)
    if pass_arg is not None:
        wrapper.jinja_pass_arg = pass_arg  # type: ignore[attr-defined]
    return wrapper


#: Filters whose output may be much larger than their input.
GROWING_FILTERS = ("center", "indent", "format", "replace", "wordwrap", "join")


def loop_steps(iterable: Iterable[Any]) -> Iterator[Any]:
    """Every ``{% for %}`` loop iterates through this: a look at the clock every 1,024 steps."""
    found = current()
    if found is None:
        yield from iterable
        return
    for step, item in enumerate(iterable):
        if step % _STEPS_PER_CHECK == _STEPS_PER_CHECK - 1:
            found.check_time()
        yield item


#: The filter name the template tree's loops are routed through (not for templates' own use).
LOOP_FILTER = "_loop_steps"


def route_loops(tree: nodes.Template) -> nodes.Template:
    """Make every ``{% for %}`` of a parsed template iterate through :func:`loop_steps`."""
    for loop in tree.find_all(nodes.For):
        loop.iter = nodes.Filter(loop.iter, LOOP_FILTER, [], [], None, None, lineno=loop.lineno)
    return tree


BINOP_CHECKS: dict[str, Callable[[Any, Any], None]] = {
    "*": check_repeat,
    "%": check_modulo,
    "**": check_power,
}

BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "*": operator.mul,
    "%": operator.mod,
    "**": operator.pow,
}

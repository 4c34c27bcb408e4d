"""The sandboxed Jinja environment every message is rendered in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, nodes, select_autoescape
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from templates import limits
from templates.filters import FILTERS
from templates.limits import MAX_CALL_DEPTH, OverBudget, RenderLimits


class LimitedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, with the budgets of :mod:`templates.limits` enforced: every
    call and every loop looks at the clock, and what would grow past the size budget is refused
    before it is built."""

    intercepted_binops = frozenset(limits.BINOPS)

    def __init__(self, *args: Any, render_limits: RenderLimits | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.render_limits = render_limits or RenderLimits()
        self.globals["range"] = limits.capped_range
        self.globals["namespace"] = limits.CappedNamespace
        # lipsum(n=10**6) writes a gigabyte of Latin; no message needs it.
        self.globals.pop("lipsum", None)
        for name in limits.GROWING_FILTERS:
            self.filters[name] = limits.checked_filter(name, self.filters[name])
        self.filters[limits.LOOP_FILTER] = limits.loop_steps

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        return limits.route_loops(super()._parse(source, name, filename))

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        limits.BINOP_CHECKS[operator](left, right)
        return limits.BINOPS[operator](left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        found = limits.current()
        if found is None:
            return super().call(__context, __obj, *args, **kwargs)
        found.check_time()
        for arg in args:
            if isinstance(arg, str):
                found.check_size(len(arg), "an argument")
        # A string method whose result may be far larger than the string ('x'.center(10**9)):
        # its size is checked before it is built. (The sandbox wraps str.format; look inside.)
        method = getattr(__obj, "__wrapped__", __obj)
        owner = getattr(method, "__self__", None)
        if isinstance(owner, str) and getattr(method, "__name__", "") in limits.STR_METHODS:
            limits.precheck_str_method(owner, method.__name__, args, kwargs)
        if found.depth >= MAX_CALL_DEPTH:
            raise OverBudget(
                f"calls nested deeper than {MAX_CALL_DEPTH} "
                "(a macro that calls itself without end?)"
            )
        found.depth += 1
        try:
            return super().call(__context, __obj, *args, **kwargs)
        finally:
            found.depth -= 1


def make_environment(folder: Path, render_limits: RenderLimits | None = None) -> LimitedSandbox:
    """An immutable sandbox over ``folder``: strict undefined variables, HTML parts autoescaped,
    every message rendered under ``render_limits`` (see :mod:`templates.limits`).

    Customer data is only ever passed as context values, never as template source, so a name
    like ``{{ 7*7 }}`` in the data renders literally.
    """
    env = LimitedSandbox(
        loader=FileSystemLoader(str(folder)),
        undefined=StrictUndefined,
        autoescape=select_autoescape(
            enabled_extensions=("html", "html.j2"), default=False, default_for_string=False
        ),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        render_limits=render_limits,
    )
    env.filters.update(FILTERS)
    return env

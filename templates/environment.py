"""The sandboxed Jinja environment every message is rendered in."""

from __future__ import annotations

from pathlib import Path

from jinja2 import FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import ImmutableSandboxedEnvironment

from templates.filters import FILTERS


def make_environment(folder: Path) -> ImmutableSandboxedEnvironment:
    """An immutable sandbox over ``folder``: strict undefined variables, HTML parts autoescaped.

    Customer data is only ever passed as context values, never as template source, so a name
    like ``{{ 7*7 }}`` in the data renders literally.
    """
    env = ImmutableSandboxedEnvironment(
        loader=FileSystemLoader(str(folder)),
        undefined=StrictUndefined,
        autoescape=select_autoescape(
            enabled_extensions=("html", "html.j2"), default=False, default_for_string=False
        ),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(FILTERS)
    return env

"""Options shared by several commands, defined once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def config_option(func: F) -> F:
    """``--config/-c FILE`` (default ``config.toml`` in the current folder)."""
    return click.option(
        "--config",
        "-c",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False),
        default=Path("config.toml"),
        show_default=True,
        envvar="CAMPAIGN_CONFIG",
        help="The workspace's config file.",
    )(func)


class AtTime(click.ParamType):  # type: ignore[type-arg]
    """An ISO time such as ``2026-11-23T09:00`` or ``2026-11-23``; UTC unless it has an offset."""

    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(
                f"{value!r} is not a time; use ISO format such as 2026-11-23T09:00 "
                "or 2026-11-23T09:00+01:00",
                param,
                ctx,
            )
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        return parsed


def at_option(func: F) -> F:
    """``--at TIME``: the logical time of the run (default: now)."""
    return click.option(
        "--at",
        "at",
        type=AtTime(),
        default=None,
        help="Run as if it were this time (ISO, UTC unless an offset is given). Default: now.",
    )(func)


class Group(click.Group):
    """A command group whose ``--help`` lists each command's whole first sentence, wrapped,
    instead of cutting it at the terminal's width."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=1_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

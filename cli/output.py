"""Terminal output: one console, tables and progress bars (rich, imported when first used).

Nothing here imports rich at module level: ``campaign --help`` never draws a table.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from campaigns.progress import Progress as ProgressCallback

F = TypeVar("F", bound=Callable[..., Any])


def console() -> Console:
    """A console on the current stdout; wide and plain when it is not a terminal."""
    from rich.console import Console

    if sys.stdout.isatty():
        return Console()
    return Console(width=160, no_color=True, highlight=False, soft_wrap=False)


@contextmanager
def progress_bars(out: Console) -> Iterator[ProgressCallback]:
    """A progress callback that shows a line per stage (a bar where the total is known).

    Bars go to stderr on a terminal only, so piped or captured stdout stays clean.
    """
    if not sys.stderr.isatty():
        yield lambda _stage, _advance, _total: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    bars = Progress(
        TextColumn("{task.description:<20}"),
        BarColumn(),
        TextColumn("{task.completed:>10,.0f}/{task.total:<10,.0f}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    tasks: dict[str, TaskID] = {}

    def update(stage: str, advance: int, total: int | None) -> None:
        if stage not in tasks:
            for task in tasks.values():
                bars.update(
                    task, completed=bars.tasks[task].total or 1, total=bars.tasks[task].total or 1
                )
            tasks[stage] = bars.add_task(stage, total=total or 1)
        if advance:
            bars.advance(tasks[stage], advance)

    with bars:
        yield update


def table(*columns: str, title: str | None = None) -> Table:
    """A table with these columns; a name ending in ``>`` is right-aligned (numbers)."""
    from rich.table import Table

    made = Table(title=title)
    for column in columns:
        name = column.rstrip(">")
        made.add_column(name, justify="right" if column.endswith(">") else "left")
    return made


def format_option(func: F) -> F:
    """``--format text|json``: text for people (the default), JSON for scripts."""
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="text for people; json for scripts (snake_case keys, ISO times, integer counts).",
    )(func)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON; times as ISO 8601 (to the second)."""
    click.echo(json.dumps(data, indent=2, default=_json_default, ensure_ascii=False))

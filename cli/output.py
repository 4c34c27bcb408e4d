"""Terminal output: one console, tables and progress bars (rich)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from campaigns.progress import Progress as ProgressCallback


def console() -> Console:
    """A console on the current stdout; wide and plain when it is not a terminal."""
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
    made = Table(title=title)
    for column in columns:
        name = column.rstrip(">")
        made.add_column(name, justify="right" if column.endswith(">") else "left")
    return made

"""How long-running library calls report progress without printing anything themselves."""

from __future__ import annotations

from collections.abc import Callable

#: Called as ``progress(stage, advance, total)``: a new ``stage`` name starts a stage (``total``
#: items when known), and ``advance`` counts items done since the last call.
Progress = Callable[[str, int, int | None], None]


def quiet(_stage: str, _advance: int, _total: int | None) -> None:
    """The progress callback that reports nothing."""
    return None

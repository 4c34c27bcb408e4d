"""The one place where library errors become command-line errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, TypeVar

import click

from campaigns.errors import CampaignError

F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn a :class:`CampaignError` into ``Error: ...`` and exit code 1, without a traceback."""
    try:
        yield
    except CampaignError as exc:
        raise click.ClickException(str(exc)) from None


def handles_errors(func: F) -> F:
    """Decorate a command so user mistakes print one clear error instead of a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with user_errors():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]

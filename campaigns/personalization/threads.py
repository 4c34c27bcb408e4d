"""One OpenMP thread for model fitting and scoring.

Gradient boosting parallelises with OpenMP, whose threads spin while they wait. On a machine
shared with other work (a CI runner, a server running campaigns) that spinning made training
ten times slower than one thread (the Customer Personality model: 47 s instead of 4 s on two
busy cores), so models run single-threaded; they are small enough for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]


@contextmanager
def single_threaded() -> Iterator[None]:
    """Limit OpenMP (and BLAS) to one thread inside the block."""
    with threadpool_limits(limits=1):
        yield

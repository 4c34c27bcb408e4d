"""Rendering a campaign's messages, in this process or on every core in bounded chunks.

:func:`render_chunks` renders the customers of one campaign in order and yields the outbox
columns it produced, chunk by chunk (``render_chunk_size`` customers each). Small audiences
(fewer than :data:`PARALLEL_FROM` messages) and ``render_processes = 1`` render here; larger ones
are rendered by a pool of ``render_processes`` worker processes and gathered in order as each
chunk comes back. At most two chunks per worker are in flight, and a customer's template record
is built only for its chunk, so memory follows the chunk size, not the audience.

Workers are forked (Linux's default start method): a worker inherits the job (compiled templates,
the customer table, recommendations, the tracker) from the parent at the moment the pool starts,
and only index ranges go out and rendered strings come back. Nothing in a worker touches the
store. One customer whose template fails is one ``render_failed`` row, as in-process; the run's
budgets still hold: a worker checks the run's deadline every 100 messages and stops when its own
failures pass the allowed share, and the parent checks the shares of all chunks returned so far.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import TYPE_CHECKING, Any

import pandas as pd

from campaigns.engagement.links import Tracker, strip_marks
from campaigns.errors import TemplateCheckError
from templates import MessageTemplate, build_context

if TYPE_CHECKING:
    from campaigns.compose import RunRenderBudget

#: Below this many messages a campaign renders in this process: starting a pool costs more.
PARALLEL_FROM = 5_000


def available_cores() -> int:
    """The cores this process may run on (the affinity mask where the system has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Parallel:
    """How to spread rendering: ``processes`` workers (None: every core), chunks of
    ``chunk_size`` customers, and the audience from which a pool is worth starting."""

    processes: int | None = None
    chunk_size: int = 20_000
    #: None: :data:`PARALLEL_FROM`.
    parallel_from: int | None = None

    def workers(self, messages: int) -> int:
        """How many processes render ``messages`` messages (1: in this process)."""
        smallest = self.parallel_from if self.parallel_from is not None else PARALLEL_FROM
        if messages < smallest or "fork" not in multiprocessing.get_all_start_methods():
            return 1
        wanted = self.processes if self.processes is not None else available_cores()
        chunks = -(-messages // self.chunk_size)
        return max(1, min(wanted, chunks))


#: Customer columns that are bookkeeping, not traits, and stay out of the template context.
_HIDDEN = frozenset({"segment_id"})


def customer_records(customers: pd.DataFrame, ids: pd.Series | Any) -> list[dict[str, Any]]:
    """The template view of some customers: plain Python values, None for missing ones.

    Cleaning whole columns at once is what keeps rendering fast; nothing is converted per value.
    """
    columns = [str(c) for c in customers.columns if c not in _HIDDEN]
    frame = customers.loc[ids.to_numpy() if isinstance(ids, pd.Series) else ids, columns]
    frame = frame.astype(object).where(frame.notna(), None)
    values = [frame[c].tolist() for c in columns]
    return [dict(zip(columns, row, strict=True)) for row in zip(*values, strict=True)]


@dataclass
class RenderJob:
    """Everything needed to render one campaign's messages; item ``i`` of each sequence is the
    ``i``-th message's. Customers' template records are built a chunk at a time from
    ``customers`` (indexed by customer id), so that they never exist for the whole audience."""

    campaign_name: str
    customers: pd.DataFrame
    customer_ids: Any  # an array of customer ids, the index values of ``customers``
    segment_ids: Sequence[int]
    variants: Sequence[str | None]
    refs: Sequence[str]
    segments: Mapping[int, Mapping[str, Any]]
    campaign: Mapping[str, Any]
    at: datetime
    unsubscribe_url: Callable[[str], str]
    contexts: Mapping[str | None, Any]
    recommendations: Mapping[str, Any]
    templates: Mapping[str | None, MessageTemplate]
    compiled: Mapping[str | None, MessageTemplate]
    tracker: Tracker | None
    track_links: bool
    budget: RunRenderBudget | None

    def __len__(self) -> int:
        return len(self.customer_ids)


@dataclass
class Rendered:
    """Rendered columns of a run of consecutive messages, and their failures (customer, error)."""

    recipients: list[str | None] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    htmls: list[str | None] = field(default_factory=list)
    headers: list[str | None] = field(default_factory=list)
    links: list[str | None] = field(default_factory=list)
    errors: list[str | None] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)

    def extend(self, other: Rendered) -> None:
        self.recipients += other.recipients
        self.subjects += other.subjects
        self.texts += other.texts
        self.htmls += other.htmls
        self.headers += other.headers
        self.links += other.links
        self.errors += other.errors
        self.failures += other.failures


def render_chunks(
    job: RenderJob,
    parallel: Parallel | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[tuple[int, int, Rendered]]:
    """Render every message of ``job`` in order, here or in a pool (see the module docstring):
    ``(start, stop, rendered)`` per chunk of ``parallel.chunk_size`` messages (one chunk when
    ``parallel`` is None). The run's failure share and deadline are checked after each chunk."""
    total = len(job)
    if parallel is None:
        yield 0, total, render_range(job, 0, total, on_progress)
        return
    bounds = [
        (start, min(start + parallel.chunk_size, total))
        for start in range(0, total, parallel.chunk_size)
    ]
    workers = parallel.workers(total)
    chunks = (
        (render_range(job, start, stop, on_progress) for start, stop in bounds)
        if workers == 1
        else _pooled(job, workers, bounds)
    )
    failures: list[tuple[str, str]] = []
    done = 0
    for (start, stop), chunk in zip(bounds, chunks, strict=True):
        failures += chunk.failures
        done = stop
        if job.budget is not None:
            job.budget.check_failures(job.campaign_name, failures, total)
            job.budget.check_time(job.campaign_name, done, total)
        if on_progress is not None and workers > 1:
            on_progress(stop - start)
        yield start, stop, chunk


#: The job a forked worker renders from (set in the parent just before the pool forks).
_JOB: RenderJob | None = None


def _render_chunk(bounds: tuple[int, int]) -> Rendered:
    assert _JOB is not None, "a render worker runs only in a pool started by render_chunks"
    return render_range(_JOB, *bounds)


def _pooled(job: RenderJob, workers: int, bounds: list[tuple[int, int]]) -> Iterator[Rendered]:
    global _JOB
    _JOB = job
    try:
        # Python 3.12+ warns that forking a process with threads (a run's heartbeat) may copy a
        # lock in a held state: a worker only renders, and takes no lock those threads use.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
            # With fork, the pool starts all its workers at the first submit: now, with _JOB set.
            # At most two chunks per worker are in flight, so finished chunks never pile up
            # while the run writes earlier ones.
            ahead = iter(bounds)
            pending = deque(pool.submit(_render_chunk, b) for b in islice(ahead, 2 * workers))
        try:
            while pending:
                chunk = pending.popleft().result()
                following = next(ahead, None)
                if following is not None:
                    pending.append(pool.submit(_render_chunk, following))
                yield chunk
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    finally:
        _JOB = None


def render_range(
    job: RenderJob, start: int, stop: int, on_progress: Callable[[int], None] | None = None
) -> Rendered:
    """Render messages ``start`` to ``stop`` of ``job`` (one customer's failure is its row's)."""
    out = Rendered()
    tracker, track_links, budget = job.tracker, job.track_links, job.budget
    total = len(job)
    records = customer_records(job.customers, job.customer_ids[start:stop])
    out.recipients = [r.get("email") for r in records]
    for done, (index, record) in enumerate(zip(range(start, stop), records, strict=True), start=1):
        variant, ref = job.variants[index], job.refs[index]
        customer_id = str(record["customer_id"])
        context = build_context(
            customer=record,
            segment=job.segments[int(job.segment_ids[index])],
            campaign=job.campaign,
            now=job.at,
            unsubscribe_url=(
                tracker.unsubscribe_url(ref)
                if tracker is not None
                else job.unsubscribe_url(customer_id)
            ),
            variant=job.contexts[variant],
            recommendations=job.recommendations.get(customer_id, ()),
        )
        try:
            if tracker is not None and track_links:
                tracker.begin(ref, job.campaign_name, variant)
                message = job.compiled[variant].render(context)
                text, html = tracker.finish(message, job.templates[variant], context)
            else:
                message = job.templates[variant].render(context)
        except TemplateCheckError as exc:
            out.subjects.append("")
            out.texts.append("")
            out.htmls.append(None)
            out.headers.append(None)
            out.links.append(None)
            out.errors.append(str(exc))
            out.failures.append((customer_id, str(exc)))
            if budget is not None:
                budget.check_failures(job.campaign_name, out.failures, total)
        else:
            out.subjects.append(message.subject)
            extra = message.headers
            if tracker is not None and track_links:
                out.texts.append(text)
                out.htmls.append(html)
                out.links.append(tracker.message_links_json())
            else:
                out.texts.append(strip_marks(message.text))
                out.htmls.append(strip_marks(message.html) if message.html is not None else None)
                out.links.append(None)
            if tracker is None:
                out.headers.append(json.dumps(extra) if extra else None)
            elif extra:
                out.headers.append(json.dumps({**tracker.headers(ref), **extra}))
            else:
                out.headers.append(tracker.headers_json(ref))
            out.errors.append(None)
        if budget is not None and done % 100 == 0:
            budget.check_time(job.campaign_name, start + done, total)
        if on_progress is not None and done % 1000 == 0:
            on_progress(1000)
    if on_progress is not None:
        on_progress((stop - start) % 1000)
    return out

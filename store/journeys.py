"""Journey state: one ``journey_entry`` row per customer per entry, and a ``journey_move`` per step
taken.

The invariants are the database's: a customer has at most one active entry per journey (a
partial unique index), an entry's n-th move is recorded once (unique (entry, seq)), and a move,
its message and the entry's new step are written in one transaction (:func:`apply_moves`), the
entry's update guarded by its move count. A run killed between any two statements leaves either
all of a chunk's moves or none; a second run (or a replay) finds the keys taken and adds nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from store.bulk import datetime_strings, read_frame, time_param
from store.outbox import MESSAGE_COLUMNS, _rows

#: Columns of the frame :func:`due_entries` returns.
ENTRY_COLUMNS = ["id", "customer_id", "entry_no", "step", "step_at", "entered_at", "moves"]

#: Columns of a move frame for :func:`apply_moves` (``step`` is the step taken).
MOVE_COLUMNS = ["entry_id", "seq", "customer_id", "step", "outcome", "to_step"]

#: Columns of an entry update for :func:`apply_moves`.
UPDATE_COLUMNS = ["id", "moves", "status", "step", "step_at", "due_at", "exit_reason"]

_CHUNK = 20_000

#: Customers looked up per query of :func:`entry_history`.
_LOOKUP = 2_000


def _mark(dialect: str) -> str:
    return "%s" if dialect == "postgresql" else "?"


@dataclass(frozen=True)
class EntryHistory:
    """What the store knows of some customers' entries into one journey."""

    #: Per customer who entered (indexed by ``customer_id``): the last entry number
    #: (``last_entry``), whether they are inside now (``active``), and when their last entry
    #: finished (``finished_at``; missing while active).
    last: pd.DataFrame
    #: ``customer_id`` and ``occasion`` of every entry they made.
    entered: pd.DataFrame


def entry_history(engine: Engine, journey: str, customer_ids: Iterable[str]) -> EntryHistory:
    """The entries into ``journey`` of ``customer_ids``, looked up by the index on journey and
    customer a few thousand customers at a time: what is read grows with the customers asked
    about (a run's entrants), not with everyone who ever entered."""
    wanted = sorted(set(map(str, customer_ids)))
    parts = [pd.DataFrame(columns=["customer_id", "entry_no", "occasion", "status", "finished_at"])]
    for start in range(0, len(wanted), _LOOKUP):
        names = {f"c{i}": c for i, c in enumerate(wanted[start : start + _LOOKUP])}
        marks = ", ".join(f":{name}" for name in names)
        parts.append(
            read_frame(
                engine,
                "SELECT customer_id, entry_no, occasion, status, finished_at FROM journey_entry "
                f"WHERE journey = :j AND customer_id IN ({marks})",
                params={"j": journey, **names},
                datetime_columns=["finished_at"],
            )
        )
    rows = pd.concat(parts, ignore_index=True).astype({"customer_id": str, "occasion": str})
    # A customer has at most one active entry, and it is their last.
    last = rows.sort_values(["customer_id", "entry_no"]).groupby("customer_id").tail(1)
    return EntryHistory(
        last=pd.DataFrame(
            {
                "last_entry": last["entry_no"].astype(int).to_numpy(),
                "active": (last["status"] == "active").to_numpy(),
                "finished_at": pd.to_datetime(last["finished_at"]).to_numpy(),
            },
            index=pd.Index(last["customer_id"], dtype=object, name="customer_id"),
        ),
        entered=rows[["customer_id", "occasion"]],
    )


def enrol(
    engine: Engine,
    journey: str,
    entrants: pd.DataFrame,
    first_step: str,
    due_at: datetime | Any,
    at: datetime,
) -> int:
    """Add entries (``customer_id``, ``entry_no``, ``occasion``) at ``first_step``, due at
    ``due_at`` (one time, or one per entrant); an entry that exists, or a customer already
    active in the journey, is skipped by the database. Returns how many were added."""
    if entrants.empty:
        return 0
    mark = _mark(engine.dialect.name)
    sql = (
        "INSERT INTO journey_entry (journey, customer_id, entry_no, occasion, status, step, "
        "step_at, due_at, moves, entered_at) VALUES "
        f"({mark}, {mark}, {mark}, {mark}, 'active', {mark}, {mark}, {mark}, 0, {mark}) "
        "ON CONFLICT DO NOTHING"
    )
    when = time_param(at)
    dues = (
        [time_param(due_at)] * len(entrants)
        if isinstance(due_at, datetime)
        else datetime_strings(pd.Series(due_at)).tolist()
    )
    rows = [
        (journey, str(c), int(n), str(o), first_step, when, due, when)
        for c, n, o, due in zip(
            entrants["customer_id"],
            entrants["entry_no"],
            entrants["occasion"],
            dues,
            strict=True,
        )
    ]
    return _execute(engine, [(sql, rows)])[0]


def due_entries(
    engine: Engine, journey: str, at: datetime, after_id: int, limit: int
) -> pd.DataFrame:
    """Active entries of ``journey`` due at ``at`` with an id above ``after_id``, by id."""
    return read_frame(
        engine,
        f"SELECT {', '.join(ENTRY_COLUMNS)} FROM journey_entry WHERE journey = :j AND "
        "status = 'active' AND due_at <= :at AND id > :after ORDER BY id LIMIT :n",
        params={"j": journey, "at": time_param(at), "after": after_id, "n": limit},
        datetime_columns=["step_at", "entered_at"],
    )


def waiting_entries(
    engine: Engine, journey: str, at: datetime, after_id: int, limit: int
) -> pd.DataFrame:
    """Active entries of ``journey`` not yet due at ``at`` with an id above ``after_id``, by id
    (to wake those whose awaited thing happened or who must exit)."""
    return read_frame(
        engine,
        f"SELECT {', '.join(ENTRY_COLUMNS)} FROM journey_entry WHERE journey = :j AND "
        "status = 'active' AND due_at > :at AND id > :after ORDER BY id LIMIT :n",
        params={"j": journey, "at": time_param(at), "after": after_id, "n": limit},
        datetime_columns=["step_at", "entered_at"],
    )


def wake(engine: Engine, ids: Iterable[int], at: datetime) -> int:
    """Make some waiting entries due at ``at`` (what they waited for has happened)."""
    mark = _mark(engine.dialect.name)
    rows = [(time_param(at), int(i), time_param(at)) for i in ids]
    if not rows:
        return 0
    sql = (
        f"UPDATE journey_entry SET due_at = {mark} WHERE id = {mark} AND status = 'active' "
        f"AND due_at > {mark}"
    )
    return _execute(engine, [(sql, rows)])[0]


def postpone(engine: Engine, ids: Any, moves: Any, due: Any) -> int:
    """Make entries due later (a cap holds their message until then), each guarded by its
    move count (an entry another run moved meanwhile is left alone)."""
    if len(ids) == 0:
        return 0
    mark = _mark(engine.dialect.name)
    times = datetime_strings(pd.Series(due)).tolist()
    rows = [(t, int(i), int(m)) for t, i, m in zip(times, ids, moves, strict=True)]
    sql = (
        f"UPDATE journey_entry SET due_at = {mark} WHERE id = {mark} AND moves = {mark} "
        "AND status = 'active'"
    )
    return _execute(engine, [(sql, rows)])[0]


def awaited_events(engine: Engine, journey: str, at: datetime) -> pd.DataFrame:
    """Human clicks and opens on the journey's messages up to ``at``: ``customer_id``,
    ``window`` (the message's entry and step) and ``kind``, one row each."""
    return read_frame(
        engine,
        'SELECT DISTINCT m.customer_id, m."window", e.kind FROM engagement_event e '
        "JOIN message m ON m.id = e.message_id WHERE m.campaign = :j AND "
        "e.kind IN ('click', 'open') AND e.machine = :false AND e.occurred_at <= :at",
        params={"j": journey, "at": time_param(at), "false": False},
    )


def apply_moves(
    engine: Engine,
    journey: str,
    messages: pd.DataFrame,
    moves: pd.DataFrame,
    updates: pd.DataFrame,
    at: datetime,
    run_id: int,
) -> int:
    """In ONE transaction: queue the moves' messages (a key that exists is skipped), record the
    moves (a recorded one is skipped) and move the entries (each guarded by its move count, so
    an entry another run moved meanwhile is left alone). Returns the entries moved."""
    mark = _mark(engine.dialect.name)
    statements: list[tuple[str, list[tuple[Any, ...]]]] = []
    if not messages.empty:
        frame = messages.assign(attempts=0)
        if "status" not in frame:
            frame = frame.assign(status="queued")
        frame = frame.reindex(columns=list(MESSAGE_COLUMNS))
        columns = ", ".join(f'"{c}"' for c in MESSAGE_COLUMNS)
        marks = ", ".join(mark for _ in MESSAGE_COLUMNS)
        statements.append(
            (
                # No conflict target: a message's ref is derived from its key, and a concurrent
                # run inserting the same message can meet the ref's unique index first (on
                # PostgreSQL, a conflict on an index other than the target is an error).
                f"INSERT INTO message ({columns}) VALUES ({marks}) ON CONFLICT DO NOTHING",
                _rows(frame),
            )
        )
    when = time_param(at)
    statements.append(
        (
            "INSERT INTO journey_move (entry_id, seq, journey, customer_id, step, outcome, "
            f"to_step, at, run_id) VALUES ({', '.join([mark] * 9)}) ON CONFLICT DO NOTHING",
            [
                (int(e), int(s), journey, str(c), st, str(o), str(t), when, run_id)
                for e, s, c, st, o, t in zip(
                    *(moves[c].tolist() for c in MOVE_COLUMNS), strict=True
                )
            ],
        )
    )
    step_at = datetime_strings(updates["step_at"]).tolist()
    due_at = datetime_strings(updates["due_at"]).tolist()
    finished = [None if s == "active" else when for s in updates["status"].tolist()]
    statements.append(
        (
            f"UPDATE journey_entry SET moves = moves + 1, status = {mark}, step = {mark}, "
            f"step_at = {mark}, due_at = {mark}, exit_reason = {mark}, finished_at = {mark} "
            f"WHERE id = {mark} AND moves = {mark} AND status = 'active'",
            list(
                zip(
                    updates["status"].tolist(),
                    updates["step"].tolist(),
                    step_at,
                    due_at,
                    updates["exit_reason"].tolist(),
                    finished,
                    updates["id"].astype(int).tolist(),
                    updates["moves"].astype(int).tolist(),
                    strict=True,
                )
            ),
        )
    )
    return _execute(engine, statements)[-1]


def _execute(engine: Engine, statements: list[tuple[str, list[tuple[Any, ...]]]]) -> list[int]:
    """Run each statement over its rows, all in one transaction; the rows each one changed."""
    raw = engine.raw_connection()
    counts = []
    try:
        cursor = raw.cursor()
        sqlite = engine.dialect.name != "postgresql"
        if sqlite:
            cursor.execute("BEGIN IMMEDIATE")
        for sql, rows in statements:
            changed = 0
            for start in range(0, len(rows), _CHUNK):
                chunk = rows[start : start + _CHUNK]
                if sqlite:
                    before = raw.total_changes
                    cursor.executemany(sql, chunk)
                    changed += int(raw.total_changes) - int(before)
                else:
                    cursor.executemany(sql, chunk)
                    changed += max(int(cursor.rowcount), 0)
            counts.append(changed)
        raw.commit()
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()
    return counts


def journey_counts(engine: Engine, journey: str, at: datetime) -> pd.DataFrame:
    """Per step of ``journey``: active entries at it and how many are due at ``at``."""
    return read_frame(
        engine,
        "SELECT step, COUNT(*) AS active, "
        "SUM(CASE WHEN due_at <= :at THEN 1 ELSE 0 END) AS due FROM journey_entry "
        "WHERE journey = :j AND status = 'active' GROUP BY step",
        params={"j": journey, "at": time_param(at)},
    )


def entry_outcomes(engine: Engine, journey: str) -> pd.DataFrame:
    """Entries of ``journey`` by status and exit reason."""
    return read_frame(
        engine,
        "SELECT status, exit_reason, COUNT(*) AS n FROM journey_entry WHERE journey = :j "
        "GROUP BY status, exit_reason",
        params={"j": journey},
    )


def move_counts(engine: Engine, journey: str) -> pd.DataFrame:
    """Moves of ``journey`` by step, outcome and target."""
    return read_frame(
        engine,
        "SELECT step, outcome, to_step, COUNT(*) AS n FROM journey_move WHERE journey = :j "
        "GROUP BY step, outcome, to_step",
        params={"j": journey},
    )


def entries_of(engine: Engine, journey: str) -> pd.DataFrame:
    """Every entry of ``journey`` with its times (for reports: conversions, time to convert)."""
    return read_frame(
        engine,
        "SELECT customer_id, entry_no, status, step, exit_reason, entered_at, finished_at "
        "FROM journey_entry WHERE journey = :j",
        params={"j": journey},
        datetime_columns=["entered_at", "finished_at"],
    )


def conversions(engine: Engine, journey: str) -> pd.DataFrame:
    """Per entry of ``journey``: its first purchase after it entered (``converted_at``, or
    missing), with ``entered_at``."""
    return read_frame(
        engine,
        "SELECT e.customer_id, e.entry_no, e.entered_at, MIN(t.invoiced_at) AS converted_at "
        "FROM journey_entry e LEFT JOIN transaction_line t ON t.customer_id = e.customer_id "
        "AND t.invoiced_at > e.entered_at WHERE e.journey = :j "
        "GROUP BY e.customer_id, e.entry_no, e.entered_at",
        params={"j": journey},
        datetime_columns=["entered_at", "converted_at"],
    )


def step_messages(engine: Engine, journey: str) -> pd.DataFrame:
    """The journey's messages by window (entry and step) status: ``window``, ``status``, ``n``."""
    return read_frame(
        engine,
        'SELECT "window", status, COUNT(*) AS n FROM message WHERE campaign = :j '
        'GROUP BY "window", status',
        params={"j": journey},
    )


def stored_definition(engine: Engine, journey: str) -> list[dict[str, Any]] | None:
    """The step list the last advancing run stored for ``journey`` (None: none yet)."""
    frame = read_frame(
        engine,
        "SELECT steps FROM journey_definition WHERE journey = :j",
        params={"j": journey},
        json_columns=["steps"],
    )
    if frame.empty:
        return None
    steps = frame["steps"].iloc[0]
    return list(steps) if steps is not None else None


@dataclass(frozen=True)
class EditMove:
    """Every active entry at step ``old`` goes to ``new`` (a step, or None: the entry is
    completed); ``due_at`` None keeps its times (a rename), else it arrives at ``new`` now."""

    old: str
    new: str | None
    due_at: datetime | None


def apply_edit(
    engine: Engine,
    journey: str,
    moves: Sequence[EditMove],
    steps: list[dict[str, Any]],
    at: datetime,
    run_id: int,
) -> list[int]:
    """In ONE transaction: record a move (outcome ``edited``) for each active entry at each
    ``old`` step, move those entries (set-based, guarded by the step they are at, so a replay
    or a second run finds nobody left there), and store ``steps`` as the journey's definition.
    Returns the entries moved per move."""
    mark = _mark(engine.dialect.name)
    when = time_param(at)
    statements: list[tuple[str, list[tuple[Any, ...]]]] = []
    active = f"journey = {mark} AND status = 'active' AND step = {mark}"
    for move in moves:
        to_step = move.new if move.new is not None else "completed"
        statements.append(
            (
                "INSERT INTO journey_move (entry_id, seq, journey, customer_id, step, outcome, "
                f"to_step, at, run_id) SELECT id, moves, journey, customer_id, step, 'edited', "
                f"{mark}, {mark}, {mark} FROM journey_entry WHERE {active} "
                "ON CONFLICT DO NOTHING",
                [(to_step, when, run_id, journey, move.old)],
            )
        )
        if move.new is None:
            sql = (
                "UPDATE journey_entry SET moves = moves + 1, status = 'completed', step = NULL, "
                f"due_at = NULL, finished_at = {mark} WHERE {active}"
            )
            rows: list[tuple[Any, ...]] = [(when, journey, move.old)]
        elif move.due_at is None:
            sql = f"UPDATE journey_entry SET moves = moves + 1, step = {mark} WHERE {active}"
            rows = [(move.new, journey, move.old)]
        else:
            sql = (
                f"UPDATE journey_entry SET moves = moves + 1, step = {mark}, step_at = {mark}, "
                f"due_at = {mark} WHERE {active}"
            )
            rows = [(move.new, when, time_param(move.due_at), journey, move.old)]
        statements.append((sql, rows))
    statements.append(
        (
            "INSERT INTO journey_definition (journey, steps, run_id, updated_at) VALUES "
            f"({mark}, {mark}, {mark}, {mark}) ON CONFLICT (journey) DO UPDATE SET "
            "steps = excluded.steps, run_id = excluded.run_id, updated_at = excluded.updated_at",
            [(journey, json.dumps(steps), run_id, when)],
        )
    )
    counts = _execute(engine, statements)
    return [counts[2 * i + 1] for i in range(len(moves))]


def active_entry(engine: Engine, journey: str, customer_id: str) -> dict[str, Any] | None:
    """The customer's active entry of ``journey`` (:data:`ENTRY_COLUMNS` and ``due_at``), or
    None when they are not inside it."""
    frame = read_frame(
        engine,
        f"SELECT {', '.join(ENTRY_COLUMNS)}, due_at FROM journey_entry WHERE journey = :j AND "
        "customer_id = :c AND status = 'active'",
        params={"j": journey, "c": customer_id},
        datetime_columns=["step_at", "entered_at", "due_at"],
    )
    return None if frame.empty else dict(frame.iloc[0])


def active_entries(engine: Engine, journey: str) -> pd.DataFrame:
    """Every active entry of ``journey``: :data:`ENTRY_COLUMNS` and ``due_at``."""
    return read_frame(
        engine,
        f"SELECT {', '.join(ENTRY_COLUMNS)}, due_at FROM journey_entry WHERE journey = :j AND "
        "status = 'active'",
        params={"j": journey},
        datetime_columns=["step_at", "entered_at", "due_at"],
    )


def split_arms(engine: Engine, journey: str, step: str) -> pd.DataFrame:
    """The entries a random split of ``journey`` sent down each arm (``outcome`` "random: ARM",
    ``n``) and how many of them bought after it (``converted``)."""
    return read_frame(
        engine,
        "SELECT m.outcome, COUNT(*) AS n, SUM(CASE WHEN EXISTS (SELECT 1 FROM transaction_line t "
        "WHERE t.customer_id = m.customer_id AND t.invoiced_at > m.at) THEN 1 ELSE 0 END) "
        "AS converted FROM journey_move m WHERE m.journey = :j AND m.step = :s AND "
        "m.outcome LIKE 'random: %' GROUP BY m.outcome",
        params={"j": journey, "s": step},
    )

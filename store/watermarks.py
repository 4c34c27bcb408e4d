"""The data's marks, read in a few indexed queries: has anything changed since a run?

A load replaces the data and stamps ``loaded_at``; transactions and events that arrive between
loads get higher ids; models are versioned; suppressions only grow between loads, but a removed
one is seen in the count. None of these queries reads the transaction log.
"""

from __future__ import annotations

from sqlalchemy import Engine, text

#: One query per mark, each answered from an index or a small table.
_MARKS = {
    "loaded_at": "SELECT value FROM meta WHERE key = 'loaded_at'",
    "last_transaction": "SELECT max(id) FROM transaction_line",
    "last_event": "SELECT max(id) FROM customer_event",
    "segment_model": "SELECT max(version) FROM segment_model",
    "personalization_model": "SELECT max(id) FROM personalization_model",
    "suppressions": "SELECT count(*) FROM suppression",
}


def data_marks(engine: Engine) -> dict[str, str]:
    """The store's data marks as strings ("" where a table is empty)."""
    marks = {}
    with engine.connect() as connection:
        for name, query in _MARKS.items():
            value = connection.execute(text(query)).scalar()
            marks[name] = "" if value is None else str(value)
    return marks

"""The fault-injection suite in small: SIGKILL at random points (fixed seed) of every stage of
``campaign load``, ``campaign run`` and of file, SMTP and webhook delivery, on SQLite and
PostgreSQL; after each chain a normal run finishes, and the real sinks (the exported files, an
aiosmtpd server, an HTTP server) must have received every planned message once, nothing for a
customer after they were suppressed, and a killed load must never leave half a store.

``python -m benchmarks.faults`` runs the same with 20 kills per stage and prints the table quoted in
docs/delivery.md.
"""

from __future__ import annotations

import pytest

from benchmarks.faults import STAGES, run

KILLS = 2


@pytest.mark.slow
@pytest.mark.parametrize(
    "store", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_killed_loads_runs_and_deliveries_lose_nothing_and_double_nothing(
    store: str, request: pytest.FixtureRequest
) -> None:
    # The PostgreSQL case needs a server (the session's; it is emptied first).
    server = request.getfixturevalue("postgres_url") if store == "postgresql" else None
    outcomes = run([store], list(STAGES), KILLS, customers=300, seed=10, postgres_url=server)
    table = {o.stage: o for o in outcomes}
    assert set(table) == set(STAGES)
    for outcome in outcomes:
        assert outcome.kills >= 1, outcome
        assert outcome.expected > 0, outcome
        assert (outcome.lost, outcome.duplicates) == (0, 0), outcome
        assert outcome.after_suppression == 0, outcome
        assert outcome.mixed_loads == 0, outcome
        assert outcome.notes == [], outcome
        assert outcome.in_flight_repeats <= outcome.delivery_kills, outcome

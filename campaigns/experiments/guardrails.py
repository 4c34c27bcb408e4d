"""Guardrail metrics: rates that a variant must not make worse (unsubscribes, complaints).

:func:`guardrail_counts` is the one place that counts them: per arm, the exposed units with at
least one such event inside the attribution window after exposure. Today the events are tracked
rows (``campaign track unsubscribes|complaints FILE``, stored as ``conversion`` rows of kind
``unsubscribe`` or ``complaint``); the engagement endpoint's events can feed the same function.
"""

from __future__ import annotations

from sqlalchemy import Engine, text

from campaigns.experiments.attribution import window_end
from campaigns.experiments.spec import ExperimentSpec

#: Each guardrail metric and the kind of tracked event it counts.
EVENT_KINDS = {"unsubscribe_rate": "unsubscribe", "complaint_rate": "complaint"}

METRIC_LABELS = {"unsubscribe_rate": "unsubscribe rate", "complaint_rate": "complaint rate"}


def guardrail_counts(engine: Engine, spec: ExperimentSpec) -> dict[str, dict[str, int]]:
    """For each of ``spec``'s guardrails, the units per arm with an event in their window."""
    counts: dict[str, dict[str, int]] = {}
    if not spec.guardrails:
        return counts
    sql = (
        "SELECT e.variant, COUNT(DISTINCT e.id) FROM exposure e JOIN ("
        "SELECT customer_id, kind, converted_at FROM conversion UNION ALL "
        "SELECT customer_id, kind, occurred_at AS converted_at FROM engagement_event "
        "WHERE customer_id IS NOT NULL) ev "
        "ON ev.customer_id = e.customer_id WHERE e.experiment = :e AND ev.kind = :k "
        f"AND ev.converted_at >= e.exposed_at AND {window_end(engine)} GROUP BY e.variant"
    )
    with engine.connect() as connection:
        for metric in spec.guardrails:
            rows = connection.execute(
                text(sql),
                {"e": spec.name, "k": EVENT_KINDS[metric], "window": spec.window.total_seconds()},
            ).all()
            counts[metric] = {str(variant): int(n) for variant, n in rows}
    return counts

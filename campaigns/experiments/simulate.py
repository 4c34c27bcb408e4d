"""The demo shop answers: customers respond to an experiment's messages by the known model.

Only for the demo source, whose customers carry their ``latent_group``: each exposed customer
converts with :func:`store.sources.demo.response_probability` for their arm (the model knows the
variants ``control``, ``discount`` and ``story``; other names have no lift; the holdout gets the
no-message rate), at a uniform time inside the attribution window, as one purchase of a random
product in the transaction log. So ``campaign report`` can be checked against the truth.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import Engine, text

from campaigns.errors import DataError
from campaigns.experiments.spec import HOLDOUT, ExperimentSpec
from store.bulk import insert_frame, read_frame
from store.features import forget_features
from store.sources.demo import simulate_conversions


def _prefix(spec: ExperimentSpec) -> str:
    return f"SIM-{spec.name}-"


def simulate_responses(engine: Engine, spec: ExperimentSpec, seed: int = 0) -> int:
    """Write the simulated purchases of ``spec``'s exposed customers; return how many.

    Simulating again replaces the previous simulation of this experiment.
    """
    exposures = read_frame(
        engine,
        "SELECT e.customer_id, e.variant, e.exposed_at, c.traits FROM exposure e "
        "JOIN customer c ON c.customer_id = e.customer_id WHERE e.experiment = :e "
        "ORDER BY e.customer_id",
        {"e": spec.name},
        datetime_columns=["exposed_at"],
        json_columns=["traits"],
    )
    groups = exposures["traits"].map(
        lambda t: t.get("latent_group") if isinstance(t, dict) else None
    )
    if exposures.empty or groups.isna().any():
        raise DataError(
            f"cannot simulate responses for {spec.name!r}: it needs exposed customers of the demo "
            "shop (with their latent groups); run the campaign on the demo source first"
        )
    products = read_frame(engine, "SELECT product_id, price FROM product ORDER BY product_id")
    rng = np.random.default_rng(seed)
    customers = pd.DataFrame({"latent_group": groups.to_numpy()})
    converted = np.zeros(len(exposures), dtype=bool)
    for arm in sorted(set(exposures["variant"])):
        rows = (exposures["variant"] == arm).to_numpy()
        variant = None if arm == HOLDOUT else arm
        converted[rows] = simulate_conversions(customers[rows], variant, rng)
    count = int(converted.sum())
    delay = rng.random(count) * spec.window.total_seconds()
    pick = rng.integers(0, len(products), count)
    purchases = pd.DataFrame(
        {
            "invoice": [f"{_prefix(spec)}{i + 1}" for i in range(count)],
            "customer_id": exposures["customer_id"].to_numpy()[converted],
            "product_id": products["product_id"].to_numpy()[pick],
            "quantity": 1,
            "unit_price": products["price"].to_numpy()[pick],
            "invoiced_at": exposures["exposed_at"].to_numpy()[converted]
            + pd.to_timedelta(delay.round(), unit="s").to_numpy(),
        }
    )
    with engine.begin() as connection:
        connection.execute(
            text("DELETE FROM transaction_line WHERE invoice LIKE :p"),
            {"p": _prefix(spec) + "%"},
        )
        # The store's feature aggregates cannot take deleted lines back: rebuilt next time.
        forget_features(connection)
    return insert_frame(engine, "transaction_line", purchases)

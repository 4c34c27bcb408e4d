"""The store on SQLite and PostgreSQL: schema version, bulk load round trip, the outbox."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from store import outbox
from store.frames import ShopData
from store.shop import count_customers, load_shop, save_shop, trait_columns

AT = datetime(2026, 3, 1, 10, 0)


def small_shop() -> ShopData:
    customers = pd.DataFrame(
        {
            "customer_id": ["007", "b"],
            "email": ["x@example.com", None],
            "first_name": ["Ana", "Bo"],
            "last_name": ["A", "B"],
            "country": ["GB", "DE"],
            "timezone": ["Europe/London", "Europe/Berlin"],
            "signup_at": pd.to_datetime(["2024-01-01 00:00", "2024-02-03 10:30"]),
            "age": [31.0, np.nan],
            "gender": ["female", "male"],
        }
    )
    products = pd.DataFrame(
        {"product_id": ["p1"], "name": ["Beans"], "category": ["Coffee"], "price": [9.5]}
    )
    transactions = pd.DataFrame(
        {
            "invoice": ["i1", "i1", "i2"],
            "customer_id": ["007", "007", "b"],
            "product_id": ["p1", "p1", "p1"],
            "quantity": [1, 2, 1],
            "unit_price": [9.5, 9.0, 9.5],
            "invoiced_at": pd.to_datetime(
                ["2024-03-01 12:00", "2024-03-01 12:00", "2024-04-02 00:00"]
            ),
        }
    )
    return ShopData(customers, products, transactions)


def test_shop_round_trips_with_traits_ids_and_times(fresh_store: Engine) -> None:
    shop = small_shop()
    save_shop(fresh_store, shop)
    back = load_shop(fresh_store)
    assert count_customers(fresh_store) == 2
    assert back.customers["customer_id"].tolist() == ["007", "b"]  # zero padding kept
    assert back.customers["signup_at"].tolist() == shop.customers["signup_at"].tolist()
    assert back.customers["age"].iloc[0] == 31.0
    assert pd.isna(back.customers["age"].iloc[1])
    assert pd.isna(back.customers["email"].iloc[1])
    assert back.transactions["invoiced_at"].tolist() == shop.transactions["invoiced_at"].tolist()
    assert back.transactions["quantity"].tolist() == [1, 2, 1]
    assert trait_columns(fresh_store) == ["age", "gender"]


def test_saving_again_replaces_the_shop(fresh_store: Engine) -> None:
    save_shop(fresh_store, small_shop())
    save_shop(fresh_store, small_shop())
    assert count_customers(fresh_store) == 2
    assert len(load_shop(fresh_store).transactions) == 3


def messages(run_id: int, keys: list[str], channel: str = "export") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "idempotency_key": keys,
            "run_id": run_id,
            "campaign": "winback",
            "window": "2026-03-01T10:00Z",
            "customer_id": [k.split(":")[1] for k in keys],
            "segment_id": 4,
            "variant": None,
            "channel": channel,
            "recipient": "x@example.com",
            "subject": "Hi",
            "body_text": "Hello",
            "body_html": None,
            "created_at": AT,
        }
    )


def test_enqueue_is_idempotent_by_key(fresh_store: Engine) -> None:
    keys = [f"winback:c{i}:2026-03-01T10:00Z" for i in range(5)]
    assert outbox.enqueue(fresh_store, messages(1, keys[:3])) == 3
    # A second run plans overlapping messages: only the two unseen keys are added.
    assert outbox.enqueue(fresh_store, messages(2, keys)) == 2
    assert outbox.counts_by_status(fresh_store) == {"queued": 5}
    assert outbox.existing_keys(fresh_store, "winback", ["2026-03-01T10:00Z"]) == set(keys)


def test_a_run_writes_chunks_in_one_transaction(fresh_store: Engine) -> None:
    """A run streams its rendered chunks into one transaction (issue 14): keys already stored
    are skipped in every chunk (PostgreSQL's COPY falls back to a staging table each time), and
    a run that stops midway leaves nothing of it."""
    keys = [f"winback:c{i}:2026-03-01T10:00Z" for i in range(9)]
    outbox.enqueue(fresh_store, messages(1, [keys[1], keys[7]]))
    with outbox.writing(fresh_store) as writer:
        assert writer.write(messages(2, keys[:3])) == 2
        assert writer.write(messages(2, keys[3:6])) == 3
        assert writer.write(messages(2, keys[6:])) == 2
    assert outbox.counts_by_status(fresh_store) == {"queued": 9}
    more = [f"winback:d{i}:2026-03-01T10:00Z" for i in range(4)]
    written: list[int] = []

    def stopped_run() -> None:
        with outbox.writing(fresh_store) as writer:
            written.append(writer.write(messages(3, more[:2])))
            written.append(writer.write(messages(3, [keys[0], *more[2:]])))
            raise RuntimeError("rendering stopped")

    with pytest.raises(RuntimeError, match="rendering stopped"):
        stopped_run()
    assert written == [2, 2]
    assert outbox.counts_by_status(fresh_store) == {"queued": 9}


def test_claim_lease_and_reclaim_after_expiry(fresh_store: Engine) -> None:
    keys = [f"winback:c{i}:w" for i in range(4)]
    outbox.enqueue(fresh_store, messages(1, keys))
    first = outbox.claim(fresh_store, "export", "worker-a", AT, limit=3)
    assert len(first) == 3
    # Another worker gets only what is left while the lease holds.
    second = outbox.claim(fresh_store, "export", "worker-b", AT, limit=10)
    assert second["idempotency_key"].tolist() == [keys[3]]
    outbox.mark_sent(fresh_store, second["id"].astype(int).tolist(), ["file.csv"], AT)
    # worker-a dies; after its lease expires its messages are claimed again, not lost.
    assert outbox.claim(fresh_store, "export", "worker-c", AT + timedelta(minutes=1)).empty
    again = outbox.claim(fresh_store, "export", "worker-c", AT + timedelta(minutes=6))
    assert sorted(again["idempotency_key"]) == sorted(first["idempotency_key"])
    assert again["attempts"].astype(int).tolist() == [2, 2, 2]
    outbox.mark_failed(fresh_store, again["id"].astype(int).tolist()[:1], ["boom"])
    assert outbox.counts_by_status(fresh_store) == {"sent": 1, "sending": 2, "failed": 1}

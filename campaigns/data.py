"""The data stage of a run: fill the store from the configured source on first use."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Engine

from campaigns.config.schema import Config, DemoSource
from campaigns.progress import Progress, quiet
from store.engine import get_meta, opened_store
from store.frames import ShopData
from store.locks import run_lock
from store.shop import count_customers, load_shop, save_shop
from store.sources.demo import generate_demo_shop
from store.sources.files import load_files


def read_source(config: Config, today: datetime) -> ShopData:
    """Read the configured source: generate the demo shop, or load and clean the files.

    The demo shop's history ends at ``source.end`` if the config sets it, else at ``today`` (the
    time of the run that first fills the store, to the minute): a run at a given ``--at`` on a
    fresh workspace always sees the same shop.
    """
    source = config.source
    if isinstance(source, DemoSource):
        end = source.end or today.replace(second=0, microsecond=0)
        return generate_demo_shop(source.customers, source.seed, end)
    return load_files(source, config.root)


def load_data(
    engine: Engine, config: Config, today: datetime, progress: Progress | None = None
) -> ShopData:
    """Replace the store's customers, products and transactions with a fresh read of the source."""
    report = progress or quiet
    report("Reading source", 0, None)
    shop = read_source(config, today)
    report("Saving to store", 0, None)
    # With what the load set aside, by reason, for ``campaign data profile``.
    facts = {"loaded_at": today.isoformat(), "quarantined": json.dumps(shop.quarantined)}
    save_shop(engine, shop, facts=facts)
    return shop


def ensure_data(
    engine: Engine,
    config: Config,
    at: datetime,
    progress: Progress | None = None,
    lazy: bool = False,
) -> tuple[ShopData, bool]:
    """The shop in the store, loading it from the source first when the store is empty.

    ``at`` is the time of the run: the demo shop's history ends there (see :func:`read_source`).
    ``lazy``: read the transaction log from the store only if ``transactions`` is used (a run
    whose features come from the store's aggregates never reads it).

    :return: the data, and whether it was loaded just now
    """
    if count_customers(engine) > 0:
        (progress or quiet)("Reading store", 0, None)
        return load_shop(engine, lazy=lazy), False
    return load_data(engine, config, at, progress), True


def loaded_at(engine: Engine) -> str | None:
    """When the store was last filled from its source."""
    return get_meta(engine, "loaded_at")


def reload_source(config: Config, now: datetime) -> ShopData:
    """``campaign load``: re-read the configured source into the store.

    It holds the run lock: a load and a run never work on the store at once.
    """
    with opened_store(config.store.url, config.root) as engine, run_lock(engine):
        return load_data(engine, config, now)


def replace_with_demo(config: Config, customers: int, seed: int, end: datetime) -> ShopData:
    """``campaign demo``: fill the store with a demo shop of the given size."""
    shop = generate_demo_shop(customers, seed, end)
    with opened_store(config.store.url, config.root) as engine, run_lock(engine):
        save_shop(engine, shop, facts={"loaded_at": end.isoformat(), "quarantined": "{}"})
    return shop

"""The data stage of a run: fill the store from the configured source on first use."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine

from campaigns.config.schema import Config, DemoSource
from store.engine import get_meta, set_meta
from store.frames import ShopData
from store.shop import count_customers, load_shop, save_shop
from store.sources.demo import generate_demo_shop
from store.sources.files import load_files


def read_source(config: Config, today: datetime) -> ShopData:
    """Read the configured source: generate the demo shop, or load and clean the files."""
    source = config.source
    if isinstance(source, DemoSource):
        end = source.end or today.replace(hour=0, minute=0, second=0, microsecond=0)
        return generate_demo_shop(source.customers, source.seed, end)
    return load_files(source, config.root)


def load_data(engine: Engine, config: Config, today: datetime) -> ShopData:
    """Replace the store's customers, products and transactions with a fresh read of the source."""
    shop = read_source(config, today)
    save_shop(engine, shop)
    set_meta(engine, "loaded_at", today.isoformat())
    return shop


def ensure_data(engine: Engine, config: Config) -> tuple[ShopData, bool]:
    """The shop in the store, loading it from the source first when the store is empty.

    :return: the data, and whether it was loaded just now
    """
    if count_customers(engine) > 0:
        return load_shop(engine), False
    today = datetime.now(UTC).replace(tzinfo=None)
    return load_data(engine, config, today), True


def loaded_at(engine: Engine) -> str | None:
    """When the store was last filled from its source."""
    return get_meta(engine, "loaded_at")

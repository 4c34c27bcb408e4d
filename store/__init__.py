"""The store: SQLModel tables, engines from a URL, bulk load and query helpers."""

from store.engine import connect, open_store
from store.frames import ShopData
from store.shop import load_shop, save_shop

__all__ = ["ShopData", "connect", "load_shop", "open_store", "save_shop"]

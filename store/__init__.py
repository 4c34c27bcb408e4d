"""The store: SQLModel tables, engines from a URL, bulk load and query helpers.

The names below are imported on first use, so that ``store.readonly`` (``campaign status``) does
not pay for SQLAlchemy and pandas.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from store.engine import connect, open_store
    from store.frames import ShopData
    from store.shop import load_shop, save_shop

__all__ = ["ShopData", "connect", "load_shop", "open_store", "save_shop"]

_WHERE = {
    "connect": "store.engine",
    "open_store": "store.engine",
    "ShopData": "store.frames",
    "load_shop": "store.shop",
    "save_shop": "store.shop",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'store' has no attribute {name!r}")

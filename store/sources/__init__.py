"""Data sources: each one produces a :class:`store.frames.ShopData`."""

from store.sources.demo import generate_demo_shop

__all__ = ["generate_demo_shop"]

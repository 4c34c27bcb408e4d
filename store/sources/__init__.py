"""Data sources: each one produces a :class:`store.frames.ShopData`.

``store.sources.spec`` (what ``[source]`` says) imports nothing heavy; the readers
(``demo``, ``files``) import pandas, so nothing here imports them eagerly.
"""

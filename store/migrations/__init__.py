"""The store's schema history as Alembic migrations in ``versions/``, run by :mod:`store.migrate`.

Each revision module states ``online_safe``: True when it only adds (tables, nullable columns,
indexes), so that any command may apply it when it opens the store; False when it rewrites or
removes data, which waits for ``campaign migrate``.
"""

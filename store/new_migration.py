"""Write a new migration from the difference between ``store/tables.py`` and the newest revision.

    python -m store.new_migration "message gains render_failed"

It builds a scratch SQLite store at the newest revision, compares it with the tables, and writes
``store/migrations/versions/vNNNN_<slug>.py`` (numbered after the newest). Read what it wrote:
autogeneration misses renames, data moves and triggers, and it marks the revision online-safe, which
is only true when it adds (tables, nullable columns, indexes).
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

from alembic import command

from store.engine import connect
from store.migrate import _config, head, upgrade


def new_migration(message: str) -> Path:
    """Autogenerate the next revision; return its file."""
    number = int(head()) + 1
    slug = re.sub(r"[^a-z0-9]+", "_", message.lower()).strip("_")[:40].rstrip("_")
    with tempfile.TemporaryDirectory() as folder:
        engine = connect(f"sqlite:///{folder}/scratch.db")
        upgrade(engine)
        config = _config()
        config.set_main_option("file_template", f"v%%(rev)s_{slug}")
        with engine.connect() as connection:
            config.attributes["connection"] = connection
            script = command.revision(
                config, message=message, autogenerate=True, rev_id=f"{number:04d}"
            )
        engine.dispose()
    assert script is not None
    assert not isinstance(script, list)
    path = Path(script.path)
    # Alembic renders SQLModel's string type by its module path; import it by name instead.
    source = path.read_text(encoding="utf-8")
    source = source.replace("sqlmodel.sql.sqltypes.AutoString()", "AutoString()")
    source = source.replace("import sqlmodel\n", "from sqlmodel.sql.sqltypes import AutoString\n")
    lines = [line for line in source.splitlines() if "### " not in line]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":
    print(new_migration(" ".join(sys.argv[1:]) or "unnamed change"))

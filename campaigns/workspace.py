"""``campaign init``: a new workspace, ready to run on the demo shop."""

from __future__ import annotations

import shutil
from pathlib import Path

from campaigns.errors import CampaignError
from templates import BUILTIN_FOLDER

#: The example config that ``campaign init`` writes (the repository's own config.toml is a copy).
EXAMPLE_CONFIG = BUILTIN_FOLDER / "workspace" / "config.toml"


def init_workspace(directory: Path) -> list[Path]:
    """Write ``config.toml`` and ``templates/*.j2`` into ``directory``; never overwrite.

    :return: the files written
    """
    target_config = directory / "config.toml"
    if target_config.exists():
        raise CampaignError(f"{target_config} already exists; choose an empty folder")
    directory.mkdir(parents=True, exist_ok=True)
    written = [target_config]
    shutil.copyfile(EXAMPLE_CONFIG, target_config)
    templates = directory / "templates"
    templates.mkdir(exist_ok=True)
    for source in sorted(BUILTIN_FOLDER.glob("*.j2")):
        destination = templates / source.name
        if not destination.exists():
            shutil.copyfile(source, destination)
            written.append(destination)
    return written

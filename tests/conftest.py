"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def shared_data() -> Path:
    """The real public datasets in ``../shared/data`` beside the repository.

    Tests using it skip when the folder is absent, unless ``CAMPAIGN_REQUIRE_SHARED_DATA=1``, in
    which case they fail.
    """
    folder = Path(__file__).resolve().parents[2] / "shared" / "data"
    if not folder.is_dir():
        if os.environ.get("CAMPAIGN_REQUIRE_SHARED_DATA") == "1":
            pytest.fail(f"shared datasets not found at {folder} (CAMPAIGN_REQUIRE_SHARED_DATA=1)")
        pytest.skip(f"shared datasets not found at {folder}; set them up to run this test")
    return folder

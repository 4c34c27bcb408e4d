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


# --- stores: every store test runs on SQLite and on a real PostgreSQL ---------------------------

from collections.abc import Iterator  # noqa: E402

from sqlalchemy import Engine  # noqa: E402

from store.engine import connect, open_store  # noqa: E402
from store.migrate import drop_everything  # noqa: E402
from tests.pg_server import postgres_server  # noqa: E402


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL database for this session (skips, with the reason, when none exists)."""
    with postgres_server() as url:
        if url is None:
            if os.environ.get("CI"):
                pytest.fail(
                    "no PostgreSQL: install Debian's postgresql or set CAMPAIGN_TEST_POSTGRES_URL"
                )
            pytest.skip(
                "no PostgreSQL binaries; install postgresql or set CAMPAIGN_TEST_POSTGRES_URL"
            )
        yield url


def _reset_postgres(url: str) -> None:
    engine = connect(url)
    drop_everything(engine)
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty store: a SQLite file, then a real PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    url: str = request.getfixturevalue("postgres_url")
    _reset_postgres(url)
    yield url
    _reset_postgres(url)


@pytest.fixture
def fresh_store(store_url: str) -> Iterator[Engine]:
    """An opened, empty store on each backend; its connections are closed afterwards."""
    engine = open_store(store_url)
    yield engine
    engine.dispose()


# --- a real browser for the HTML reports -----------------------------------------------------

from tests.browser import Browser, chromium  # noqa: E402


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless Chromium (Debian's); skips with the reason where it is not installed, and fails
    instead in CI, which installs it."""
    executable = chromium()
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("no chromium: .ci/run installs Debian's chromium")
        pytest.skip("no chromium; install Debian's chromium (apt-get install chromium)")
    opened = Browser(executable)
    yield opened
    opened.close()

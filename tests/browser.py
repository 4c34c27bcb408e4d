"""Open an HTML file or URL in a real headless Chromium and see what a person would see.

Debian's ``chromium`` (installed by ``.ci/run`` where missing), driven through Playwright's
Python package; no browser is ever downloaded. A test asks for the ``browser`` fixture (from
``tests/conftest.py``) and then::

    shown = browser.open(report_path, screenshot=tmp_path / "report.png")
    assert shown.ok, shown.problems()

or, to click through a page, ``with browser.page(url) as page: page.click("text=Unsubscribe")``
(a Playwright ``Page``), where console errors, page errors and failed requests are collected in
``browser.last`` as the page runs.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Flags that work in a container without a display, a GPU or network access.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium() -> str | None:
    """The Chromium executable on this machine, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Shown:
    """What a page looked like once loaded."""

    url: str
    title: str = ""
    #: The visible text of the body.
    text: str = ""
    #: Images in the page, and the ``src`` (cut to 80 characters) of those that did not load.
    images: int = 0
    broken_images: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    screenshot: Path | None = None

    @property
    def ok(self) -> bool:
        """Loaded with no console or page error, no failed request and no broken image."""
        return not self.problems()

    def problems(self) -> list[str]:
        """Each thing that went wrong, as a line."""
        return [
            *(f"console error: {e}" for e in self.console_errors),
            *(f"page error: {e}" for e in self.page_errors),
            *(f"request failed: {r}" for r in self.failed_requests),
            *(f"broken image: {src}" for src in self.broken_images),
        ]


class Browser:
    """One headless Chromium for a test session; :meth:`open` a page per call."""

    def __init__(self, executable: str) -> None:
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        self._browser = self._playwright.chromium.launch(
            executable_path=executable, args=list(FLAGS[1:]), headless=True
        )
        self.last: Shown | None = None

    def close(self) -> None:
        self._browser.close()
        self._playwright.stop()

    @contextmanager
    def page(self, target: Path | str, width: int = 1280) -> Iterator[Any]:
        """A loaded Playwright ``Page`` on a file or URL; problems collect in :attr:`last`."""
        url = target.resolve().as_uri() if isinstance(target, Path) else target
        shown = Shown(url)
        page = self._browser.new_page(viewport={"width": width, "height": 900})
        page.on("console", lambda m: m.type == "error" and shown.console_errors.append(m.text))
        page.on("pageerror", lambda e: shown.page_errors.append(str(e)))
        page.on("requestfailed", lambda r: shown.failed_requests.append(r.url[:80]))
        self.last = shown
        try:
            page.goto(url, wait_until="load")
            yield page
        finally:
            page.close()

    def open(self, target: Path | str, screenshot: Path | None = None) -> Shown:
        """Load a page, take a full-page screenshot (to ``screenshot`` if given) and report."""
        with self.page(target) as page:
            shown = self.last
            assert shown is not None
            shown.title = page.title()
            shown.text = page.inner_text("body")
            images = page.evaluate(
                "() => Array.from(document.images).map(i => [i.complete && i.naturalWidth > 0,"
                " i.getAttribute('src') || ''])"
            )
            shown.images = len(images)
            shown.broken_images = [str(src)[:80] for loaded, src in images if not loaded]
            if screenshot is not None:
                page.screenshot(path=str(screenshot), full_page=True)
                shown.screenshot = screenshot
        return shown

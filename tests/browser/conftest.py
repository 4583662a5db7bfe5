"""Browser tests: the app served for real on 127.0.0.1, driven by Debian's Chromium.

- `live_server`: one migrated scratch database for the session (PostgreSQL beside the test
  database, or a temporary SQLite file), an app on it served from a thread on a free port
  (tests/live.py), `base_url`, and `data()` to build committed rows through the factories.
- `browser`: headless Chromium from `CRM_CHROMIUM` (default /usr/bin/chromium), launched
  once through playwright with `executable_path` (playwright cannot download its own here).
- `browser_page`: a fresh context and page per test, at laptop size; whatever pages the
  test opened are screenshotted when it ends, pass or fail.
- `screenshot(name, sizes=...)`: a full-page PNG under test-artefacts/screenshots/, named
  after the test, at the current size or at each of "phone" (390x844), "tablet"
  (768x1024) and "laptop" (1366x768).

Without playwright or Chromium these tests skip with the reason; under `CI=true` the same
absence is a failure, since CI always runs them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from flask import Flask

from crm.extensions import db
from tests.browser.harness import CHROMIUM, SIZES, require_browser
from tests.conftest import ON_POSTGRES
from tests.factories import Factory
from tests.live import ROOT, live_app, scratch_database, serving

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

SCREENSHOTS = ROOT / "test-artefacts" / "screenshots"
TIMEOUT_MS = 5_000  # a page of this app answers in milliseconds; fail fast, not after 30 s


@pytest.fixture(autouse=True)
def _browser_or_skip() -> None:
    """Every test here needs the browser: decided before a server or a database is made."""
    require_browser()


@dataclass(frozen=True)
class LiveServer:
    app: Flask
    base_url: str

    def url(self, path: str) -> str:
        return self.base_url + path

    @contextmanager
    def data(self) -> Iterator[Factory]:
        """Build rows through the factories and operations; they commit, so the served app
        sees them. Read what you need (ids, tokens) inside the block: rows are detached
        after it."""
        with self.app.app_context():
            try:
                yield Factory(db.session)
                db.session.commit()
            finally:
                db.session.remove()


@contextmanager
def _live_database(tmp: Path) -> Iterator[str]:
    if ON_POSTGRES:
        with scratch_database() as url:
            yield url
    else:
        yield "sqlite:///" + str(tmp / "live.sqlite3")


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    require_browser()
    tmp = tmp_path_factory.mktemp("live")
    with _live_database(tmp) as url:
        # every page of the session comes from 127.0.0.1: the patient limit is per address
        app = live_app(url, tmp, PORTAL_RATE_PER_MINUTE=100_000)
        try:
            with serving(app) as server:
                yield LiveServer(app, f"http://127.0.0.1:{server.port}")
        finally:
            with app.app_context():
                db.engine.dispose()  # before the scratch database is dropped


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def _settled(page: Page) -> None:
    """Two animation frames after a resize, so the new layout is painted before the shot."""
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def _file_stem(node_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", node_name).strip("-")


Screenshot = Callable[..., list[Path]]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()
_SHOTS = pytest.StashKey[int]()


@pytest.fixture
def browser_page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page in a fresh context. When the test ends, each page it opened is saved as
    `<test>--end.png` if the test failed or saved no screenshot of its own."""
    context = browser.new_context(viewport=SIZES["laptop"])
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    request.node.stash[_SHOTS] = 0
    try:
        yield page
    finally:
        node = request.node
        if node.stash.get(_FAILED, True) or not node.stash[_SHOTS]:
            _save_end(context.pages, _file_stem(node.name))
        context.close()


def _save_end(pages: list[Page], stem: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for n, opened in enumerate(pages):
        if opened.url != "about:blank":
            suffix = "" if n == 0 else f"--page{n + 1}"
            opened.screenshot(path=SCREENSHOTS / f"{stem}--end{suffix}.png", full_page=True)


@pytest.fixture
def screenshot(browser_page: Page, request: pytest.FixtureRequest) -> Screenshot:
    """`screenshot("plan")` saves the page as it is now; `screenshot("plan", sizes=("phone",
    "laptop"))` saves it at each size and puts the viewport back. Returns the paths."""
    stem = _file_stem(request.node.name)

    def take(name: str, sizes: tuple[str, ...] = (), page: Page | None = None) -> list[Path]:
        page = page or browser_page
        request.node.stash[_SHOTS] += 1
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        if not sizes:
            path = SCREENSHOTS / f"{stem}--{name}.png"
            page.screenshot(path=path, full_page=True)
            return [path]
        before = page.viewport_size
        paths = []
        for size in sizes:
            page.set_viewport_size(SIZES[size])
            _settled(page)
            path = SCREENSHOTS / f"{stem}--{name}--{size}.png"
            page.screenshot(path=path, full_page=True)
            paths.append(path)
        if before:
            page.set_viewport_size(before)
        return paths

    return take

"""What browser tests need besides fixtures, importable without playwright installed, so a
machine without it collects them and skips (or, under CI, fails) with the reason."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

CHROMIUM = os.environ.get("CRM_CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() in {"true", "1", "yes"}
SIZES = {
    "phone": {"width": 390, "height": 844},
    "tablet": {"width": 768, "height": 1024},
    "laptop": {"width": 1366, "height": 768},
}


def missing_browser() -> str | None:
    """Why browser tests cannot run here, or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (make install brings it with the dev extras)"
    if not os.access(CHROMIUM, os.X_OK):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set CRM_CHROMIUM)"
    return None


def require_browser() -> None:
    """Skip the test when the browser is missing; fail it under CI, which always runs them."""
    reason = missing_browser()
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"CI runs the browser tests: {reason}", pytrace=False)
    pytest.skip(reason)


def expect(target: Page | Locator) -> Any:
    """playwright's `expect`, imported when a test runs rather than when it is collected."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def scrolls_sideways(page: Page) -> bool:
    """Whether the page is wider than its viewport (a phone user would scroll sideways)."""
    return page.evaluate(
        "() => document.documentElement.scrollWidth > document.documentElement.clientWidth"
    )

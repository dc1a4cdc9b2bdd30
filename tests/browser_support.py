"""Headless Chromium for the admin's browser tests: Debian's package, driven by Playwright.

No browser is downloaded: Playwright drives /usr/bin/chromium. Without it the tests skip
locally, but fail in CI, where a silent skip would hide that nothing was tested. The `browser`
and `page` fixtures (tests/conftest.py) are built from this; modules using them carry the
`browser` marker, so `-m browser` / `-m "not browser"` select them.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium() -> None:
    """Skip (locally) or fail (with CI set) when the browser or Playwright is missing."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install -e '.[test]')")
    if not missing:
        return
    reason = "browser tests need " + " and ".join(missing)
    if os.environ.get("CI"):
        pytest.fail(reason + "; CI must run them, not skip them")
    pytest.skip(reason)


@contextmanager
def async_unsafe_allowed():
    """Playwright's sync API keeps an event loop running in this thread, and Django refuses
    database calls under a running loop; the calls are still synchronous, so allow them."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@contextmanager
def chromium():
    """A headless Chromium browser, stopped with its Playwright driver on exit."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with async_unsafe_allowed(), sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


def csp_violations(page) -> list[str]:
    """The Content-Security-Policy refusals Chromium reported on the page's console."""
    return [text for text in page.console_errors if "Content Security Policy" in text]


def sign_in(page, username: str, next_path: str, password: str | None = None) -> None:
    """Through the admin's login form, landing on `next_path`."""
    from tests.security.staff import PASSWORD

    page.goto(f"/admin/login/?next={next_path}")
    page.fill("#id_username", username)
    page.fill("#id_password", password or PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(lambda url: urlsplit(url).path == next_path)

"""Playwright driving Debian's chromium against pytest-django's live server.

Skipped with a clear message when no chromium exists and CI is not set; under CI a missing
browser fails the run instead.
"""

import os
import re
from pathlib import Path

import pytest

# Re-exported for test modules elsewhere that import their browser fixtures from here.
from tests.conftest import django_db_setup  # noqa: F401

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
# (fixtures, assertions on the database) are still synchronous and safe here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.getenv("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PASSWORD = "correct horse battery"


_shared: dict[str, object] = {}


def _shared_browser():
    # One Playwright for the whole run: other test modules import these fixtures, which makes
    # pytest hold a second session fixture, and a second sync Playwright cannot start while the
    # first one's event loop lives in this thread.
    if "browser" not in _shared:
        from playwright.sync_api import sync_playwright

        playwright = sync_playwright().start()
        _shared["playwright"] = playwright
        _shared["browser"] = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
    return _shared["browser"]


def pytest_sessionfinish(session, exitstatus):
    browser = _shared.pop("browser", None)
    if browser is not None:
        browser.close()
        _shared.pop("playwright").stop()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        message = f"no chromium at {CHROMIUM}: browser tests need Debian's chromium package"
        if os.getenv("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return _shared_browser()


@pytest.fixture
def page(browser, live_server, request):
    context = browser.new_context(
        base_url=live_server.url,
        locale="en-US",
        viewport={"width": 1280, "height": 900},
        accept_downloads=True,
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^\w.-]+", "_", request.node.name)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    context.close()


@pytest.fixture
def sign_in(page):
    def sign_in_as(username: str):
        page.goto("/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit].btn-primary")
        page.wait_for_selector('[data-testid="username"]')
        return page

    return sign_in_as


@pytest.fixture
def ru_page(browser, live_server):
    """A desktop page of the live server in a Russian-speaking browser."""
    context = browser.new_context(
        base_url=live_server.url, locale="ru-RU", viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()

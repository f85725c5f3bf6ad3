"""Keyboard-first search and the 390 px phone width, in a real chromium (issue 15)."""

import pytest

from tests.browser.conftest import PASSWORD, browser  # noqa: F401
from tests.factories import CustomerFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def _page(browser, live_server, width):  # noqa: F811
    context = browser.new_context(
        base_url=live_server.url, locale="ru-RU", viewport={"width": width, "height": 800}
    )
    context.set_default_timeout(15_000)
    return context, context.new_page()


def _sign_in(page, username):
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit].btn-primary")
    page.wait_for_selector('[data-testid="username"]', state="attached")


def test_slash_focuses_search_enter_opens_the_single_match_arrows_move(
    browser,  # noqa: F811
    live_server,
    manager_a,
    store_a,
):
    petr = CustomerFactory(surname="Егоров", first_name="Пётр", home_store=store_a)
    CustomerFactory(surname="Егорова", first_name="Анна", home_store=store_a)
    context, page = _page(browser, live_server, 1280)
    _sign_in(page, "bob")
    assert page.evaluate("document.activeElement.dataset.testid") == "today-search"
    page.goto("/customers/leads/")
    page.keyboard.press("/")
    page.wait_for_url("**/customers/")
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "search"
    page.keyboard.type("Егоров")
    page.wait_for_timeout(800)  # the box searches 250 ms after typing stops
    page.wait_for_load_state("networkidle")
    page.wait_for_selector('[data-testid="customer-row"] >> nth=1')
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    second = page.evaluate("document.activeElement.getAttribute('href')")
    page.keyboard.press("ArrowUp")
    first = page.evaluate("document.activeElement.getAttribute('href')")
    assert first != second and first.startswith("/customers/")
    page.fill("#search", "Егоров Петр")
    page.keyboard.press("End")  # the box searches on keyup
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=customer-row]').length === 1"
    )
    page.focus("#search")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/customers/{petr.pk}/")
    context.close()


def test_analytics_fits_a_390px_phone(browser, live_server, admin_user):  # noqa: F811
    context, page = _page(browser, live_server, 390)
    _sign_in(page, "alice")
    page.goto("/analytics/")
    page.wait_for_load_state("networkidle")
    wide = page.evaluate(
        """() => Array.from(document.querySelectorAll('body *'))
            .filter(e => e.getBoundingClientRect().right > 391 && !e.closest('.table-responsive'))
            .slice(0, 5).map(e => e.tagName + '.' + e.className)"""
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, wide
    context.close()


@pytest.mark.parametrize("width", [992, 1280])
def test_an_admins_menu_in_russian_fits_a_laptop_screen(
    browser,  # noqa: F811
    live_server,
    admin_user,
    width,
):
    """An admin sees every section; in Russian they wrap onto a second line of the menu
    rather than pushing the page wider than the screen."""
    context, page = _page(browser, live_server, width)
    _sign_in(page, "alice")
    for path in ("/", "/customers/imports/"):
        page.goto(path)
        page.wait_for_load_state("networkidle")
        assert page.evaluate("document.documentElement.scrollWidth") <= width, path
        # No word of a menu item broken across lines ("Новая / карточка").
        heights = page.evaluate(
            "() => Array.from(document.querySelectorAll('.navbar .nav-link'))"
            ".map(e => e.getBoundingClientRect().height)"
        )
        assert len(heights) >= 8 and max(heights) < 1.8 * min(heights), heights
    context.close()

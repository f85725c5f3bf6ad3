"""The dashboard in a real chromium, for an admin and for a store manager (screenshots saved)."""

import re

import pytest

from tests.analytics.test_dashboard import chain  # noqa: F401 - the shared purchase history
from tests.browser.conftest import (  # noqa: F401 - the Playwright fixtures
    PASSWORD,
    SCREENSHOTS,
    browser,
    page,
    ru_page,
    sign_in,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def open_dashboard(page, chain):  # noqa: F811
    query = "&".join(f"{k}={v.isoformat()}" for k, v in chain["query"].items())
    page.goto(f"/analytics/?{query}")
    page.wait_for_selector("body[data-charts-ready='1']")
    return page


def revenue(page) -> str:  # noqa: F811
    return page.locator("[data-kpi=revenue] td[data-value]").get_attribute("data-value")


def test_admin_dashboard_draws_every_chart_for_the_whole_chain(
    page,  # noqa: F811
    sign_in,  # noqa: F811
    admin_user,
    chain,  # noqa: F811
    store_a,
    store_b,
):
    sign_in("alice")
    open_dashboard(page, chain)
    assert revenue(page) == "4500.00"
    assert page.locator("[data-testid=stores] tbody tr").count() == 2
    for canvas in ("chart-classes", "chart-pareto", "chart-sales"):
        assert page.locator(f"#{canvas}").bounding_box()["height"] > 50
    assert page.locator("#rfm-grid td a").count() >= 1
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "analytics-dashboard-admin.png"), full_page=True)
    page.locator("[data-testid=classes] a[data-class=VIP]").click()
    page.wait_for_url("**/customers/?value_class=VIP")


def test_store_manager_dashboard_is_limited_to_their_store(
    page,  # noqa: F811
    sign_in,  # noqa: F811
    manager_a,
    chain,  # noqa: F811
    store_a,
):
    sign_in("bob")
    open_dashboard(page, chain)
    assert revenue(page) == "1500.00"
    rows = page.locator("[data-testid=stores] tbody tr")
    assert rows.count() == 1
    assert rows.first.get_attribute("data-store") == str(store_a.pk)


def test_months_and_shares_read_in_russian(
    ru_page,  # noqa: F811
    admin_user,
    chain,  # noqa: F811
):
    ru_page.goto("/login/")
    ru_page.fill("#id_username", "alice")
    ru_page.fill("#id_password", PASSWORD)
    ru_page.click("button[type=submit].btn-primary")
    ru_page.wait_for_selector('[data-testid="username"]')
    open_dashboard(ru_page, chain)
    cohorts = ru_page.locator("#cohort-table tbody th").all_inner_texts()
    assert cohorts, "no cohort rows"
    # "нояб. 2026 г.", not "2026-11".
    assert all(re.search(r"[а-я]", c) and not re.search(r"\d{4}-\d{2}", c) for c in cohorts)
    shares = [s for s in ru_page.locator("#cohort-table tbody td").all_inner_texts() if s]
    assert not any("." in s for s in shares), shares

"""The points on the card in a real chromium: a manager reads them, an admin adjusts them."""

from decimal import Decimal

import pytest

from loyalty import services
from tests.browser.conftest import browser, page, sign_in  # noqa: F401 - Playwright fixtures
from tests.factories import CustomerFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def olga(store_a):
    person = CustomerFactory(
        surname="Смирнова", first_name="Ольга", home_store=store_a, card_number="7700042"
    )
    services.points_adjust(
        actor=None, customer=person, amount=Decimal("120.50"), reason="Перенос баланса"
    )
    return person


def test_manager_sees_the_balance_and_the_ledger_on_the_card(page, sign_in, manager_a, olga):  # noqa: F811
    sign_in("bob")
    page.goto(f"/customers/{olga.pk}/")

    page.wait_for_selector('[data-testid="points-ledger"]')
    assert page.inner_text('[data-testid="points-available"]') == "120.50"
    assert page.inner_text('[data-testid="points-tier"]') == "—"
    assert "Перенос баланса" in page.inner_text('[data-testid="points-ledger"]')
    assert page.locator('[data-testid="points-adjust"]').count() == 0


def test_admin_adjusts_points_with_a_reason_and_finds_it_in_the_audit_log(
    page,  # noqa: F811
    sign_in,  # noqa: F811
    admin_user,
    olga,
):
    sign_in("alice")
    page.goto(f"/customers/{olga.pk}/")
    page.wait_for_selector('[data-testid="points-adjust"]')

    page.fill("#id_amount", "-20.50")
    page.fill("#id_reason", "Ошибка кассира")
    page.click('[data-testid="points-adjust"] button[type=submit]')
    page.wait_for_function(
        # A function, not an expression: the page's CSP forbids the eval an expression needs.
        "() => document.querySelector('[data-testid=points-available]').innerText === '100.00'"
    )
    assert "Ошибка кассира" in page.inner_text('[data-testid="points-ledger"]')

    page.goto("/audit/?action=points_adjust")
    row = page.locator('[data-testid="audit-row"]').first
    assert "Adjusted bonus points" in row.inner_text()
    assert "Ошибка кассира" in row.inner_text() and "alice" in row.inner_text()

"""The till's pure calculation, the card's points panel and an admin's audited adjustments."""

import re
from decimal import Decimal

import pytest

from crm.models import AuditEvent
from loyalty.models import Account, Entry, EntryKind, ProductRule, ReceiptPoints

from .conftest import give_points, line

pytestmark = pytest.mark.django_db


def _cart(customer=None, wanted="0", lines=None):
    body = {
        "lines": lines or [line("DRESS", "2", "500.00"), line("TOBACCO", "1", "200.00")],
        "points_wanted": wanted,
    }
    if customer is not None:
        body["card"] = customer.card_number
    return body


def test_calculate_answers_line_by_line_and_writes_nothing(
    pos, customer, catalogue, django_assert_max_num_queries
):
    ProductRule.objects.create(category=catalogue["tobacco"].category, no_burn=True, no_earn=True)
    give_points(customer, "500")
    counts = (Entry.objects.count(), Account.objects.count(), ReceiptPoints.objects.count())

    with django_assert_max_num_queries(12):
        response = pos.post("/api/v1/loyalty/calculate/", _cart(customer, "400"), format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["available"], body["max_redeemable"], body["redeemed"]) == (
        "500.00",
        "300.00",
        "300.00",
    )
    assert body["to_pay"] == "900.00" and body["earned"] == "21.00" and body["tier"] == "Базовый"
    assert [(x["sku"], x["burnable"], x["redeemed"], x["earned"]) for x in body["lines"]] == [
        ("DRESS", True, "300.00", "21.00"),
        ("TOBACCO", False, "0.00", "0.00"),
    ]
    assert counts == (Entry.objects.count(), Account.objects.count(), ReceiptPoints.objects.count())


def test_calculate_for_an_anonymous_cart_earns_nothing(pos, catalogue):
    body = pos.post("/api/v1/loyalty/calculate/", _cart(), format="json").json()

    assert (body["customer_id"], body["earned"], body["redeemed"]) == (None, "0.00", "0.00")


def test_calculate_with_an_unknown_card_is_a_field_error(pos, catalogue):
    response = pos.post(
        "/api/v1/loyalty/calculate/", {"card": "nope", "lines": [line("DRESS")]}, format="json"
    )

    assert response.status_code == 400
    assert "card" in response.json()["error"]["fields"]


def test_calculate_needs_credentials(catalogue):
    from rest_framework.test import APIClient

    assert APIClient().post("/api/v1/loyalty/calculate/", _cart(), format="json").status_code == 401


def test_customer_api_returns_points(client, admin_user, customer):
    give_points(customer, "12.5")
    client.force_login(admin_user)

    body = client.get(f"/api/v1/customers/{customer.pk}/").json()

    assert body["points"] == {"tier": None, "available": "12.50", "pending": "0.00"}


def test_card_panel_shows_balance_pending_tier_expiry_and_ledger(client, manager_a, customer):
    give_points(customer, "75")
    client.force_login(manager_a)

    page = client.get(f"/loyalty/customers/{customer.pk}/").content.decode()

    assert 'data-testid="points-available">75.00<' in page
    assert 'data-testid="points-ledger"' in page and "Adjusted" in page
    assert 'data-testid="points-expiry">75.00 · ' in page
    assert 'data-testid="points-adjust"' not in page  # a manager may not adjust


def test_card_panel_and_dashboard_write_points_as_a_russian_office_reads_them(
    client, manager_a, admin_user, customer, settings
):
    give_points(customer, "1234.5")
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ru"
    client.force_login(manager_a)

    page = client.get(f"/loyalty/customers/{customer.pk}/").content.decode()

    # Grouped with a (narrow) no-break space and a decimal comma, never "1234.50".
    assert re.search(r'data-testid="points-available">1\s234,50<', page), page
    assert re.search(r"\+1\s234,50", page)
    assert "1234.5" not in page and "0.00" not in page
    client.force_login(admin_user)
    block = client.get("/analytics/loyalty/", HTTP_HX_REQUEST="true").content.decode()
    assert re.search(r"1\s234,50", block) and "1234,50" not in block


def test_manager_of_another_store_gets_404_for_the_panel(client, manager_b, customer):
    client.force_login(manager_b)

    assert client.get(f"/loyalty/customers/{customer.pk}/").status_code == 404
    assert (
        client.post(
            f"/loyalty/customers/{customer.pk}/adjust/", {"amount": "10", "reason": "x"}
        ).status_code
        == 404
    )


def test_manager_cannot_adjust_points(client, manager_a, customer):
    client.force_login(manager_a)

    response = client.post(
        f"/loyalty/customers/{customer.pk}/adjust/", {"amount": "10", "reason": "gift"}
    )

    assert response.status_code == 403
    assert not Entry.objects.exists()


def test_admin_adjusts_with_a_reason_and_it_is_audited(client, admin_user, customer):
    client.force_login(admin_user)

    response = client.post(
        f"/loyalty/customers/{customer.pk}/adjust/",
        {"amount": "25.50", "reason": "Goodwill: late delivery"},
    )

    assert response.status_code == 200
    entry = Entry.objects.get()
    assert (entry.kind, entry.available_delta, entry.actor) == (
        EntryKind.ADJUST,
        Decimal("25.50"),
        admin_user,
    )
    event = AuditEvent.objects.get(action="points_adjust")
    assert event.details["reason"] == "Goodwill: late delivery"
    assert event.object_id == str(customer.pk) and event.actor == admin_user


def test_adjustment_without_reason_or_below_zero_is_a_form_error(client, admin_user, customer):
    client.force_login(admin_user)

    no_reason = client.post(f"/loyalty/customers/{customer.pk}/adjust/", {"amount": "5"})
    too_much = client.post(
        f"/loyalty/customers/{customer.pk}/adjust/", {"amount": "-5", "reason": "oops"}
    )

    assert (no_reason.status_code, too_much.status_code) == (400, 400)
    assert 'data-error-for="amount"' in too_much.content.decode()
    assert not Entry.objects.exists()
    assert not AuditEvent.objects.filter(action="points_adjust").exists()


def test_card_page_loads_the_points_panel(client, manager_a, customer):
    client.force_login(manager_a)

    page = client.get(f"/customers/{customer.pk}/").content.decode()

    assert f'hx-get="/loyalty/customers/{customer.pk}/"' in page


def test_dashboard_block_shows_liability_months_rate_and_revenue_by_tier(
    client, admin_user, pos, customer, catalogue, django_assert_max_num_queries
):
    import datetime as dt

    from django.utils import timezone

    from .conftest import receipt

    give_points(customer, "100")
    sold = timezone.now() - dt.timedelta(days=1)
    pos.post(
        "/api/v1/receipts/",
        receipt("R1", [line("DRESS")], customer=customer, points="50", at=sold),
        format="json",
    )
    client.force_login(admin_user)

    with django_assert_max_num_queries(12):
        page = client.get("/analytics/loyalty/").content.decode()

    assert 'data-testid="points-liability">' in page
    assert "50.00" in page  # 100 given - 50 burned; 28.50 earned is still pending
    # 50 burned against 28.50 earned (the 100 were an adjustment, not earned).
    assert 'data-testid="redemption-rate">175%' in page
    assert "Базовый" in page


def test_dashboard_block_needs_the_dashboard_permission(client, associate_a):
    client.force_login(associate_a)

    assert client.get("/analytics/loyalty/").status_code == 403


def test_dashboard_page_loads_the_loyalty_block(client, admin_user):
    client.force_login(admin_user)

    page = client.get("/analytics/").content.decode()

    assert 'hx-get="/analytics/loyalty/"' in page


def test_points_panel_and_dashboard_block_speak_russian(client, admin_user, customer):
    give_points(customer, "10")
    client.force_login(admin_user)

    panel = client.get(
        f"/loyalty/customers/{customer.pk}/", HTTP_ACCEPT_LANGUAGE="ru"
    ).content.decode()
    block = client.get("/analytics/loyalty/", HTTP_ACCEPT_LANGUAGE="ru").content.decode()

    for russian in (
        "Бонусы",
        "Доступно",
        "Ближайшее сгорание",
        "Корректировка",
        "Изменить баллы",
        "Причина",
    ):
        assert russian in panel, russian
    for english in ("Available", "Pending", "Next expiry", "Adjusted", "Reason"):
        assert f">{english}<" not in panel, english
    assert "Обязательства по баллам" in block and "Доля списания" in block


def test_calculate_sees_a_new_rule_at_once(pos, customer, catalogue):
    give_points(customer, "500")
    before = pos.post("/api/v1/loyalty/calculate/", _cart(customer, "400"), format="json").json()

    ProductRule.objects.create(product=catalogue["dress"], no_burn=True)
    after = pos.post("/api/v1/loyalty/calculate/", _cart(customer, "400"), format="json").json()

    assert (before["max_redeemable"], after["max_redeemable"]) == ("360.00", "60.00")

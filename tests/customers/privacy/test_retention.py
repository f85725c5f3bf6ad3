"""Retention review: silent old leads and long-inactive customers, anonymised in bulk."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from crm.models import AuditEvent
from customers.models import Customer
from tests.factories import ContactFactory, CustomerFactory

from .conftest import buy


def aged(customer, *, years: float):
    Customer.objects.filter(pk=customer.pk).update(
        created_at=timezone.now() - dt.timedelta(days=int(365.25 * years))
    )
    return customer


def test_retention_lists_silent_leads_and_inactive_customers_then_anonymises_them(
    client, admin_user, store_a, product, django_assert_max_num_queries
):
    old_lead = aged(
        CustomerFactory(surname="Давнишняя", lifecycle_stage="lead", home_store=store_a), years=4
    )
    called_lead = aged(
        CustomerFactory(surname="Позвоненная", lifecycle_stage="lead", home_store=store_a), years=4
    )
    ContactFactory(customer=called_lead, at=timezone.now() - dt.timedelta(days=200))
    new_lead = aged(
        CustomerFactory(surname="Свежая", lifecycle_stage="lead", home_store=store_a), years=1
    )
    sleeper = aged(
        CustomerFactory(surname="Уснувший", lifecycle_stage="customer", home_store=store_a), years=7
    )
    buy(sleeper, store_a, product, "S-1", days_ago=6 * 365)
    regular = aged(
        CustomerFactory(surname="Постоянный", lifecycle_stage="customer", home_store=store_a),
        years=7,
    )
    buy(regular, store_a, product, "R-1", days_ago=6 * 365)
    buy(regular, store_a, product, "R-2", days_ago=30)

    client.force_login(admin_user)
    with django_assert_max_num_queries(12):
        page = client.get("/customers/retention/")
    assert page.status_code == 200
    html = page.content.decode()
    leads_part, inactive_part = html.split('data-testid="retention-inactive"')
    assert "Давнишняя" in leads_part
    assert "Позвоненная" not in html and "Свежая" not in html and "Постоянный" not in html
    assert "Уснувший" in inactive_part
    assert new_lead.pk  # listed nowhere

    refused = client.post("/customers/retention/", {"customers": [old_lead.pk, sleeper.pk]})
    assert refused.status_code == 400  # no confirmation
    response = client.post(
        "/customers/retention/", {"customers": [old_lead.pk, sleeper.pk], "confirm": "on"}
    )
    assert response.status_code == 302
    erased = Customer.objects.filter(erased_at__isnull=False)
    assert set(erased.values_list("pk", flat=True)) == {old_lead.pk, sleeper.pk}
    assert sleeper.receipts.count() == 1
    bases = set(
        AuditEvent.objects.filter(action="customer_erase").values_list("details__basis", flat=True)
    )
    assert bases == {"retention"}
    assert "Давнишняя" not in client.get("/customers/retention/").content.decode()


def test_retention_review_is_for_those_who_may_erase(client, manager_a, marketer):
    for user in (manager_a, marketer):
        client.force_login(user)
        assert client.get("/customers/retention/").status_code == 404
        assert client.post("/customers/retention/", {"confirm": "on"}).status_code == 404


def test_card_page_with_the_privacy_panel_keeps_its_query_budget(
    client, admin_user, store_a, document, django_assert_max_num_queries
):
    from customers.privacy.services import processing_consent_record

    customer = CustomerFactory(home_store=store_a)
    processing_consent_record(customer=customer, actor=admin_user, method="till_screen")
    client.force_login(admin_user)
    with django_assert_max_num_queries(30):
        assert client.get(customer.get_absolute_url()).status_code == 200


def test_personal_data_pages_speak_russian(client, admin_user, store_a, document):
    from customers.privacy.services import withdrawal_token

    customer = CustomerFactory(home_store=store_a)
    client.force_login(admin_user)
    client.cookies["django_language"] = "ru"
    pages = {
        customer.get_absolute_url(): ["Personal data", "Withdraw consent", "Register a request"],
        "/customers/new/": ["Consent to processing", "Paper form number", "Not taken now"],
        f"/customers/{customer.pk}/erase/": ["Erase personal data", "Basis", "cannot be undone"],
        "/customers/retention/": ["Retention review", "Leads with no purchase", "Anonymise"],
        f"/privacy/withdraw/{withdrawal_token(customer)}/": ["Withdraw your consent"],
    }
    for url, english in pages.items():
        html = client.get(url, HTTP_ACCEPT_LANGUAGE="ru").content.decode()
        for text in english:
            assert text not in html, (url, text)
    assert "Персональные данные" in client.get(customer.get_absolute_url()).content.decode()

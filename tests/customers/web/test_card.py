"""The customer card: access, audit, masking, totals, inline edit, contacts, consent, new card."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from crm.models import AuditAction, AuditEvent
from customers.models import (
    ConsentEvent,
    Contact,
    Customer,
    CustomerPhone,
    CustomField,
    CustomFieldCategory,
)
from sales.models import Return, ReturnLine
from tests.customers.web.conftest import add_contacts, add_receipts
from tests.factories import CategoryFactory

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


def test_manager_cannot_open_customer_of_other_store(client, manager_a, boris):
    client.force_login(manager_a)
    assert client.get(f"/customers/{boris.pk}/").status_code == 404
    assert client.get(f"/customers/{boris.pk}/edit/").status_code == 404
    assert client.post(f"/customers/{boris.pk}/contacts/", {}).status_code == 404
    assert client.post(f"/customers/{boris.pk}/consent/", {}).status_code == 404


def test_outsider_gets_404_on_a_card(client, outsider, anna):
    client.force_login(outsider)
    assert client.get(f"/customers/{anna.pk}/").status_code == 404


def test_opening_a_card_is_audited(client, manager_a, anna):
    client.force_login(manager_a)
    assert client.get(f"/customers/{anna.pk}/").status_code == 200
    event = AuditEvent.objects.get(action=AuditAction.CUSTOMER_VIEW)
    assert event.actor == manager_a
    assert event.object_id == str(anna.pk)


def test_marketer_sees_masked_phone_and_email(client, marketer, anna):
    client.force_login(marketer)
    body = client.get(f"/customers/{anna.pk}/").content.decode()
    assert "+7 916 ***-**-67" in body
    assert "a***@mail.ru" in body
    assert "123-45-67" not in body
    assert "anna.ivanova@mail.ru" not in body


def test_manager_sees_full_contact_details(client, manager_a, anna):
    client.force_login(manager_a)
    body = client.get(f"/customers/{anna.pk}/").content.decode()
    assert "+7 916 123-45-67" in body
    assert "anna.ivanova@mail.ru" in body


def test_card_totals_are_net_of_returns(client, manager_a, anna):
    category = CategoryFactory(name="Платья")
    receipts = add_receipts(anna, 2, lines=1)
    line = receipts[0].lines.get()
    line.product.category = category
    line.product.save(update_fields=["category"])
    ret = Return.objects.create(
        store=anna.home_store,
        receipt=receipts[0],
        pos_return_id="RET-1",
        returned_at=timezone.now(),
    )
    ReturnLine.objects.create(
        return_doc=ret,
        receipt_line=line,
        quantity=Decimal("1"),
        amount=Decimal("1000.00"),
        margin=Decimal("400.00"),
    )
    client.force_login(manager_a)
    totals = client.get(f"/customers/{anna.pk}/").context["totals"]
    assert totals.receipts == 2
    assert totals.revenue == Decimal("1000.00")
    assert totals.margin == Decimal("400.00")
    assert totals.average_receipt == Decimal("1000.00")
    assert totals.favourite_categories[0]["path"] == "Платья"


def test_card_query_count_does_not_grow_with_receipts_or_contacts(
    client, manager_a, anna, django_assert_max_num_queries
):
    add_receipts(anna, 2)
    add_contacts(anna, 2, staff=manager_a)
    client.force_login(manager_a)
    with django_assert_max_num_queries(30) as few:
        client.get(f"/customers/{anna.pk}/")
    add_receipts(anna, 15, lines=4)
    add_contacts(anna, 20, staff=manager_a)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(f"/customers/{anna.pk}/")
    assert len(response.context["receipts"]) == 10
    assert len(response.context["contacts"]) == 22


def test_custom_fields_are_grouped_by_category_with_purpose(client, manager_a, anna):
    category = CustomFieldCategory.objects.create(
        name="Размеры", purpose="Чтобы предлагать вещи нужного размера"
    )
    CustomField.objects.create(key="size", name="Размер одежды", type="text", category=category)
    Customer.objects.filter(pk=anna.pk).update(custom_fields={"size": "44"})
    client.force_login(manager_a)
    body = client.get(f"/customers/{anna.pk}/").content.decode()
    assert "Размеры" in body
    assert "Чтобы предлагать вещи нужного размера" in body
    assert "44" in body


def edit_data(customer, **changes):
    data = {
        "surname": customer.surname,
        "first_name": customer.first_name,
        "patronymic": customer.patronymic,
        "email": customer.email,
        "card_number": customer.card_number or "",
        "lifecycle_stage": customer.lifecycle_stage,
        "home_store": customer.home_store_id or "",
        "phones": customer.phone,
    }
    data.update(changes)
    return data


def test_inline_edit_saves_through_the_service_and_audits(client, manager_a, anna):
    client.force_login(manager_a)
    response = client.post(
        f"/customers/{anna.pk}/edit/",
        edit_data(anna, city="Тула", phones="8 916 123-45-67\n8 (903) 111-22-33"),
        **HX,
    )
    assert response.status_code == 200
    anna.refresh_from_db()
    assert anna.city == "Тула"
    assert set(anna.phones.values_list("number", flat=True)) == {"+79161234567", "+79031112233"}
    assert AuditEvent.objects.filter(action=AuditAction.CUSTOMER_UPDATE).exists()


def test_bad_phone_is_a_form_error_and_nothing_is_written(client, manager_a, anna):
    client.force_login(manager_a)
    response = client.post(
        f"/customers/{anna.pk}/edit/", edit_data(anna, city="Тула", phones="12345"), **HX
    )
    assert response.status_code == 400
    assert 'data-testid="edit-form"' in response.content.decode()
    assert "invalid-feedback" in response.content.decode()
    anna.refresh_from_db()
    assert anna.city == ""
    assert list(anna.phones.values_list("number", flat=True)) == ["+79161234567"]


def test_phone_of_another_customer_is_refused(client, manager_a, anna, boris):
    client.force_login(manager_a)
    response = client.post(
        f"/customers/{anna.pk}/edit/", edit_data(anna, phones="+79169876543"), **HX
    )
    assert response.status_code == 400
    assert not CustomerPhone.objects.filter(customer=anna, number="+79169876543").exists()


def test_marketer_cannot_edit(client, marketer, anna):
    client.force_login(marketer)
    assert client.get(f"/customers/{anna.pk}/edit/").status_code == 403


def test_add_contact_with_follow_up(client, manager_a, anna):
    client.force_login(manager_a)
    due = timezone.localdate() + dt.timedelta(days=1)
    response = client.post(
        f"/customers/{anna.pk}/contacts/",
        {
            "channel": "phone",
            "direction": "out",
            "topic": "Новая коллекция",
            "outcome": "Интересно",
            "agreement": "Придёт в субботу",
            "next_step": "Напомнить",
            "due_date": due.isoformat(),
        },
        **HX,
    )
    assert response.status_code == 200
    contact = Contact.objects.get(customer=anna)
    assert contact.staff == manager_a
    assert contact.due_date == due
    assert "Новая коллекция" in response.content.decode()


def test_due_date_without_next_step_is_a_form_error(client, manager_a, anna):
    client.force_login(manager_a)
    response = client.post(
        f"/customers/{anna.pk}/contacts/",
        {"channel": "phone", "direction": "out", "topic": "Звонок", "due_date": "2030-01-01"},
        **HX,
    )
    assert response.status_code == 400
    assert not Contact.objects.exists()


def test_consent_change_keeps_history(client, manager_a, anna):
    client.force_login(manager_a)
    client.post(f"/customers/{anna.pk}/consent/", {"channel": "sms", "granted": "on"}, **HX)
    response = client.post(f"/customers/{anna.pk}/consent/", {"channel": "sms"}, **HX)
    assert response.status_code == 200
    anna.refresh_from_db()
    assert anna.consent_sms is False
    assert list(
        ConsentEvent.objects.filter(customer=anna).order_by("at").values_list("granted", flat=True)
    ) == [True, False]


def test_new_card_warns_about_a_duplicate_phone(client, manager_a, anna):
    client.force_login(manager_a)
    response = client.post(
        "/customers/new/",
        {
            "surname": "Иванова",
            "first_name": "Аня",
            "phones": "8 916 123 45 67",
            "lifecycle_stage": "lead",
        },
    )
    assert response.status_code == 400
    assert 'data-testid="duplicate-warning"' in response.content.decode()
    assert Customer.objects.count() == 1


def test_live_duplicate_check_finds_same_card_or_email(client, manager_a, anna):
    client.force_login(manager_a)
    by_card = client.get("/customers/new/duplicates/", {"card_number": "2000123"})
    by_email = client.get("/customers/new/duplicates/", {"email": "ANNA.IVANOVA@mail.ru"})
    nothing = client.get("/customers/new/duplicates/", {"email": "other@mail.ru"})
    assert "duplicate-warning" in by_card.content.decode()
    assert "duplicate-warning" in by_email.content.decode()
    assert "duplicate-warning" not in nothing.content.decode()


def test_new_card_is_created(client, manager_a, store_a):
    client.force_login(manager_a)
    response = client.post(
        "/customers/new/",
        {
            "surname": "Смирнова",
            "first_name": "Ольга",
            "phones": "8 903 555-44-33",
            "lifecycle_stage": "lead",
            "home_store": store_a.pk,
        },
    )
    customer = Customer.objects.get(surname="Смирнова")
    assert response.status_code == 302
    assert response["Location"] == f"/customers/{customer.pk}/"
    assert customer.phone == "+79035554433"


def test_purchase_history_is_paginated(client, manager_a, anna):
    add_receipts(anna, 12, lines=1)
    client.force_login(manager_a)
    response = client.get(
        f"/customers/{anna.pk}/", {"page": 2}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="purchases"
    )
    assert response.status_code == 200
    assert len(response.context["receipts"]) == 2
    assert "<html" not in response.content.decode()


def test_card_shows_not_computed_yet_until_analytics_runs(client, manager_a, anna):
    client.force_login(manager_a)
    body = client.get(f"/customers/{anna.pk}/").content.decode()
    assert "not computed yet" in body or "ещё не рассчитаны" in body


def test_card_shows_value_class_rfm_and_lifetime_value_badges(client, manager_a, anna):
    from analytics.models import CustomerMetrics

    CustomerMetrics.objects.create(
        customer=anna,
        value_class="VIP",
        rfm_segment="champions",
        recency_score=5,
        frequency_score=5,
        monetary_score=4,
        historical_lcv=Decimal("12345.00"),
        predicted_clv=Decimal("20000.00"),
        computed_at=timezone.now(),
    )
    client.force_login(manager_a)
    response = client.get(f"/customers/{anna.pk}/", HTTP_ACCEPT_LANGUAGE="en")
    badges = response.content.decode().split('data-testid="badges"')[1].split("</span>\n</div>")[0]
    assert "VIP" in badges
    assert "RFM 554" in badges
    assert "12,345.00" in badges or "12 345,00" in badges

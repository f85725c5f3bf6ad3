"""Today (follow-ups, birthdays, new leads, VIPs) and the Leads page."""

import datetime as dt

import pytest
from django.utils import timezone

from customers.models import Customer
from tests.customers.web.conftest import add_contacts, add_receipts
from tests.factories import ContactFactory, CustomerFactory

pytestmark = pytest.mark.django_db


def test_today_shows_follow_ups_due_and_overdue(client, manager_a, anna, boris):
    today = timezone.localdate()
    ContactFactory(customer=anna, staff=manager_a, next_step="Перезвонить", due_date=today)
    ContactFactory(
        customer=anna,
        staff=manager_a,
        next_step="Отправить каталог",
        due_date=today - dt.timedelta(days=2),
    )
    ContactFactory(
        customer=anna, staff=manager_a, next_step="Позже", due_date=today + dt.timedelta(days=3)
    )
    ContactFactory(customer=boris, next_step="Чужой клиент", due_date=today)
    client.force_login(manager_a)
    body = client.get("/").content.decode()
    assert "Перезвонить" in body
    assert "Отправить каталог" in body
    assert "Позже" not in body
    assert "Чужой клиент" not in body


def test_today_shows_birthdays_of_visible_customers_in_next_7_days(client, manager_a, anna, boris):
    soon = timezone.localdate() + dt.timedelta(days=2)
    Customer.objects.filter(pk__in=[anna.pk, boris.pk]).update(birth_date=soon.replace(year=1990))
    client.force_login(manager_a)
    response = client.get("/")
    assert [c.pk for c in response.context["birthdays"]] == [anna.pk]


def test_today_shows_new_leads(client, manager_a, store_a):
    lead = CustomerFactory(surname="Новикова", home_store=store_a)
    ContactFactory(customer=lead, topic="Спрашивала про скидки")
    buyer = CustomerFactory(surname="Покупатель", home_store=store_a)
    ContactFactory(customer=buyer)
    add_receipts(buyer, 1)
    client.force_login(manager_a)
    response = client.get("/")
    assert [c.pk for c in response.context["leads"]] == [lead.pk]
    assert "Спрашивала про скидки" in response.content.decode()


def test_today_query_count_does_not_grow(client, manager_a, store_a, django_assert_max_num_queries):
    today = timezone.localdate()
    client.force_login(manager_a)

    def populate(n):
        for _ in range(n):
            customer = CustomerFactory(
                home_store=store_a, birth_date=(today + dt.timedelta(days=1)).replace(year=1990)
            )
            ContactFactory(customer=customer, staff=manager_a, next_step="Шаг", due_date=today)

    populate(2)
    with django_assert_max_num_queries(15) as few:
        client.get("/")
    populate(12)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get("/")
    assert len(response.context["due_today"]) == 14


def test_leads_page_lists_contacted_non_buyers_with_last_contact(client, manager_a, store_a):
    lead = CustomerFactory(surname="Лидова", home_store=store_a)
    ContactFactory(customer=lead, topic="Первый", at=timezone.now() - dt.timedelta(days=3))
    ContactFactory(customer=lead, topic="Последний", at=timezone.now())
    CustomerFactory(surname="Молчун", home_store=store_a)  # never contacted
    client.force_login(manager_a)
    response = client.get("/customers/leads/")
    leads = list(response.context["leads"])
    assert [c.pk for c in leads] == [lead.pk]
    assert leads[0].last_contact_topic == "Последний"


def test_user_without_role_sees_a_welcome_not_data(client, outsider, anna):
    add_contacts(anna, 1)
    client.force_login(outsider)
    response = client.get("/")
    assert response.status_code == 200
    assert response.context["no_role"]


def test_today_shows_recently_active_vips_of_visible_customers(client, manager_a, anna, boris):
    from analytics.models import CustomerMetrics

    for customer in (anna, boris):
        CustomerMetrics.objects.create(
            customer=customer,
            value_class="VIP",
            last_purchase_at=timezone.now() - dt.timedelta(days=3),
            computed_at=timezone.now(),
        )
    client.force_login(manager_a)
    response = client.get("/")
    assert [c.pk for c in response.context["vips"]] == [anna.pk]

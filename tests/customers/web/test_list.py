"""The customers list: filters, sorting, keyset pagination, capped total, no N+1."""

import datetime as dt

import pytest
from django.utils import timezone

from crm.models import AuditEvent
from customers.models import Customer, Tag
from customers.selectors.listing import ListFilters, customer_page
from tests.customers.web.conftest import add_receipts
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def names(page):
    return [c.surname for c in page.customers]


def test_list_shows_total_and_rows(client, manager_a, anna, boris):
    client.force_login(manager_a)
    response = client.get("/customers/")
    body = response.content.decode()
    assert response.status_code == 200
    assert "Иванова" in body
    assert "Петров" not in body
    assert 'data-testid="total"' in body


def test_filters_by_store_tag_stage_and_consent(admin_user, anna, boris):
    vip = Tag.objects.create(name="Постоянный")
    anna.tags.add(vip)
    Customer.objects.filter(pk=boris.pk).update(consent_sms=True)

    def page(**kwargs):
        return customer_page(user=admin_user, filters=ListFilters(**kwargs))

    assert names(page(store=anna.home_store_id)) == ["Иванова"]
    assert names(page(tag=vip.pk)) == ["Иванова"]
    assert names(page(stage="customer")) == ["Иванова"]
    assert names(page(consent="sms")) == ["Петров"]


def test_filters_by_birthday_in_next_days(admin_user, anna, boris):
    today = timezone.localdate()
    soon = today + dt.timedelta(days=3)
    Customer.objects.filter(pk=anna.pk).update(birth_date=soon.replace(year=1990))
    far = today + dt.timedelta(days=40)
    Customer.objects.filter(pk=boris.pk).update(birth_date=far.replace(year=1980))
    page = customer_page(user=admin_user, filters=ListFilters(birthday_days=7))
    assert names(page) == ["Иванова"]


def test_filters_by_last_purchase_before_and_after(admin_user, anna, boris):
    add_receipts(anna, 1)  # yesterday
    old = add_receipts(boris, 1)[0]
    old.purchased_at = timezone.now() - dt.timedelta(days=200)
    old.save(update_fields=["purchased_at"])
    month_ago = timezone.localdate() - dt.timedelta(days=30)
    after = customer_page(user=admin_user, filters=ListFilters(purchased_after=month_ago))
    before = customer_page(user=admin_user, filters=ListFilters(purchased_before=month_ago))
    assert names(after) == ["Иванова"]
    assert names(before) == ["Петров"]


def test_sorting_by_name_both_ways_and_by_created(admin_user, anna, boris):
    ascending = customer_page(user=admin_user, filters=ListFilters(), sort="name")
    descending = customer_page(user=admin_user, filters=ListFilters(), sort="name", descending=True)
    newest = customer_page(user=admin_user, filters=ListFilters(), sort="created", descending=True)
    assert names(ascending) == ["Иванова", "Петров"]
    assert names(descending) == ["Петров", "Иванова"]
    assert names(newest) == ["Петров", "Иванова"]


def test_keyset_pages_walk_forward_and_back_without_gaps(admin_user, store_a):
    for index in range(7):
        CustomerFactory(surname=f"Фамилия{index}", first_name="Имя", home_store=store_a)
    filters = ListFilters()
    seen = []
    page = customer_page(user=admin_user, filters=filters, page_size=3)
    pages = [page]
    while page.next_cursor:
        page = customer_page(user=admin_user, filters=filters, page_size=3, after=page.next_cursor)
        pages.append(page)
    for page in pages:
        seen.extend(names(page))
    assert seen == sorted(seen)
    assert len(seen) == 7
    back = customer_page(
        user=admin_user, filters=filters, page_size=3, before=pages[-1].prev_cursor
    )
    assert names(back) == names(pages[-2])


def test_keyset_cursor_survives_the_page_links(client, admin_user, store_a):
    for index in range(60):
        CustomerFactory(surname=f"Клиент{index:02d}", home_store=store_a)
    client.force_login(admin_user)
    first = client.get("/customers/", {"sort": "-created"})
    page = first.context["page"]
    second = client.get("/customers/", {"sort": "-created", "after": page.next_cursor})
    assert second.status_code == 200
    assert len(second.context["page"].customers) == 10
    assert not set(c.pk for c in second.context["page"].customers) & {c.pk for c in page.customers}


def test_bad_cursor_is_a_form_error_and_the_list_starts_from_the_top(client, admin_user, anna):
    client.force_login(admin_user)
    response = client.get("/customers/", {"after": "not-a-cursor"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert "This page link is damaged" in response.content.decode()
    assert anna in response.context["page"].customers


def test_total_is_capped(admin_user, anna, boris, monkeypatch):
    monkeypatch.setattr("customers.selectors.listing.COUNT_CAP", 1)
    page = customer_page(user=admin_user, filters=ListFilters())
    assert page.total_capped
    assert page.total == 1


def test_list_query_count_does_not_grow_with_rows(
    client, admin_user, store_a, django_assert_max_num_queries
):
    tag = Tag.objects.create(name="Тег")
    for _ in range(3):
        CustomerFactory(home_store=store_a).tags.add(tag)
    client.force_login(admin_user)
    with django_assert_max_num_queries(12):
        client.get("/customers/")
    for _ in range(30):
        CustomerFactory(home_store=store_a).tags.add(tag)
    with django_assert_max_num_queries(12):
        response = client.get("/customers/")
    assert len(response.context["page"].customers) == 33


def test_list_does_not_record_card_views(client, admin_user, anna):
    client.force_login(admin_user)
    client.get("/customers/")
    assert not AuditEvent.objects.filter(action="customer_view").exists()


def test_outsider_gets_404_on_the_list(client, outsider):
    client.force_login(outsider)
    assert client.get("/customers/").status_code == 404
    assert client.get("/customers/leads/").status_code == 404
    assert client.get("/customers/new/").status_code == 404


def test_anonymous_is_sent_to_sign_in(client):
    response = client.get("/customers/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_filters_by_value_class_and_rfm_segment(admin_user, anna, boris):
    from analytics.models import CustomerMetrics

    CustomerMetrics.objects.create(
        customer=anna, value_class="VIP", rfm_segment="champions", computed_at=timezone.now()
    )
    CustomerMetrics.objects.create(
        customer=boris, value_class="C", rfm_segment="hibernating", computed_at=timezone.now()
    )
    vip = customer_page(user=admin_user, filters=ListFilters(value_class="VIP"))
    sleeping = customer_page(user=admin_user, filters=ListFilters(rfm_segment="hibernating"))
    assert names(vip) == ["Иванова"]
    assert names(sleeping) == ["Петров"]

"""The daily cap of unmasked cards: on the card page, its edit form, and under concurrency."""

import threading

import pytest
from django.test import Client

from crm.models import AuditAction, AuditEvent
from customers.disclosure import taken_today
from tests.factories import CustomerFactory, StoreFactory, UserFactory


@pytest.mark.django_db
def test_card_page_masks_contacts_past_the_cap_with_a_message(client, manager_a, base_a, settings):
    settings.CLIENTELE_UNMASKED_DAILY_CAP = 2
    client.force_login(manager_a)
    first, second, third = base_a[:3]
    for customer in (first, second):
        assert customer.email in client.get(f"/customers/{customer.pk}/").content.decode()
    page = client.get(f"/customers/{third.pk}/").content.decode()
    assert third.email not in page
    assert "daily limit of 2 cards" in page
    # Cards already seen today stay open; the edit form of a capped card does not open.
    assert first.email in client.get(f"/customers/{first.pk}/").content.decode()
    assert client.get(f"/customers/{third.pk}/edit/").status_code == 302
    htmx = client.get(f"/customers/{third.pk}/edit/", headers={"HX-Request": "true"})
    assert htmx.status_code == 429
    assert third.email not in htmx.content.decode()
    assert taken_today(manager_a) == 2
    capped = AuditEvent.objects.filter(actor=manager_a, action=AuditAction.CONTACTS_CAPPED)
    assert capped.count() == 3  # the card twice (page, redirect target) and the edit form


@pytest.mark.django_db
def test_the_list_never_shows_contacts_even_to_an_admin(client, admin_user, base_a):
    client.force_login(admin_user)
    page = client.get("/customers/").content.decode()
    for customer in base_a:
        assert customer.email not in page
    assert taken_today(admin_user) == 0


@pytest.mark.django_db(transaction=True)
def test_parallel_card_reads_stay_within_the_cap(settings):
    from crm import roles

    settings.CLIENTELE_UNMASKED_DAILY_CAP = 5
    store = StoreFactory(code="cards", name="Карты", city="Тверь")
    customers = [CustomerFactory(home_store=store) for _ in range(16)]
    user = UserFactory(username="reader", role=roles.STORE_MANAGER, stores=[store])
    start = threading.Barrier(len(customers))
    answers: list[tuple[int, int, bool]] = []
    lock = threading.Lock()

    def read(customer) -> None:
        from django.db import connection

        try:
            client = Client()
            client.force_login(user)
            start.wait()
            response = client.get(f"/api/v1/customers/{customer.pk}/")
            unmasked = response.status_code == 200 and response.json()["phone"] == customer.phone
            with lock:
                answers.append((customer.pk, response.status_code, unmasked))
        finally:
            connection.close()

    threads = [threading.Thread(target=read, args=(c,)) for c in customers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(answers) == len(customers)
    assert sum(unmasked for _pk, _status, unmasked in answers) == 5
    assert sorted(status for _pk, status, _u in answers) == [200] * 5 + [429] * 11
    assert taken_today(user) == 5

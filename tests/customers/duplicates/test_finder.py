"""The duplicate finder: reasons, confidence, "not a duplicate" remembered, scope of the page."""

from __future__ import annotations

import datetime as dt

import pytest

from customers.duplicates.finder import duplicates_find
from customers.duplicates.models import DuplicatePair, PairStatus
from customers.duplicates.services import pair_dismiss
from customers.duplicates.tasks import find_duplicates_task
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

BIRTH = dt.date(1985, 3, 14)


def reasons() -> dict[frozenset, str]:
    return {frozenset((p.first_id, p.second_id)): p.reason for p in DuplicatePair.objects.all()}


def test_finder_reasons(store_a, store_b):
    a = CustomerFactory(
        email="Same@Mail.ru", surname="Аа", first_name="Бб", birth_date=None, home_store=store_a
    )
    b = CustomerFactory(
        email="same@mail.ru", surname="Вв", first_name="Гг", birth_date=None, home_store=store_a
    )
    c = CustomerFactory(card_number="1234-5678", email="", surname="Дд", birth_date=None)
    d = CustomerFactory(card_number="12345678", email="", surname="Ее", birth_date=None)
    e = CustomerFactory(
        surname="Семёнов", first_name="Пётр", email="", birth_date=BIRTH, home_store=store_a
    )
    f = CustomerFactory(
        surname="СЕМЕНОВ", first_name="Петр", email="", birth_date=BIRTH, home_store=store_a
    )
    g = CustomerFactory(
        surname="Кузнецова", first_name="Ольга", email="", birth_date=BIRTH, home_store=store_a
    )
    h = CustomerFactory(
        surname="Kuznetsova", first_name="Olga", email="", birth_date=BIRTH, home_store=store_a
    )
    i = CustomerFactory(
        surname="Орлов",
        first_name="Игорь",
        email="",
        birth_date=None,
        home_store=store_a,
        address="ул. Мира, 5",
    )
    j = CustomerFactory(
        surname="Орлов",
        first_name="Игор",
        email="",
        birth_date=None,
        home_store=store_a,
        address="УЛ. МИРА, 5",
    )
    k = CustomerFactory(
        surname="Лебедев",
        first_name="Антон",
        email="",
        birth_date=dt.date(1990, 1, 1),
        home_store=store_a,
    )
    m = CustomerFactory(
        surname="Лебедев",
        first_name="Антон",
        email="",
        birth_date=dt.date(1990, 1, 1),
        home_store=store_b,
    )
    CustomerFactory(surname="Никто", first_name="Другой", email="", birth_date=None)
    added = find_duplicates_task()
    assert sum(added.values()) == DuplicatePair.objects.count()
    found = reasons()
    assert found[frozenset((a.pk, b.pk))] == "email"
    assert found[frozenset((c.pk, d.pk))] == "card"
    assert found[frozenset((e.pk, f.pk))] == "name_birth"
    assert found[frozenset((g.pk, h.pk))] in {"similar_birth", "name_birth"}
    assert found[frozenset((i.pk, j.pk))] == "similar_address"
    assert found[frozenset((k.pk, m.pk))] == "two_stores"
    assert len(found) == 6, found


def test_not_a_duplicate_is_remembered(admin_user):
    a = CustomerFactory(email="x@mail.ru", birth_date=None)
    b = CustomerFactory(email="x@mail.ru", birth_date=None)
    duplicates_find()
    pair = DuplicatePair.objects.get()
    pair_dismiss(actor=admin_user, pair=pair)
    duplicates_find()
    pair = DuplicatePair.objects.get()
    assert pair.status == PairStatus.NOT_DUPLICATE
    assert (pair.first_id, pair.second_id) == (min(a.pk, b.pk), max(a.pk, b.pk))


def test_duplicates_page_is_scoped_by_visibility(
    client, manager_a, admin_user, store_a, store_b, django_assert_max_num_queries
):
    def card(email, store, surname):
        return CustomerFactory(email=email, home_store=store, surname=surname, birth_date=None)

    card("mine@mail.ru", store_a, "Свой")
    card("mine@mail.ru", store_a, "Свой")
    card("split@mail.ru", store_a, "Граница")
    card("split@mail.ru", store_b, "Граница")
    for n in range(5):
        card(f"many{n}@mail.ru", store_a, f"Много{n}")
        card(f"many{n}@mail.ru", store_a, f"Много{n}")
    duplicates_find()
    client.force_login(manager_a)
    with django_assert_max_num_queries(12):
        page = client.get("/customers/duplicates/")
    body = page.content.decode()
    assert page.status_code == 200
    assert body.count('data-testid="pair-row"') == 6
    assert "Граница" not in body
    client.force_login(admin_user)
    assert (
        client.get("/customers/duplicates/").content.decode().count('data-testid="pair-row"') == 7
    )


def test_duplicates_page_masks_contact_data_without_the_export_permission(
    client, manager_a, store_a
):
    CustomerFactory(email="secret@mail.ru", home_store=store_a, birth_date=None)
    CustomerFactory(email="secret@mail.ru", home_store=store_a, birth_date=None)
    duplicates_find()
    client.force_login(manager_a)
    body = client.get("/customers/duplicates/").content.decode()
    assert "secret@mail.ru" not in body and "s***@mail.ru" in body


def test_duplicates_page_is_404_for_roles_without_it(client, marketer, outsider):
    for user in (marketer, outsider):
        client.force_login(user)
        assert client.get("/customers/duplicates/").status_code == 404


def test_duplicates_page_masks_contact_data_even_for_an_exporter(client, admin_user, store_a):
    """A page of pairs is a list: masked for every role, so nothing leaves uncounted and
    unaudited; the merge screen shows each card through the one rule."""
    from customers.disclosure import taken_today

    CustomerFactory(email="secret@mail.ru", home_store=store_a, birth_date=None)
    CustomerFactory(email="secret@mail.ru", home_store=store_a, birth_date=None)
    duplicates_find()
    client.force_login(admin_user)
    body = client.get("/customers/duplicates/").content.decode()
    assert 'data-testid="pair-row"' in body
    assert "secret@mail.ru" not in body and "s***@mail.ru" in body
    assert taken_today(admin_user) == 0

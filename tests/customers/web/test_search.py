"""The one search box: phone in any format, card, email, names in any order, Latin and typos."""

import pytest

from customers.selectors.search import customer_lookup, customer_search, latin_to_cyrillic
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def found(user, query):
    return set(customer_search(user=user, query=query).values_list("pk", flat=True))


@pytest.mark.parametrize(
    "query", ["8 916 123-45-67", "+7 (916) 123 45 67", "89161234567", "9161234567", "+79161234567"]
)
def test_phone_in_any_format_finds_the_customer(admin_user, anna, boris, query):
    assert found(admin_user, query) == {anna.pk}


def test_loyalty_card_is_matched_exactly(admin_user, anna, boris):
    assert found(admin_user, "2000123") == {anna.pk}
    assert found(admin_user, "200012") == set()


def test_email_is_case_insensitive(admin_user, anna, boris):
    assert found(admin_user, "Anna.Ivanova@MAIL.ru") == {anna.pk}


@pytest.mark.parametrize(
    "query", ["Иванова Анна", "Анна Иванова", "иванова", "Иван", "Ivanova Anna", "anna ivanova"]
)
def test_name_in_any_order_cyrillic_or_latin(admin_user, anna, boris, query):
    assert anna.pk in found(admin_user, query)
    assert boris.pk not in found(admin_user, query)


def test_misspelt_surname_is_tolerated(admin_user, anna, boris):
    assert anna.pk in found(admin_user, "Иваноая")
    assert anna.pk in found(admin_user, "Ivonova")


def test_closest_name_comes_first(admin_user, anna, store_a):
    CustomerFactory(surname="Ивановский", first_name="Пётр", home_store=store_a)
    results = list(customer_search(user=admin_user, query="Иванова Анна"))
    assert results[0].pk == anna.pk


def test_latin_to_cyrillic_reads_russian_names():
    assert latin_to_cyrillic("Shcherbakova") == "ЩЕРБАКОВА"
    assert latin_to_cyrillic("Sergey") == "СЕРГЕЙ"
    assert latin_to_cyrillic("Zhukov") == "ЖУКОВ"


def test_search_stays_within_visible_customers(manager_a, anna, boris):
    assert found(manager_a, "+79169876543") == set()
    assert found(manager_a, "Петров") == set()
    assert found(manager_a, "8 916 123-45-67") == {anna.pk}


def test_associate_finds_other_store_customer_only_by_exact_phone_or_card(associate_a, boris):
    assert found(associate_a, "Петров") == set()
    assert [c.pk for c in customer_lookup(user=associate_a, query="8 916 987-65-43")] == [boris.pk]
    assert [c.pk for c in customer_lookup(user=associate_a, query="3000456")] == [boris.pk]
    assert customer_lookup(user=associate_a, query="Петров") == []


def test_associate_lookup_result_is_minimal_and_masked(client, associate_a, boris):
    client.force_login(associate_a)
    response = client.get("/customers/", {"q": "8 916 987-65-43"})
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-testid="lookup-row"' in body
    assert "+7 916 ***-**-43" in body
    assert "+79169876543" not in body
    assert "boris@example.ru" not in body
    # The associate sees the minimal card but cannot open it.
    assert f"/customers/{boris.pk}/" not in body
    assert client.get(f"/customers/{boris.pk}/").status_code == 404


def test_live_search_returns_only_the_results_fragment(client, manager_a, anna):
    client.force_login(manager_a)
    response = client.get(
        "/customers/", {"q": "Иванова"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="results"
    )
    body = response.content.decode()
    assert "<html" not in body
    assert "Иванова Анна" in body


def test_a_capped_name_count_says_more_than(client, admin_user, anna, store_a, monkeypatch):
    from customers.selectors import listing

    CustomerFactory(surname="Иванова", first_name="Ольга", home_store=store_a)
    monkeypatch.setattr(listing, "NAME_COUNT_CAP", 1)
    client.force_login(admin_user)
    body = client.get("/customers/", {"q": "Иванова"}, HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert "Найдено: более 1" in body

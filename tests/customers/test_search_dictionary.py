"""Name search through the dictionary of distinct names (customers.models.NameToken): the same
results as matching every card, the dictionary kept in step by the database, scoping unchanged."""

import pytest
from django.db.models import Case, F, Value, When

from customers.folding import fold
from customers.models import Customer, NameToken
from customers.selectors import search
from customers.selectors.search import customer_search
from customers.services import name_tokens_prune
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

NAMES = [
    ("Иванов", "Пётр"),
    ("Иванова", "Анна"),
    ("Иванченко", "Олег"),
    ("Ваниванов", "Яков"),
    ("Федоров", "Семен"),
    ("Фёдорова", "Алёна"),
    ("Петровская", "Ольга"),
    ("Петровский", "Иван"),
    ("Егоров", "Пётр"),
    ("Смирнова", "Мария"),
    ("Кузнецов", "Алексей"),
]
QUERIES = [
    "Иван",
    "иванов",
    "Иванв Петр",
    "Петр Иванов",
    "Фёдоров Семён",
    "Федорова Алена",
    "Egorov Petr",
    "Ivanova Anna",
    "Петровск",
    "Кузнецв",
    "Смир Мария",
    "Иванов Петр Андреевич",
    "Щукин",
]


@pytest.fixture
def base(store_a, store_b):
    made = []
    for i, (surname, first) in enumerate(NAMES):
        store = store_a if i % 2 else store_b
        made.append(CustomerFactory(surname=surname, first_name=first, home_store=store))
    return made


def ids(user, query):
    return [c.pk for c in customer_search(user=user, query=query)]


@pytest.mark.parametrize("query", QUERIES)
def test_dictionary_gives_what_matching_every_card_gives(admin_user, base, query, monkeypatch):
    fast = ids(admin_user, query)
    # A cap of 0 sends every query down the card-side path (the one the dictionary replaces).
    monkeypatch.setattr(search, "NAME_TOKEN_CAP", 0)
    assert fast == ids(admin_user, query)


@pytest.mark.parametrize("query", ["Иван", "Петр", "Egorov"])
def test_dictionary_path_keeps_the_managers_scope(manager_a, base, store_a, query):
    found = Customer.objects.filter(pk__in=ids(manager_a, query))
    assert found.exists() or query == "Egorov"
    assert set(found.values_list("home_store", flat=True)) <= {store_a.pk}


def test_one_letter_beyond_the_cap_still_finds_cards(admin_user, base, monkeypatch):
    monkeypatch.setattr(search, "NAME_TOKEN_CAP", 2)
    found = ids(admin_user, "И")
    assert {c.pk for c in base if c.surname.startswith("И") or c.first_name.startswith("И")} <= (
        set(found)
    )


def _tokens(kind):
    return set(NameToken.objects.filter(kind=kind).values_list("token", flat=True))


def test_created_card_names_enter_the_dictionary_folded(store_a):
    CustomerFactory(surname="Сёмин", first_name="Фёдор", home_store=store_a)
    assert "СЕМИН" in _tokens(NameToken.SURNAME)
    assert "ФЕДОР" in _tokens(NameToken.FIRST_NAME)


def test_bulk_created_cards_enter_the_dictionary(store_a):
    Customer.objects.bulk_create(
        [Customer(surname=f"Тестов{i}", first_name="Лев", home_store=store_a) for i in range(3)]
    )
    assert {"ТЕСТОВ0", "ТЕСТОВ1", "ТЕСТОВ2"} <= _tokens(NameToken.SURNAME)


def test_renamed_card_is_found_by_the_new_name_only(admin_user, store_a):
    card = CustomerFactory(surname="Орлова", first_name="Нина", home_store=store_a)
    Customer.objects.filter(pk=card.pk).update(surname="Соколова")
    assert card.pk in ids(admin_user, "Соколва Нина")
    assert card.pk not in ids(admin_user, "Орлова Нина")


def test_bulk_renamed_cards_enter_the_dictionary_by_the_changed_name_only(store_a):
    # One statement renaming some cards' surnames and others' first names (migration 0012).
    kept = CustomerFactory(surname="Ломов", first_name="Ипполит", home_store=store_a)
    first = CustomerFactory(surname="Белов", first_name="Глеб", home_store=store_a)
    NameToken.objects.filter(token__in=["ЛОМОВ", "ИППОЛИТ"]).delete()
    Customer.objects.filter(pk__in=[kept.pk, first.pk]).update(
        first_name=Case(When(pk=first.pk, then=Value("Всёволод")), default=F("first_name")),
        surname=Case(When(pk=kept.pk, then=Value("Ёлкин")), default=F("surname")),
    )
    assert "ЕЛКИН" in _tokens(NameToken.SURNAME)
    assert "ВСЕВОЛОД" in _tokens(NameToken.FIRST_NAME)
    # Names the statement did not change are not written again (they were added when written).
    assert "ИППОЛИТ" not in _tokens(NameToken.FIRST_NAME)
    assert "БЕЛОВ" in _tokens(NameToken.SURNAME)


def test_update_of_other_columns_leaves_the_dictionary_alone(store_a):
    card = CustomerFactory(surname="Сазонов", first_name="Ермолай", home_store=store_a)
    NameToken.objects.filter(token="САЗОНОВ").delete()
    Customer.objects.filter(pk=card.pk).update(city="Тверь")
    assert "САЗОНОВ" not in _tokens(NameToken.SURNAME)


def test_deleted_card_leaves_no_result_and_prune_drops_its_names(admin_user, store_a):
    card = CustomerFactory(surname="Зябликов", first_name="Евлампий", home_store=store_a)
    keep = CustomerFactory(surname="Зябликова", first_name="Анна", home_store=store_a)
    card.delete()
    assert ids(admin_user, "Зябликов") == [keep.pk]
    assert name_tokens_prune() >= 2
    assert "ЗЯБЛИКОВ" not in _tokens(NameToken.SURNAME)
    assert "ЕВЛАМПИЙ" not in _tokens(NameToken.FIRST_NAME)
    assert "ЗЯБЛИКОВА" in _tokens(NameToken.SURNAME)


def test_prune_of_named_pairs_leaves_other_unused_names(store_a):
    CustomerFactory(surname="Громыко", first_name="Фрол", home_store=store_a).delete()
    CustomerFactory(surname="Шолохов", first_name="Фрол", home_store=store_a).delete()
    assert name_tokens_prune(names=[(NameToken.SURNAME, fold("Громыко"))]) == 1
    assert "ШОЛОХОВ" in _tokens(NameToken.SURNAME)


def test_merged_away_card_is_not_found_twice(admin_user, store_a):
    from customers.duplicates.merge import customer_merge

    survivor = CustomerFactory(surname="Лапина", first_name="Вера", home_store=store_a)
    other = CustomerFactory(surname="Лапина", first_name="Вера", home_store=store_a)
    customer_merge(actor=admin_user, survivor_id=survivor.pk, absorbed_ids=[other.pk])
    assert ids(admin_user, "Лапна Вера") == [survivor.pk]


def test_name_search_page_query_count(admin_user, base, django_assert_max_num_queries):
    from customers.selectors.listing import ListFilters, customer_page

    # The two permission reads; the dictionary look-up (its planner setting is the database
    # function's own); the capped count; the page, walked in rank order; its tags.
    with django_assert_max_num_queries(6):
        page = customer_page(user=admin_user, filters=ListFilters(query="Иванв Петр"))
    assert page.customers


@pytest.fixture
def crowd(base, store_a, store_b):
    """Many cards sharing a few names, so a short page has to cut through rank groups."""
    firsts = ["Анна", "Иван", "Пётр", "Ольга", "Иванна"]
    made = list(base)
    for i in range(40):
        surname = ["Иванов", "Иванова", "Ивановский", "Петров", "Петрова"][i % 5]
        made.append(
            CustomerFactory(
                surname=surname if i % 7 else surname.upper(),
                first_name=firsts[(i * 3) % 5],
                home_store=store_a if i % 3 else store_b,
            )
        )
    return made


WALK_QUERIES = ["Иван", "иванов", "Иванв Петр", "Петр Иванов", "Ivanova Anna", "Петр", "Анна"]


@pytest.mark.parametrize("query", WALK_QUERIES)
@pytest.mark.parametrize("limit", [1, 3, 7, 50])
def test_walked_page_is_the_head_of_the_full_ranking(admin_user, manager_a, crowd, query, limit):
    for user in (admin_user, manager_a):
        full = ids(user, query)
        page = customer_search(user=user, query=query, limit=limit)
        # The page comes from the walk over the dictionary's cells, not from ranking every card.
        assert "CROSS JOIN LATERAL" in str(page.query)
        assert [c.pk for c in page] == full[:limit]


def test_walked_page_keeps_the_lists_other_filters(admin_user, crowd, store_a):
    from customers.selectors.listing import ListFilters, customer_page

    page = customer_page(
        user=admin_user, filters=ListFilters(query="Иван", store=store_a.pk), page_size=5
    )
    assert len(page.customers) == 5
    assert {c.home_store_id for c in page.customers} == {store_a.pk}
    every = customer_search(user=admin_user, query="Иван").filter(home_store=store_a)
    assert [c.pk for c in page.customers] == [c.pk for c in every[:5]]


def test_name_search_count_stops_at_its_cap(admin_user, crowd, monkeypatch):
    from customers.selectors import listing

    monkeypatch.setattr(listing, "NAME_COUNT_CAP", 5)
    page = listing.customer_page(user=admin_user, filters=listing.ListFilters(query="Иван"))
    assert page.total_capped
    assert page.total == page.cap == 5

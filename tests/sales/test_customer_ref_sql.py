"""The till's calculation finds its customer inside a statement of its own (`customer_ref_sql`,
on `customers.access.lookup_customers_sql`); it must find whom a receipt finds
(`customer_index`, on `lookup_customers`), for every role and every way of naming a customer."""

import pytest
from django.db import connection

from customers.access import lookup_customers, lookup_customers_sql
from customers.duplicates.merge import customer_merge
from sales.apikeys import pos_key_authenticate, pos_key_issue
from sales.ingest.references import customer_index, customer_ref_sql
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

PERSONAS = ("admin_user", "marketer", "manager_a", "manager_b", "associate_a", "outsider", "till")


@pytest.fixture
def people(store_a, store_b, admin_user):
    ours = CustomerFactory(home_store=store_a, card_number="1001", phone_number="+79161110001")
    theirs = CustomerFactory(home_store=store_b, card_number="2002", phone_number="+79161110002")
    absorbed = CustomerFactory(home_store=store_b, card_number="3003", phone_number="+79161110003")
    customer_merge(actor=admin_user, survivor_id=theirs.pk, absorbed_ids=[absorbed.pk])
    return {"ours": ours, "theirs": theirs, "absorbed_id": absorbed.pk}


def _persona(request, name, store_a):
    if name == "till":
        return pos_key_authenticate(pos_key_issue(store=store_a, name="till").raw)
    return request.getfixturevalue(name)


def _references(people) -> list[dict]:
    ours, theirs = people["ours"], people["theirs"]
    return [
        {"customer_id": ours.pk},
        {"customer_id": theirs.pk},
        {"customer_id": people["absorbed_id"]},
        {"customer_id": 10**12},
        {"phone": "+79161110001"},
        {"phone": "+79161110002"},
        {"phone": "+79161110003"},  # moved to the survivor by the merge
        {"phone": "+79160000000"},
        {"card": "1001"},
        {"card": "2002"},
        {"card": "3003"},  # merged: still finds its survivor
        {"card": "nope"},
        {},
    ]


def _by_sql(user, data):
    sql, params = customer_ref_sql(user, data)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {sql}", params)  # noqa: S608 - the function's own SQL
        return cursor.fetchone()[0]


@pytest.mark.parametrize("name", PERSONAS)
def test_the_statement_finds_whom_a_receipt_finds(request, name, people, store_a):
    user = _persona(request, name, store_a)

    for data in _references(people):
        expected, _errors = customer_index(user, [data]).resolve(data)
        assert _by_sql(user, data) == expected, (name, data)


@pytest.mark.parametrize("name", PERSONAS)
def test_the_lookup_condition_is_the_lookup_queryset(request, name, people, store_a):
    user = _persona(request, name, store_a)
    condition, params = lookup_customers_sql(user, "c")

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT c.id FROM customers_customer c WHERE {condition}", params)  # noqa: S608
        found = {row[0] for row in cursor.fetchall()}

    assert found == set(lookup_customers(user).values_list("pk", flat=True))


def test_some_roles_see_only_part_of_the_base(request, people, store_a):
    # The equalities above would hold trivially if every persona saw everyone or nobody.
    counts = {name: len(lookup_customers(_persona(request, name, store_a))) for name in PERSONAS}
    assert counts["outsider"] == 0 and counts["admin_user"] == 2
    assert 0 < counts["manager_b"] < counts["admin_user"]

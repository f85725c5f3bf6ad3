"""How the POS finds customers by phone: a plain IN for a till's few phones, a join on the
array for a batch (with hundreds of numbers in IN the planner picks the trigram index)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from sales.ingest.references import FEW_PHONES, customer_index
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def _phone_queries(admin_user, phones: list[str]) -> tuple[dict, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        index = customer_index(admin_user, [{"phone": p} for p in phones])
    return index.by_phone, [q["sql"] for q in queries if "customerphone" in q["sql"]]


def test_a_batch_of_phones_is_found_through_a_join_on_the_array(admin_user, store_a):
    known = CustomerFactory(home_store=store_a, phone_number="+79161112233")
    phones = ["+79161112233"] + [f"+7916000{n:04d}" for n in range(FEW_PHONES * 3)]

    found, sql = _phone_queries(admin_user, phones)

    assert found == {"+79161112233": known.pk}
    assert len(sql) == 1 and "json_array_elements_text" in sql[0]


def test_a_tills_few_phones_take_one_plain_query(admin_user, store_a):
    known = CustomerFactory(home_store=store_a, phone_number="+79161112233")

    found, sql = _phone_queries(admin_user, ["+79161112233", "+79160000001"])

    assert found == {"+79161112233": known.pk}
    assert len(sql) == 1 and "json_array_elements_text" not in sql[0]

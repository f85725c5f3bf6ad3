"""The till's calculation in two statements: the key, then the customer, account, balance,
rules version and products at once. The answer is the same whichever way the till names the
customer, and a wrong name is the receipt's field error."""

from decimal import Decimal

import pytest

from customers.duplicates.merge import customer_merge
from sales.apikeys import pos_key_issue
from tests.conftest import key_client
from tests.factories import CustomerFactory

from .conftest import give_points, line

pytestmark = pytest.mark.django_db

URL = "/api/v1/loyalty/calculate/"


def _cart(**customer):
    return {
        "lines": [line("DRESS", "2", "500.00"), line("GIFT")],
        "points_wanted": "90",
        **customer,
    }


def test_calculate_takes_the_key_and_one_statement(
    pos, customer, catalogue, django_assert_num_queries
):
    give_points(customer, "100")
    assert pos.post(URL, _cart(card=customer.card_number), format="json").status_code == 200

    with django_assert_num_queries(2):
        response = pos.post(URL, _cart(card=customer.card_number), format="json")

    assert response.status_code == 200
    assert (response.json()["customer_id"], response.json()["redeemed"]) == (customer.pk, "90.00")


def test_every_way_of_naming_the_customer_gives_the_same_answer(
    pos, customer, catalogue, admin_user, store_b
):
    give_points(customer, "100")
    old = CustomerFactory(home_store=store_b, card_number="9009", phone_number="+79169990009")
    customer_merge(actor=admin_user, survivor_id=customer.pk, absorbed_ids=[old.pk])

    answers = [
        pos.post(URL, _cart(**ref), format="json").json()
        for ref in (
            {"card": customer.card_number},
            {"card": "9009"},  # the absorbed card still finds its survivor
            {"customer_id": customer.pk},
            {"phone": "+7 916 123-00-01"},
            {"phone": "+79169990009"},  # the absorbed card's phone moved to the survivor
        )
    ]

    assert {a["customer_id"] for a in answers} == {customer.pk}
    assert all(a == answers[0] for a in answers)
    assert answers[0]["available"] == "100.00" and answers[0]["earned"] != "0.00"


@pytest.mark.parametrize(
    "ref",
    [{"customer_id": 10**12}, {"phone": "+79160000000"}, {"card": "none-such"}],
)
def test_naming_nobody_is_the_field_error_of_a_receipt(pos, catalogue, ref):
    response = pos.post(URL, _cart(**ref), format="json")

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == list(ref)


def test_a_catalogue_key_may_not_calculate(store_a, customer, catalogue):
    # The chain's product system sees nobody and sells nothing (sales.apikeys).
    client = key_client(pos_key_issue(store=store_a, name="ERP", kind="catalogue").raw)

    response = client.post(URL, _cart(card=customer.card_number), format="json")

    assert response.status_code == 403
    assert customer.card_number not in response.content.decode()


@pytest.mark.parametrize(
    "name", ["admin_user", "marketer", "manager_a", "manager_b", "associate_a", "outsider"]
)
def test_staff_calculate_through_the_prepared_statement_of_their_scope(
    request, name, customer, catalogue
):
    # Each role's scope is another statement text (a store manager's has parameters whose
    # types PostgreSQL infers): run each twice, the second time from this session's PREPARE.
    from django.core.exceptions import ValidationError
    from django.utils import timezone

    from loyalty.selectors import cart_calculation
    from sales.ingest.references import customer_index

    user = request.getfixturevalue(name)
    data = {"customer_id": customer.pk, "lines": [line("DRESS")], "points_wanted": 0}
    expected, _errors = customer_index(user, [data]).resolve(data)
    data["lines"][0].update(quantity=Decimal(1), unit_price=Decimal(1000), discount=Decimal(0))

    for _ in range(2):
        try:
            found = cart_calculation(user=user, data=data, at=timezone.now())["customer_id"]
        except ValidationError as error:
            assert "customer_id" in error.message_dict
            found = None
        assert found == expected

"""POST /api/v1/returns/: idempotent, bounded by what was bought, scoped to the key's store."""

import copy
from decimal import Decimal

import pytest

from sales.models import Return, ReturnLine
from tests.conftest import receipt_payload
from tests.factories import CustomerFactory

URL = "/api/v1/returns/"

pytestmark = pytest.mark.django_db


@pytest.fixture
def sale(pos_a):
    payload = receipt_payload("S-1")
    assert pos_a.post("/api/v1/receipts/", payload, format="json").status_code == 201
    return payload


def return_payload(sale, pos_id="RT-1", lines=None):
    return {
        "pos_return_id": pos_id,
        "pos_receipt_id": sale["pos_receipt_id"],
        "returned_at": sale["purchased_at"],
        "lines": lines or [{"line_no": 2, "quantity": "1"}],
    }


def test_return_is_stored_with_refund_at_the_line_price(pos_a, sale):
    response = pos_a.post(URL, return_payload(sale), format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["amount"] == "990.00"
    assert body["lines"] == [{"line_no": 2, "quantity": "1.000", "amount": "990.00"}]
    assert ReturnLine.objects.get().amount == Decimal("990.00")


def test_same_return_twice_is_200_and_stored_once(pos_a, sale):
    payload = return_payload(sale)
    first = pos_a.post(URL, payload, format="json")
    again = pos_a.post(URL, copy.deepcopy(payload), format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert Return.objects.count() == 1


def test_same_return_id_with_other_lines_is_409(pos_a, sale):
    pos_a.post(URL, return_payload(sale), format="json")

    response = pos_a.post(
        URL, return_payload(sale, lines=[{"line_no": 1, "quantity": "1"}]), format="json"
    )

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"


def test_returning_more_than_bought_over_all_returns_is_400(pos_a, sale):
    assert pos_a.post(URL, return_payload(sale, "RT-1"), format="json").status_code == 201

    response = pos_a.post(
        URL, return_payload(sale, "RT-2", [{"line_no": 2, "quantity": "2"}]), format="json"
    )

    assert response.status_code == 400
    assert "lines[0]" in response.json()["error"]["fields"]
    assert Return.objects.count() == 1


def test_return_for_receipt_of_another_store_is_400(pos_b, sale):
    response = pos_b.post(URL, return_payload(sale), format="json")

    assert response.status_code == 400
    assert "pos_receipt_id" in response.json()["error"]["fields"]
    assert not Return.objects.exists()


def test_unknown_line_is_400(pos_a, sale):
    response = pos_a.post(
        URL, return_payload(sale, lines=[{"line_no": 9, "quantity": "1"}]), format="json"
    )
    assert response.status_code == 400


def test_return_of_customer_purchase_schedules_metrics_after_commit(
    pos_a, store_a, django_capture_on_commit_callbacks, celery_queue
):
    customer = CustomerFactory(home_store=store_a, card_number="77")
    sale = receipt_payload("S-2", card="77")
    pos_a.post("/api/v1/receipts/", sale, format="json")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert pos_a.post(URL, return_payload(sale), format="json").status_code == 201
    assert celery_queue() == []
    for callback in callbacks:
        callback()

    assert celery_queue() == [("analytics.tasks.refresh_customer_metrics", f"({customer.pk},)")]

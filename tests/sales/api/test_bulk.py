"""POST /api/v1/receipts/bulk/: per-receipt outcome, set-based cost, idempotency across batches."""

import copy

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from analytics.tasks import refresh_customers_metrics
from sales.models import Product, Receipt, ReceiptLine
from tests.conftest import receipt_payload
from tests.factories import CustomerFactory

URL = "/api/v1/receipts/bulk/"

pytestmark = pytest.mark.django_db


def batch(n: int, start: int = 0, **overrides) -> list[dict]:
    return [receipt_payload(f"B-{start + i:05d}", **overrides) for i in range(n)]


def test_bulk_reports_created_duplicate_and_error_in_order(pos_a):
    pos_a.post("/api/v1/receipts/", receipt_payload("B-00001"), format="json")
    receipts = batch(3)
    receipts[1] = receipt_payload("B-00001")  # already stored, same content
    receipts[1]["purchased_at"] = Receipt.objects.get().purchased_at.isoformat()
    receipts[2]["total"] = "1.00"

    response = pos_a.post(URL, {"receipts": receipts}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert [r["status"] for r in body["results"]] == ["created", "duplicate", "error"]
    assert (body["created"], body["duplicate"], body["error"]) == (1, 1, 1)
    assert body["results"][2]["error"]["fields"]["total"]
    assert body["results"][1]["id"] == Receipt.objects.get(pos_receipt_id="B-00001").pk
    assert Receipt.objects.count() == 2
    assert ReceiptLine.objects.count() == 4


def test_bad_receipt_does_not_take_the_batch_down(pos_a):
    receipts = batch(4)
    receipts[0]["lines"][0]["quantity"] = "-1"
    receipts[2] = {"pos_receipt_id": "X", "surprise": True}

    body = pos_a.post(URL, {"receipts": receipts}, format="json").json()

    assert [r["status"] for r in body["results"]] == ["error", "created", "error", "created"]
    assert "lines[0].quantity" in body["results"][0]["error"]["fields"]
    assert body["results"][2]["error"]["fields"]["surprise"] == ["Unknown field."]
    assert set(Receipt.objects.values_list("pos_receipt_id", flat=True)) == {"B-00001", "B-00003"}


def test_posting_the_same_batch_again_stores_nothing_new(pos_a):
    receipts = batch(5)
    first = pos_a.post(URL, {"receipts": receipts}, format="json").json()

    again = pos_a.post(URL, {"receipts": copy.deepcopy(receipts)}, format="json").json()

    assert again["duplicate"] == 5
    assert [r["id"] for r in again["results"]] == [r["id"] for r in first["results"]]
    assert Receipt.objects.count() == 5


def test_changed_receipt_in_a_later_batch_is_a_conflict(pos_a):
    receipts = batch(2)
    pos_a.post(URL, {"receipts": receipts}, format="json")
    receipts[1]["payment_method"] = "cash"

    body = pos_a.post(URL, {"receipts": receipts}, format="json").json()

    assert [r["status"] for r in body["results"]] == ["duplicate", "error"]
    assert body["results"][1]["error"]["code"] == "conflict"
    assert Receipt.objects.get(pos_receipt_id="B-00001").payment_method == "card"


def test_same_pos_id_twice_in_one_batch_is_stored_once(pos_a):
    receipts = batch(1) * 2
    changed = copy.deepcopy(receipts[0])
    changed["payment_method"] = "cash"
    receipts.append(changed)

    body = pos_a.post(URL, {"receipts": receipts}, format="json").json()

    assert [r["status"] for r in body["results"]] == ["created", "duplicate", "error"]
    assert Receipt.objects.count() == 1


def test_customers_products_resolved_and_created_once(pos_a, store_a):
    customer = CustomerFactory(home_store=store_a, phone_number="+79161234567")
    receipts = batch(3, phone="+7 916 123 45 67")

    body = pos_a.post(URL, {"receipts": receipts}, format="json").json()

    assert body["created"] == 3
    assert set(Receipt.objects.values_list("customer_id", flat=True)) == {customer.pk}
    assert Product.objects.count() == 2
    assert ReceiptLine.objects.filter(amount__isnull=True).count() == 0


def test_bulk_schedules_its_customers_refresh_in_one_message_after_commit(
    pos_a, store_a, django_capture_on_commit_callbacks, celery_queue
):
    first = CustomerFactory(home_store=store_a, card_number="1")
    second = CustomerFactory(home_store=store_a, card_number="2")
    receipts = [*batch(2, card="1"), *batch(1, start=10, card="2"), *batch(1, start=20)]

    with django_capture_on_commit_callbacks(execute=True):
        assert pos_a.post(URL, {"receipts": receipts}, format="json").json()["created"] == 4

    # One broker message for the batch, fanned out by the worker.
    ids = sorted([first.pk, second.pk])
    assert celery_queue() == [("analytics.tasks.refresh_customers_metrics", f"({ids!r},)")]
    refresh_customers_metrics(ids)  # what the worker runs
    assert celery_queue()[1:] == [
        ("analytics.tasks.refresh_customer_metrics", f"({pk},)") for pk in ids
    ]


def test_bulk_query_count_does_not_grow_with_batch_size(pos_a, store_a):
    for n in range(5):
        CustomerFactory(home_store=store_a, card_number=f"C{n}")

    def queries_for(receipts) -> int:
        with CaptureQueriesContext(connection) as captured:
            body = pos_a.post(URL, {"receipts": receipts}, format="json").json()
        assert body["created"] == len(receipts), body["results"][:2]
        return len(captured)

    # Categories are created once per new path, whatever the batch size: warm them up.
    queries_for([receipt_payload("W-1")])
    small = [receipt_payload(f"S-{i}", card=f"C{i % 5}") for i in range(5)]
    small[0]["lines"][0]["sku"] = "NEW-S"
    large = [receipt_payload(f"L-{i}", card=f"C{i % 5}") for i in range(400)]
    for i, receipt in enumerate(large):
        receipt["lines"][0]["sku"] = f"NEW-{i}"  # 400 new products as well

    assert queries_for(large) == queries_for(small)
    assert queries_for([receipt_payload(f"M-{i}") for i in range(200)]) <= 15


def test_envelope_errors_are_400(pos_a):
    assert pos_a.post(URL, [], format="json").status_code == 400
    assert pos_a.post(URL, {"receipts": []}, format="json").status_code == 400
    too_many = pos_a.post(URL, {"receipts": [{}] * 1001}, format="json")
    assert too_many.status_code == 400
    assert "receipts" in too_many.json()["error"]["fields"]


def test_session_user_cannot_post_bulk(api_client, manager_a):
    api_client.force_authenticate(manager_a)
    assert api_client.post(URL, {"receipts": batch(1)}, format="json").status_code == 403

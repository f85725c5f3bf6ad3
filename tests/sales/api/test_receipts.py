"""POST /api/v1/receipts/: storing, idempotency, validation, store scoping, metrics scheduling."""

import copy
from decimal import Decimal

import pytest

from customers.models import LifecycleStage
from sales.models import Category, Product, Receipt, ReceiptLine
from tests.conftest import receipt_payload
from tests.factories import CustomerFactory, ProductFactory

URL = "/api/v1/receipts/"

pytestmark = pytest.mark.django_db


def test_pos_key_stores_receipt_with_lines_for_its_store(pos_a, store_a):
    response = pos_a.post(URL, receipt_payload(), format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    receipt = Receipt.objects.get()
    assert body["id"] == receipt.pk
    assert body["store"] == store_a.code
    assert receipt.store == store_a
    assert receipt.total == Decimal("6470.00")
    assert body["total"] == "6470.00"
    assert [line["amount"] for line in body["lines"]] == ["4490.00", "1980.00"]
    assert ReceiptLine.objects.filter(receipt=receipt).count() == 2


def test_unknown_skus_with_name_are_created_in_their_category(pos_a):
    pos_a.post(URL, receipt_payload(), format="json")

    dress = Product.objects.get(sku="DRESS-001")
    assert dress.name == "Платье льняное"
    assert dress.category.path == "Одежда/Платья"
    assert Category.objects.get(path="Одежда").parent is None
    assert Product.objects.get(sku="SCARF-17").category is None


def test_unknown_sku_without_name_is_400_and_nothing_is_stored(pos_a):
    payload = receipt_payload()
    del payload["lines"][1]["name"]

    response = pos_a.post(URL, payload, format="json")

    assert response.status_code == 400
    assert "lines[1].sku" in response.json()["error"]["fields"]
    assert not Receipt.objects.exists()
    assert not Product.objects.exists()


def test_known_sku_takes_catalogue_cost_when_unit_cost_is_omitted(pos_a):
    ProductFactory(sku="DRESS-001", cost=Decimal("2100.00"))
    pos_a.post(URL, receipt_payload(), format="json")

    line = ReceiptLine.objects.get(product__sku="DRESS-001")
    assert line.unit_cost == Decimal("2100.00")


def test_same_receipt_twice_is_200_with_same_body_and_stored_once(pos_a):
    payload = receipt_payload()
    first = pos_a.post(URL, payload, format="json")

    again = pos_a.post(URL, copy.deepcopy(payload), format="json")

    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json() == first.json()
    assert Receipt.objects.count() == 1
    assert ReceiptLine.objects.count() == 2


def test_same_content_spelled_differently_is_still_a_retry(pos_a):
    payload = receipt_payload()
    pos_a.post(URL, payload, format="json")
    respelled = copy.deepcopy(payload)
    respelled["lines"][0]["quantity"] = "1.000"
    respelled["lines"][0]["unit_price"] = 4990

    assert pos_a.post(URL, respelled, format="json").status_code == 200


def test_same_pos_id_with_different_content_is_409(pos_a):
    payload = receipt_payload()
    first = pos_a.post(URL, payload, format="json")
    changed = copy.deepcopy(payload)
    changed["lines"][1]["quantity"] = "3"
    changed["total"] = "7460.00"

    response = pos_a.post(URL, changed, format="json")

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "conflict"
    assert error["existing_id"] == first.json()["id"]
    assert Receipt.objects.get().total == Decimal("6470.00")


def test_same_pos_id_in_two_stores_are_two_receipts(pos_a, pos_b):
    payload = receipt_payload()
    assert pos_a.post(URL, payload, format="json").status_code == 201
    assert pos_b.post(URL, payload, format="json").status_code == 201
    assert Receipt.objects.count() == 2


def test_lines_must_add_up_to_total_to_the_kopeck(pos_a):
    response = pos_a.post(URL, receipt_payload(total="6470.01"), format="json")

    assert response.status_code == 400
    assert "total" in response.json()["error"]["fields"]
    assert not Receipt.objects.exists()


def test_key_of_store_a_cannot_write_receipt_for_store_b(pos_a, store_a, store_b):
    # The store comes from the key only; naming another store is an unknown field.
    response = pos_a.post(URL, receipt_payload(store=store_b.code), format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["store"] == ["Unknown field."]
    assert not Receipt.objects.filter(store=store_b).exists()


def test_customer_by_phone_in_any_format_is_attached_and_becomes_customer(pos_a, store_b):
    customer = CustomerFactory(home_store=store_b, phone_number="+79161234567")
    assert customer.lifecycle_stage == LifecycleStage.LEAD

    response = pos_a.post(URL, receipt_payload(phone="8 (916) 123-45-67"), format="json")

    assert response.status_code == 201
    assert response.json()["customer_id"] == customer.pk
    customer.refresh_from_db()
    assert customer.lifecycle_stage == LifecycleStage.CUSTOMER


def test_customer_by_card_and_by_id(pos_a, store_a):
    customer = CustomerFactory(home_store=store_a, card_number="7700123")

    by_card = pos_a.post(URL, receipt_payload("R-1", card="7700123"), format="json")
    by_id = pos_a.post(URL, receipt_payload("R-2", customer_id=customer.pk), format="json")

    assert by_card.json()["customer_id"] == customer.pk
    assert by_id.json()["customer_id"] == customer.pk


def test_unknown_customer_phone_is_400(pos_a):
    response = pos_a.post(URL, receipt_payload(phone="+79990001122"), format="json")

    assert response.status_code == 400
    assert "phone" in response.json()["error"]["fields"]


def test_storing_receipt_schedules_metrics_refresh_after_commit(
    pos_a, store_a, django_capture_on_commit_callbacks, celery_queue
):
    customer = CustomerFactory(home_store=store_a, card_number="42")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = pos_a.post(URL, receipt_payload(card="42"), format="json")
        assert response.status_code == 201
        assert celery_queue() == []  # nothing reaches the broker before the commit
    for callback in callbacks:
        callback()

    assert celery_queue() == [("analytics.tasks.refresh_customer_metrics", f"({customer.pk},)")]


def test_rejected_receipt_schedules_nothing(pos_a, store_a, django_capture_on_commit_callbacks):
    CustomerFactory(home_store=store_a, card_number="42")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = pos_a.post(URL, receipt_payload(card="42", total="1.00"), format="json")

    assert response.status_code == 400
    assert callbacks == []


def test_anonymous_receipt_schedules_nothing(pos_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert pos_a.post(URL, receipt_payload(), format="json").status_code == 201
    assert callbacks == []


def test_session_user_cannot_post_receipts(api_client, admin_user):
    api_client.force_authenticate(admin_user)

    response = api_client.post(URL, receipt_payload(), format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"

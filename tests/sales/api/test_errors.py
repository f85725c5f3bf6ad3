"""Bad input is a 400 (or 413) in the one error format, never a 500, and nothing is stored."""

import datetime as dt
import json

import pytest

from sales.models import Receipt
from tests.conftest import receipt_payload

URL = "/api/v1/receipts/"

pytestmark = pytest.mark.django_db


def post_raw(client, body: bytes, url: str = URL):
    return client.generic("POST", url, body, content_type="application/json")


def assert_error(response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.content[:500]
    error = response.json()["error"]
    assert set(error) >= {"code", "message", "fields"}
    if field is not None:
        assert field in error["fields"], error["fields"]
    return error


def test_malformed_json_is_400(pos_a):
    error = assert_error(post_raw(pos_a, b'{"pos_receipt_id": '), 400)
    assert error["code"] == "parse_error"


def test_deeply_nested_json_is_400_not_a_crash(pos_a):
    assert_error(post_raw(pos_a, b"[" * 100_000 + b"]" * 100_000), 400)


def test_nan_is_rejected(pos_a):
    body = json.dumps(receipt_payload()).replace('"6470.00"', "NaN").encode()
    assert_error(post_raw(pos_a, body), 400)


def test_ten_megabyte_string_is_413(pos_a):
    body = json.dumps(receipt_payload(pos_receipt_id="x" * 10_000_000)).encode()
    error = assert_error(post_raw(pos_a, body), 413)
    assert error["code"] == "too_large"


def test_declared_length_over_the_limit_is_413(pos_a, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"receipts": [receipt_payload(f"R-{i}") for i in range(20)]}).encode()
    assert_error(post_raw(pos_a, body, "/api/v1/receipts/bulk/"), 413)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda p: p["lines"][0].update(quantity="1000000000000"), "lines[0].quantity"),
        (lambda p: p["lines"][0].update(quantity="0"), "lines[0].quantity"),
        (lambda p: p["lines"][0].update(quantity="-1"), "lines[0].quantity"),
        (lambda p: p["lines"][0].update(unit_price="-5.00"), "lines[0].unit_price"),
        (lambda p: p["lines"][0].update(unit_price="10000000000"), "lines[0].unit_price"),
        (lambda p: p["lines"][0].update(discount="99999.00"), "lines[0].discount"),
        (lambda p: p["lines"][0].update(colour="red"), "lines[0].colour"),
        (lambda p: p["lines"][0].update(sku="S" * 65), "lines[0].sku"),
        (lambda p: p["lines"][0].update(sku="A\x00B"), "lines[0].sku"),
        (lambda p: p.update(purchased_at="3000-01-01T10:00:00+03:00"), "purchased_at"),
        (lambda p: p.update(purchased_at="1999-12-31T10:00:00+03:00"), "purchased_at"),
        (lambda p: p.update(purchased_at="2025-01-01T10:00:00"), "purchased_at"),
        (lambda p: p.update(purchased_at=12345), "purchased_at"),
        (
            lambda p: p.update(
                purchased_at=(dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).isoformat()
            ),
            "purchased_at",
        ),
        (lambda p: p.update(lines="abc"), "lines"),
        (lambda p: p.update(lines=[]), "lines"),
        (lambda p: p.update(total=True), "total"),
        (lambda p: p.update(customer_id=10**30), "customer_id"),
        (lambda p: p.update(phone="not a phone"), "phone"),
        (lambda p: p.update(phone="+79161234567", card="1"), "card"),
        (lambda p: p.update(payment_method="gold"), "payment_method"),
        (lambda p: p.update(pos_receipt_id="R" * 65), "pos_receipt_id"),
        (lambda p: p.pop("total"), "total"),
        (lambda p: p.update(extra={"a": 1}), "extra"),
    ],
)
def test_absurd_or_wrong_input_is_400_with_field_message(pos_a, change, field):
    payload = receipt_payload()
    change(payload)

    assert_error(pos_a.post(URL, payload, format="json"), 400, field)
    assert not Receipt.objects.exists()


def test_body_that_is_not_an_object_is_400(pos_a):
    assert_error(post_raw(pos_a, b"[1, 2]"), 400)
    assert_error(post_raw(pos_a, b'"text"'), 400)


def test_other_content_types_are_415(pos_a):
    response = pos_a.generic("POST", URL, b"a=1", content_type="application/x-www-form-urlencoded")
    assert_error(response, 415)


def test_wrong_method_is_405_in_the_error_format(pos_a):
    assert_error(pos_a.get(URL), 405)

"""The bulk fast path must agree with ReceiptInputSerializer on every input it accepts."""

import copy
import random
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework import serializers

from sales.api.fastpath import receipt_fast
from sales.api.serializers import ReceiptInputSerializer
from tests.conftest import receipt_payload

VARIANTS = [
    lambda p: None,
    lambda p: p.update(card="7700001"),
    lambda p: p.update(phone="8 (916) 123-45-67"),
    lambda p: p.update(customer_id=42),
    lambda p: p.update(purchased_at="2025-03-08T14:05:00Z"),
    lambda p: p.update(payment_method="cash", channel="online"),
    lambda p: p["lines"][0].update(quantity=Decimal("1.000"), unit_price=4990, discount=500),
    lambda p: p["lines"][0].update(unit_cost=None, category="Одежда / Платья"),
    lambda p: p["lines"][1].pop("name"),
]

MUTATIONS = [
    lambda p: p.update(total="6470.001"),
    lambda p: p.update(pos_receipt_id=" padded "),
    lambda p: p.update(purchased_at="2025-03-08 14:05"),
    lambda p: p.update(customer_id=True),
    lambda p: p.update(customer_id="42"),
    lambda p: p.update(card="1", phone="+79161234567"),
    lambda p: p["lines"][0].update(quantity="1e3"),
    lambda p: p["lines"][0].update(quantity=" 1 "),
    lambda p: p["lines"][0].update(unit_price="4_990"),
    lambda p: p["lines"][0].update(discount=None),
    lambda p: p["lines"][0].update(sku=123),
    lambda p: p["lines"][0].update(name="x" * 301),
    lambda p: p.update(lines=p["lines"] * 300),
    lambda p: p.update(extra=1),
]


def serializer_result(payload):
    try:
        return ReceiptInputSerializer().run_validation(copy.deepcopy(payload))
    except serializers.ValidationError:
        return "invalid"


def check_agreement(payload) -> bool:
    fast = receipt_fast(copy.deepcopy(payload), timezone.now())
    if fast is None:
        return False
    assert dict(serializer_result(payload)) == fast
    return True


@pytest.mark.parametrize("variant", range(len(VARIANTS)))
def test_fast_path_accepts_clean_receipts_exactly_as_the_serializer(variant):
    payload = receipt_payload()
    VARIANTS[variant](payload)
    assert check_agreement(payload)


def test_fast_path_never_accepts_what_the_serializer_rejects_or_would_change():
    rng = random.Random(7)
    accepted = 0
    for _ in range(300):
        payload = receipt_payload()
        for mutation in rng.sample(VARIANTS + MUTATIONS, 3):
            try:
                mutation(payload)
            except (KeyError, IndexError):
                pass
        accepted += check_agreement(payload)
    assert accepted > 20  # the fast path did take part


def cart_payload() -> dict:
    payload = receipt_payload()
    return {"lines": payload["lines"], "points_wanted": "100"}


CART_VARIANTS = [
    lambda p: None,
    lambda p: p.update(card="7700001"),
    lambda p: p.update(phone="8 (916) 123-45-67"),
    lambda p: p.update(customer_id=42),
    lambda p: p.update(purchased_at="2025-03-08T14:05:00+03:00"),
    lambda p: p.pop("points_wanted"),
    lambda p: p.update(points_wanted=0),
    lambda p: p["lines"][0].update(quantity=Decimal("2.000"), unit_price=4990, discount=500),
]

CART_MUTATIONS = [
    lambda p: p.update(points_wanted="-1"),
    lambda p: p.update(points_wanted="1.001"),
    lambda p: p.update(points_wanted=None),
    lambda p: p.update(card="1", customer_id=42),
    lambda p: p.update(purchased_at="2025-03-08 14:05"),
    lambda p: p.update(lines=[]),
    lambda p: p.update(total="1.00"),
    lambda p: p["lines"][0].update(quantity="0"),
]


def check_cart_agreement(payload) -> bool:
    from loyalty.api import CalculateInputSerializer
    from sales.api.fastpath import cart_fast

    fast = cart_fast(copy.deepcopy(payload), timezone.now())
    if fast is None:
        return False
    try:
        slow = dict(CalculateInputSerializer().run_validation(copy.deepcopy(payload)))
    except serializers.ValidationError:
        slow = "invalid"
    assert slow == fast
    return True


@pytest.mark.parametrize("variant", range(len(CART_VARIANTS)))
def test_cart_fast_path_accepts_clean_carts_exactly_as_the_serializer(variant):
    payload = cart_payload()
    CART_VARIANTS[variant](payload)
    assert check_cart_agreement(payload)


def test_cart_fast_path_never_accepts_what_the_serializer_rejects_or_would_change():
    rng = random.Random(11)
    accepted = 0
    for _ in range(300):
        payload = cart_payload()
        for mutation in rng.sample(CART_VARIANTS + CART_MUTATIONS + MUTATIONS[6:12], 3):
            try:
                mutation(payload)
            except (KeyError, IndexError):
                pass
        accepted += check_cart_agreement(payload)
    assert accepted > 20

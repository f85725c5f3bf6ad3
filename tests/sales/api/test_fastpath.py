"""The bulk fast path must agree with ReceiptInputSerializer on every input it accepts."""

import copy
import random
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework import serializers

from loyalty.api import CalculateInputSerializer
from sales.api.fastpath import cart_fast, receipt_fast
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
    lambda p: p.update(card="7700001", points_redeemed="100.00"),
    lambda p: p.update(customer_id=42, points_redeemed=6470),
    lambda p: p.update(points_redeemed="0"),
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
    lambda p: p.update(points_redeemed="10"),  # no customer named (unless another mutation does)
    lambda p: p.update(points_redeemed="6470.01"),
    lambda p: p.update(points_redeemed="-1"),
    lambda p: p.update(points_redeemed="1.001"),
    lambda p: p.update(points_redeemed=None),
    lambda p: p.update(points_redeemed=1.5),
]


def agrees(fast, serializer_class, payload) -> bool:
    """Whether `fast` accepted `payload`; when it did, its answer must be the serializer's."""
    got = fast(copy.deepcopy(payload), timezone.now())
    if got is None:
        return False
    try:
        slow = dict(serializer_class().run_validation(copy.deepcopy(payload)))
    except serializers.ValidationError:
        slow = "invalid"
    assert slow == got
    return True


def accepted_among(fast, serializer_class, make, mutations, seed: int) -> int:
    """300 payloads of `make`, three random `mutations` each: how many `fast` accepted (each
    checked against the serializer)."""
    rng = random.Random(seed)
    accepted = 0
    for _ in range(300):
        payload = make()
        for mutation in rng.sample(mutations, 3):
            try:
                mutation(payload)
            except (KeyError, IndexError):
                pass
        accepted += agrees(fast, serializer_class, payload)
    return accepted


@pytest.mark.parametrize("variant", range(len(VARIANTS)))
def test_fast_path_accepts_clean_receipts_exactly_as_the_serializer(variant):
    payload = receipt_payload()
    VARIANTS[variant](payload)
    assert agrees(receipt_fast, ReceiptInputSerializer, payload)


def test_fast_path_never_accepts_what_the_serializer_rejects_or_would_change():
    accepted = accepted_among(
        receipt_fast, ReceiptInputSerializer, receipt_payload, VARIANTS + MUTATIONS, seed=7
    )
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


@pytest.mark.parametrize("variant", range(len(CART_VARIANTS)))
def test_cart_fast_path_accepts_clean_carts_exactly_as_the_serializer(variant):
    payload = cart_payload()
    CART_VARIANTS[variant](payload)
    assert agrees(cart_fast, CalculateInputSerializer, payload)


def test_cart_fast_path_never_accepts_what_the_serializer_rejects_or_would_change():
    mutations = CART_VARIANTS + CART_MUTATIONS + MUTATIONS[6:12]  # the line mutations
    accepted = accepted_among(cart_fast, CalculateInputSerializer, cart_payload, mutations, seed=11)
    assert accepted > 20

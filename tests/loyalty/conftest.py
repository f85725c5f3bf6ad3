"""Loyalty fixtures: a till of store A, a known customer, catalogue rules, and helpers that
drive the real POS API (receipts, returns) so points go through the receipt's transaction."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from loyalty import services
from loyalty.models import Account, Entry, Programme
from sales.apikeys import pos_key_issue
from tests.conftest import key_client
from tests.factories import CategoryFactory, CustomerFactory, ProductFactory


@pytest.fixture(autouse=True)
def english(settings):
    settings.LANGUAGE_CODE = "en"


@pytest.fixture(autouse=True)
def fresh_rules():
    # The calculation caches the rules per process; a test's rolled-back rules must not leak.
    from loyalty.rules import rulebook_forget

    rulebook_forget()
    yield
    rulebook_forget()


@pytest.fixture
def pos_key(store_a):
    return pos_key_issue(store=store_a, name="till 1")


@pytest.fixture
def pos(pos_key):
    return key_client(pos_key.raw)


@pytest.fixture
def customer(store_a):
    return CustomerFactory(home_store=store_a, card_number="7700001", phone_number="+79161230001")


@pytest.fixture
def catalogue(db):
    clothes = CategoryFactory(name="Одежда")
    food = CategoryFactory(name="Табак")
    return {
        "dress": ProductFactory(sku="DRESS", category=clothes, price=Decimal("1000")),
        "tobacco": ProductFactory(sku="TOBACCO", category=food, price=Decimal("200")),
        "gift": ProductFactory(sku="GIFT", category=clothes, price=Decimal("500")),
    }


def line(sku: str, quantity="1", price="1000.00", discount="0"):
    return {"sku": sku, "quantity": quantity, "unit_price": price, "discount": discount}


def receipt(pos_id: str, lines: list[dict], *, customer=None, points=None, at=None) -> dict:
    total = sum(
        Decimal(x["quantity"]) * Decimal(x["unit_price"]) - Decimal(x["discount"]) for x in lines
    )
    payload = {
        "pos_receipt_id": pos_id,
        "purchased_at": (at or timezone.now() - dt.timedelta(minutes=5)).isoformat(),
        "lines": lines,
        "total": str(total.quantize(Decimal("0.01"))),
    }
    if customer is not None:
        payload["customer_id"] = customer.pk
    if points is not None:
        payload["points_redeemed"] = str(points)
    return payload


def return_line(pos, pos_return_id: str, pos_receipt_id: str, quantity: str = "1"):
    """The till returns `quantity` of a receipt's first line now; the API's response."""
    return pos.post(
        "/api/v1/returns/",
        {
            "pos_return_id": pos_return_id,
            "pos_receipt_id": pos_receipt_id,
            "returned_at": timezone.now().isoformat(),
            "lines": [{"line_no": 1, "quantity": quantity}],
        },
        format="json",
    )


def give_points(customer, amount: str) -> None:
    """Available points without a receipt: an adjustment by a system actor."""
    services.points_adjust(actor=None, customer=customer, amount=Decimal(amount), reason="test")


def assert_ledger_consistent() -> None:
    """Every account's columns equal the sums of its rows, and none is negative."""
    for account in Account.objects.all():
        totals = services.ledger_totals(account.pk)
        assert account.available == totals["available"], account
        assert account.pending == totals["pending"], account
        assert account.debt == totals["debt"], account
        assert account.available >= 0 and account.pending >= 0 and account.debt >= 0


@pytest.fixture
def programme(db):
    return Programme.objects.get(pk=1)


__all__ = ["Entry", "assert_ledger_consistent", "give_points", "line", "receipt", "return_line"]

"""Money stays exact, line margins, totals, and returns that never exceed what was bought."""

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Sum
from django.utils import translation

from sales.models import Receipt, ReceiptLine, ReturnLine
from sales.services import LineInput, receipt_record, return_record
from tests.factories import CustomerFactory, ProductFactory, StoreFactory

pytestmark = pytest.mark.django_db
WHEN = dt.datetime(2026, 3, 5, 12, 30, tzinfo=dt.UTC)


@pytest.fixture
def product():
    return ProductFactory(price=Decimal("199.90"), cost=Decimal("120.35"))


def test_money_is_exact_to_the_kopeck(product):
    store = StoreFactory()
    lines = [LineInput(product, Decimal("3"), Decimal("0.10")) for _ in range(10)]
    receipt = receipt_record(
        store=store, pos_receipt_id="1", purchased_at=WHEN, lines=lines, total=Decimal("3.00")
    )
    receipt.refresh_from_db()
    assert receipt.total == Decimal("3.00")  # a float sum would give 3.0000000000000004
    assert ReceiptLine.objects.aggregate(s=Sum("amount"))["s"] == Decimal("3.00")


def test_line_margin_is_amount_minus_cost(product):
    receipt = receipt_record(
        store=StoreFactory(),
        pos_receipt_id="2",
        purchased_at=WHEN,
        lines=[LineInput(product, Decimal("2"), Decimal("199.90"), discount=Decimal("19.90"))],
    )
    line = receipt.lines.get()
    assert line.amount == Decimal("379.90")
    assert line.unit_cost == Decimal("120.35")  # catalogue cost copied at the time of sale
    assert line.margin == Decimal("139.20")


def test_weighted_quantity_rounds_to_kopecks(product):
    receipt = receipt_record(
        store=StoreFactory(),
        pos_receipt_id="3",
        purchased_at=WHEN,
        lines=[LineInput(product, Decimal("0.333"), Decimal("100.00"), unit_cost=Decimal("50"))],
    )
    line = receipt.lines.get()
    assert (line.amount, line.margin) == (Decimal("33.30"), Decimal("16.65"))


def test_lines_must_add_up_to_the_total(product):
    with pytest.raises(ValidationError) as exc:
        receipt_record(
            store=StoreFactory(),
            pos_receipt_id="4",
            purchased_at=WHEN,
            lines=[LineInput(product, Decimal("1"), Decimal("199.90"))],
            total=Decimal("199.91"),
        )
    assert "total" in exc.value.message_dict
    assert not Receipt.objects.exists()


@pytest.mark.parametrize(
    "line",
    [
        {"quantity": Decimal("0"), "unit_price": Decimal("1")},
        {"quantity": Decimal("-1"), "unit_price": Decimal("1")},
        {"quantity": Decimal("1"), "unit_price": Decimal("-1")},
        {"quantity": Decimal("1"), "unit_price": Decimal("1"), "discount": Decimal("2")},
    ],
)
def test_bad_lines_are_refused_and_nothing_is_written(product, line):
    with pytest.raises(ValidationError):
        receipt_record(
            store=StoreFactory(),
            pos_receipt_id="5",
            purchased_at=WHEN,
            lines=[LineInput(product, **line)],
        )
    assert not Receipt.objects.exists()


def test_first_receipt_turns_a_lead_into_a_customer(product):
    customer = CustomerFactory(lifecycle_stage="lead")
    receipt_record(
        store=StoreFactory(),
        pos_receipt_id="6",
        purchased_at=WHEN,
        customer=customer,
        lines=[LineInput(product, Decimal("1"), Decimal("10"))],
    )
    customer.refresh_from_db()
    assert customer.lifecycle_stage == "customer"


def _receipt(product, qty="3"):
    store = StoreFactory()
    return store, receipt_record(
        store=store,
        pos_receipt_id="R1",
        purchased_at=WHEN,
        lines=[LineInput(product, Decimal(qty), Decimal("100.00"), unit_cost=Decimal("60"))],
    )


def test_return_gives_back_amount_and_margin_pro_rata(product):
    store, receipt = _receipt(product)
    doc = return_record(
        store=store, receipt=receipt, pos_return_id="V1", returned_at=WHEN, lines=[(1, Decimal(1))]
    )
    line = doc.lines.get()
    assert (line.amount, line.margin) == (Decimal("100.00"), Decimal("40.00"))


def test_return_never_exceeds_what_was_bought(product):
    store, receipt = _receipt(product)
    return_record(
        store=store, receipt=receipt, pos_return_id="V1", returned_at=WHEN, lines=[(1, Decimal(2))]
    )
    with pytest.raises(ValidationError) as exc, translation.override("en"):
        return_record(
            store=store,
            receipt=receipt,
            pos_return_id="V2",
            returned_at=WHEN,
            lines=[(1, Decimal(2))],
        )
    assert "Only 1 of line 1" in exc.value.messages[0]
    with pytest.raises(ValidationError):  # the same line twice in one return counts together
        return_record(
            store=store,
            receipt=receipt,
            pos_return_id="V3",
            returned_at=WHEN,
            lines=[(1, Decimal(1)), (1, Decimal(1))],
        )
    assert ReturnLine.objects.aggregate(q=Sum("quantity"))["q"] == Decimal("2")


def test_return_of_unknown_line_is_refused(product):
    store, receipt = _receipt(product)
    with pytest.raises(ValidationError):
        return_record(
            store=store,
            receipt=receipt,
            pos_return_id="V1",
            returned_at=WHEN,
            lines=[(7, Decimal(1))],
        )


@pytest.mark.django_db(transaction=True)
def test_concurrent_returns_cannot_together_exceed_the_purchase(product):
    store, receipt = _receipt(product, qty="1")
    outcomes = []
    barrier = threading.Barrier(2)

    def attempt(n):
        barrier.wait()
        try:
            return_record(
                store=store,
                receipt=receipt,
                pos_return_id=f"V{n}",
                returned_at=WHEN,
                lines=[(1, Decimal(1))],
            )
            outcomes.append("ok")
        except ValidationError:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ok", "refused"]
    assert ReturnLine.objects.aggregate(q=Sum("quantity"))["q"] == Decimal("1")

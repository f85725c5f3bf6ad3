"""Hand-built purchase histories for the analytics tests."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from sales.services import LineInput, receipt_record, return_record
from tests.factories import CategoryFactory, CustomerFactory, ProductFactory

MSK = ZoneInfo("Europe/Moscow")
AS_OF = dt.datetime(2026, 6, 30, 12, 0, tzinfo=MSK)


def days_ago(days: float) -> dt.datetime:
    return AS_OF - dt.timedelta(days=days)


class Shop:
    """Records real receipts and returns through sales.services, one product per price point."""

    def __init__(self, store):
        self.store = store
        self.category = CategoryFactory(name="Одежда")
        self.counter = 0

    def product(self, category=None, cost=Decimal("0")):
        return ProductFactory(category=category or self.category, cost=cost)

    def buy(self, customer, at, amount, *, cost=None, discount="0", category=None):
        """One receipt of one line; margin = amount - cost (cost defaults to 60% of price)."""
        self.counter += 1
        amount = Decimal(str(amount))
        cost = amount * Decimal("0.6") if cost is None else Decimal(str(cost))
        line = LineInput(
            product=self.product(category),
            quantity=Decimal("1"),
            unit_price=amount,
            discount=Decimal(str(discount)),
            unit_cost=cost,
        )
        return receipt_record(
            store=self.store,
            pos_receipt_id=f"T-{self.counter}",
            purchased_at=at,
            lines=[line],
            customer=customer,
        )

    def buy_lines(self, customer, at, lines):
        self.counter += 1
        return receipt_record(
            store=self.store,
            pos_receipt_id=f"T-{self.counter}",
            purchased_at=at,
            lines=[
                LineInput(
                    product=self.product(),
                    quantity=Decimal("1"),
                    unit_price=Decimal(str(price)),
                    discount=Decimal(str(discount)),
                    unit_cost=Decimal(str(cost)),
                )
                for price, discount, cost in lines
            ],
            customer=customer,
        )

    def give_back(self, receipt, at, line_no=1):
        self.counter += 1
        return return_record(
            store=self.store,
            receipt=receipt,
            pos_return_id=f"RT-{self.counter}",
            returned_at=at,
            lines=[(line_no, Decimal("1"))],
        )

    def customer(self, **kwargs):
        kwargs.setdefault("home_store", self.store)
        return CustomerFactory(**kwargs)


@pytest.fixture
def shop(store_a):
    return Shop(store_a)


@pytest.fixture
def regulars(shop):
    """Twenty customers buying every few weeks for two years: enough to fit the CLV models."""
    people = []
    for index in range(20):
        person = shop.customer()
        step = 20 + index * 3
        # Every fourth one stopped coming, so the models see customers who left.
        stop = 300 + index if index % 4 == 0 else 5
        for day in range(700 - index * 10, stop, -step):
            shop.buy(person, days_ago(day), 500 + 40 * index)
        people.append(person)
    return people

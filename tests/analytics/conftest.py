"""Hand-built purchase histories for the analytics tests."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
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


def lenient_gate(**overrides) -> None:
    """Let a small hand-built base publish its CLV fit: the defaults want 30 repeat buyers and
    a backtest within 25%, which twenty clockwork customers cannot give. Written without
    `save()`, which would queue a recompute."""
    from analytics.models import AnalyticsSettings

    values = {"clv_min_repeat_buyers": 5, "clv_max_backtest_error": Decimal("5"), **overrides}
    AnalyticsSettings.objects.filter(pk=1).delete()
    AnalyticsSettings.objects.bulk_create([AnalyticsSettings(pk=1, **values)])


@pytest.fixture
def regulars(shop):
    """Forty customers over two years, drawn like BG/NBD shoppers (a Gamma spread of buying
    rates, a Beta chance of leaving after each purchase, a spread of spends, fixed seed):
    enough for a CLV fit that passes a lenient gate."""
    lenient_gate()
    rng = np.random.default_rng(7)
    people = []
    for index in range(40):
        person = shop.customer()
        rate = rng.gamma(2.0, 1 / 90)  # purchases per day
        leave = rng.beta(1.0, 5.0)
        spend = 300 + 40 * index
        day = 700 - int(rng.integers(0, 200))
        while day > 0:
            shop.buy(person, days_ago(day), spend + int(rng.integers(0, 200)))
            if day < 700 - 60 and rng.random() < leave:
                break
            day -= max(1, int(rng.exponential(1 / rate)))
        people.append(person)
    return people


# Helpers of the metrics tests.


def recompute():
    from analytics import services
    from analytics.models import RunStatus

    run = services.metrics_recompute_all(as_of=AS_OF)
    assert run.status == RunStatus.DONE, run.error
    return run


def row(customer):
    from analytics.models import CustomerMetrics

    return CustomerMetrics.objects.get(customer=customer)


def favourites(customer) -> list:
    from analytics.models import FavouriteCategories

    return (
        FavouriteCategories.objects.filter(customer=customer)
        .values_list("categories", flat=True)
        .first()
        or []
    )

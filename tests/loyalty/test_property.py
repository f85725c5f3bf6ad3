"""Property: any sequence of receipts (with redemptions), returns, activations, expiries and
adjustments keeps every balance equal to the sum of its ledger rows and never below zero."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loyalty import services
from loyalty.models import Account
from sales.ingest.receipts import receipt_ingest
from sales.ingest.returns import return_ingest
from sales.models import ReceiptLine
from sales.signals import ReceiptRefused
from tests.factories import CustomerFactory

from .conftest import assert_ledger_consistent

pytestmark = pytest.mark.django_db

SKUS = ["DRESS", "TOBACCO", "GIFT"]
money = st.integers(min_value=1, max_value=500_000).map(lambda c: Decimal(c) / 100)
quantity = st.sampled_from(["1", "2", "3", "0.5", "1.25"]).map(Decimal)
sale = st.tuples(
    st.just("sale"),
    st.integers(0, 2),  # customer
    st.lists(st.tuples(st.sampled_from(SKUS), quantity, money), min_size=1, max_size=3),
    st.integers(0, 100).map(lambda p: Decimal(p)),  # percent of the balance wanted
)
give_back = st.tuples(
    st.just("return"),
    st.integers(0, 50),
    st.integers(1, 3),
    st.sampled_from(["0.25", "0.5", "1"]).map(Decimal),
)
passage = st.tuples(st.just("time"), st.integers(1, 200))  # days
adjust = st.tuples(st.just("adjust"), st.integers(0, 2), money, st.booleans())
operations = st.lists(st.one_of(sale, give_back, passage, adjust), min_size=1, max_size=14)


@pytest.fixture
def people(store_a, catalogue):
    return [CustomerFactory(home_store=store_a) for _ in range(3)]


def _lines(items):
    return [
        {
            "sku": sku,
            "quantity": q,
            "unit_price": price,
            "discount": Decimal(0),
            "unit_cost": None,
            "name": "",
            "category": "",
        }
        for sku, q, price in items
    ]


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(ops=operations)
def test_random_histories_keep_every_balance_equal_to_its_ledger(ops, people, store_a, admin_user):
    with transaction.atomic():
        clock = timezone.now() - dt.timedelta(days=800)
        receipts: list[str] = []
        for n, op in enumerate(ops):
            kind = op[0]
            if kind == "sale":
                _k, who, items, share = op
                customer = people[who]
                account = Account.objects.filter(customer=customer).first()
                wanted = ((account.available if account else 0) * share / 100).quantize(
                    Decimal("0.01")
                )
                lines = _lines(items)
                total = sum(
                    (ln["quantity"] * ln["unit_price"]).quantize(Decimal("0.01")) for ln in lines
                )
                data = {
                    "pos_receipt_id": f"P{n}",
                    "purchased_at": clock,
                    "customer_id": customer.pk,
                    "phone": "",
                    "card": "",
                    "payment_method": "card",
                    "channel": "store",
                    "lines": lines,
                    "total": total,
                    "points_redeemed": min(wanted, total),
                }
                try:
                    receipt_ingest(user=admin_user, store=store_a, data=data)
                    receipts.append(f"P{n}")
                except (ReceiptRefused, ValidationError):
                    pass  # refused redemptions are expected; the receipt is not stored
            elif kind == "return" and receipts:
                _k, pick, line_no, part = op
                pos_id = receipts[pick % len(receipts)]
                line = ReceiptLine.objects.filter(
                    receipt__pos_receipt_id=pos_id, line_no=line_no
                ).first()
                if line is None:
                    continue
                try:
                    return_ingest(
                        store=store_a,
                        data={
                            "pos_return_id": f"V{n}",
                            "pos_receipt_id": pos_id,
                            "returned_at": clock,
                            "lines": [{"line_no": line_no, "quantity": line.quantity * part}],
                        },
                    )
                except ValidationError:
                    pass  # more than is left to return
            elif kind == "time":
                clock += dt.timedelta(days=op[1])
                services.points_activate_due(now=clock)
                services.points_expire_due(now=clock)
            elif kind == "adjust":
                _k, who, amount, take = op
                try:
                    services.points_adjust(
                        actor=None,
                        customer=people[who],
                        amount=-amount if take else amount,
                        reason="p",
                    )
                except ValidationError:
                    pass  # would go below zero
            assert_ledger_consistent()
        transaction.set_rollback(True)

"""The till's hot paths make a fixed, small number of queries, whatever the cart: the rules are
kept per process behind a version that any write to them moves (migration 0003), the account,
its balance and that version come in one query, and a booking writes its ledger in one INSERT."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from loyalty.api import CalculateOutputSerializer, calculation_render
from loyalty.models import Entry, ProductRule, ReceiptPoints
from loyalty.selectors import cart_calculation
from tests.factories import CustomerFactory

from .conftest import assert_ledger_consistent, give_points, line, receipt

pytestmark = pytest.mark.django_db

# Authentication (the key and its store, one statement), then one prepared statement for the
# customer (found as a receipt finds them, through the one door's scope), the account, its
# balance, the rules version and the cart's products with their category paths.
CALCULATE_QUERIES = 2
# A receipt through the POS API: sales' own statements and savepoints (18 today) and loyalty's
# 9: rules version, open + lock the account, its due lots, category paths (a category rule
# exists), the ledger INSERT, the tier, the balance after, the receipt's points.
RECEIPT_QUERIES = 27
LOYALTY_RECEIPT_QUERIES = 9


def _calc(pos, customer, lines, wanted="100"):
    body = {"card": customer.card_number, "lines": lines, "points_wanted": wanted}
    return pos.post("/api/v1/loyalty/calculate/", body, format="json")


def test_calculate_makes_a_fixed_number_of_queries_whatever_the_cart(
    pos, customer, catalogue, django_assert_max_num_queries
):
    ProductRule.objects.create(category=catalogue["tobacco"].category, no_burn=True)
    ProductRule.objects.create(product=catalogue["gift"], earn_rate=Decimal("0.10"))
    give_points(customer, "500")
    assert _calc(pos, customer, [line("DRESS")]).status_code == 200  # loads the rules

    with django_assert_max_num_queries(CALCULATE_QUERIES):
        small = _calc(pos, customer, [line("DRESS")])
    with django_assert_max_num_queries(CALCULATE_QUERIES):
        big = _calc(
            pos,
            customer,
            [line(sku, "1", "100.00") for sku in ("DRESS", "TOBACCO", "GIFT") * 10],
        )

    assert small.status_code == big.status_code == 200
    lines = big.json()["lines"]
    assert {(x["sku"], x["burnable"], x["earn_rate"]) for x in lines} == {
        ("DRESS", True, "0.0300"),
        ("TOBACCO", False, "0.0300"),
        ("GIFT", True, "0.1000"),
    }


def test_a_rule_written_by_another_process_is_seen_at_once(pos, customer, catalogue):
    give_points(customer, "500")
    before = _calc(pos, customer, [line("DRESS")], wanted="500").json()
    # As another process would write it: no signal reaches this one, only the version moves.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE loyalty_programme SET max_burn_share = 0.10 WHERE id = 1")

    after = _calc(pos, customer, [line("DRESS")], wanted="500").json()

    assert (before["max_redeemable"], after["max_redeemable"]) == ("300.00", "100.00")


def test_rendered_calculation_is_what_the_serializer_renders(admin_user, customer, catalogue):
    ProductRule.objects.create(product=catalogue["gift"], earn_rate=Decimal("0.0333"))
    give_points(customer, "77.77")
    data = {
        "card": customer.card_number,
        "lines": [
            {
                "sku": "GIFT",
                "quantity": Decimal("3"),
                "unit_price": Decimal("333.33"),
                "discount": Decimal("0.01"),
            },
            {
                "sku": "DRESS",
                "quantity": Decimal("1"),
                "unit_price": Decimal("999.99"),
                "discount": Decimal("0"),
            },
        ],
        "points_wanted": Decimal("50"),
    }

    result = cart_calculation(user=admin_user, data=data, at=timezone.now())

    assert calculation_render(result) == CalculateOutputSerializer(result).data


def test_receipt_with_redemption_makes_a_fixed_number_of_queries(
    pos, customer, catalogue, django_assert_max_num_queries
):
    ProductRule.objects.create(category=catalogue["tobacco"].category, no_burn=True)
    give_points(customer, "500")
    pos.post("/api/v1/receipts/", receipt("R0", [line("DRESS")], customer=customer), format="json")
    many = [line(sku, "1", "100.00") for sku in ("DRESS", "TOBACCO", "GIFT") * 10]

    with django_assert_max_num_queries(RECEIPT_QUERIES) as one:
        small = pos.post(
            "/api/v1/receipts/",
            receipt("R1", [line("DRESS")], customer=customer, points="100"),
            format="json",
        )
    with django_assert_max_num_queries(RECEIPT_QUERIES) as thirty:
        big = pos.post(
            "/api/v1/receipts/",
            receipt("R2", many, customer=customer, points="100"),
            format="json",
        )

    assert small.status_code == big.status_code == 201, (small.json(), big.json())
    assert big.json()["points"]["redeemed"] == "100.00"
    assert len(one.captured_queries) == len(thirty.captured_queries)
    ours = [
        q for q in thirty.captured_queries if "loyalty_" in q["sql"] or "category__path" in q["sql"]
    ]
    assert len(ours) <= LOYALTY_RECEIPT_QUERIES + 1  # + the receipt answer's read of its points
    loyalty = [q["sql"] for q in thirty.captured_queries if "loyalty_entry (" in q["sql"]]
    assert len(loyalty) == 1  # the ledger rows of a booking: one INSERT
    assert_ledger_consistent()


def test_bulk_books_a_batch_with_one_ledger_insert(pos, customer, catalogue):
    give_points(customer, "100")
    old = timezone.now() - dt.timedelta(days=40)  # past its hold: activated in the same INSERT
    batch = [
        receipt(f"B{i}", [line("DRESS")], customer=customer, at=old + dt.timedelta(hours=i))
        for i in range(20)
    ]
    batch[5]["points_redeemed"] = "10.00"

    with CaptureQueriesContext(connection) as ctx:
        body = pos.post("/api/v1/receipts/bulk/", {"receipts": batch}, format="json").json()

    assert body["created"] == 20
    inserts = [q["sql"] for q in ctx.captured_queries if "INSERT INTO loyalty_entry" in q["sql"]]
    assert len(inserts) == 1
    earned = Entry.objects.filter(kind="earn", receipt__isnull=False)
    assert earned.count() == 20
    assert Entry.objects.filter(kind="activate", source__in=earned).count() == 20
    assert_ledger_consistent()


def test_bulk_booking_makes_the_same_queries_for_3_or_30_card_holders(
    pos, catalogue, store_a, django_assert_max_num_queries
):
    """A till's bulk upload books its card holders in set statements: the number of queries
    does not grow with the receipts or the customers in the batch, and each of the booking's
    tables gets one INSERT (ledger rows, receipts' points)."""
    people = [
        CustomerFactory(home_store=store_a, card_number=f"77009{i:02d}", phone_number="")
        for i in range(36)
    ]
    for person in people[:3]:
        give_points(person, "50")

    def upload(prefix: str, holders) -> list:
        batch = [
            receipt(f"{prefix}{i}", [line("DRESS"), line("GIFT", "2", "500.00")], customer=c)
            for i, c in enumerate(holders)
        ]
        batch[0]["points_redeemed"] = "10.00"
        with CaptureQueriesContext(connection) as ctx:
            body = pos.post("/api/v1/receipts/bulk/", {"receipts": batch}, format="json").json()
        assert body["created"] == len(holders), body
        assert all(item["points"]["earned"] != "0.00" for item in body["results"]), body
        return [q["sql"] for q in ctx.captured_queries]

    upload("W", people[33:])  # the process's first booking reads the rules
    three, thirty = upload("S", people[:3]), upload("L", people[3:33])

    assert len(three) == len(thirty)
    for table in ("loyalty_entry (", "loyalty_receiptpoints ("):
        assert sum(table in sql for sql in thirty) == 1, table
    assert ReceiptPoints.objects.count() == 36
    assert_ledger_consistent()

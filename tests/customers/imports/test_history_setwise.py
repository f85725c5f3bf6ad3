"""Purchase history stored set-wise: a batch mixing good and bad receipts reports each one as the
receipt-at-a-time ingest did, and costs the same number of statements whatever its size."""

from __future__ import annotations

import sys
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from customers.imports.engine import job_data_rows
from customers.models import Customer, LifecycleStage
from sales import signals
from sales.history_import import HistoryProcessor
from sales.ingest.idempotency import canonical_text, receipt_canonical
from sales.models import PaymentMethod, Product, Receipt, ReceiptLine, SalesChannel
from sales.services import LineInput, receipt_record
from tests.factories import CustomerFactory

from .conftest import make_csv, outcomes, run, upload

pytestmark = pytest.mark.django_db

HEADER = ["Магазин", "Дата", "Номер чека", "Телефон", "Карта", "Артикул", "Товар", "Количество",
          "Цена", "Себестоимость", "Скидка"]  # fmt: skip


def line(store, receipt, *, phone="", card="", sku="SOCK-1", qty="1", price="199,50", cost="80",
         date="01.02.2024 10:00", discount=""):  # fmt: skip
    return [store, date, receipt, phone, card, sku, f"Товар {sku}", qty, price, cost, discount]


@pytest.fixture
def buyers(store_a):
    anna = CustomerFactory(home_store=store_a, phone_number="+79161112201", card_number="")
    boris = CustomerFactory(home_store=store_a, phone_number="+79161112202", card_number="777")
    return anna, boris


def mixed_rows(code: str) -> list[list]:
    return [
        HEADER,
        line(
            code, "R-1", phone="8 916 111-22-01", sku="DRESS-1", price="4 990,00", cost="2500"
        ),  # 2
        line(code, "R-1", phone="8 916 111-22-01", qty="2", discount="9,00"),  # 3
        line(code, "R-2", card="777"),  # 4
        line(code, "R-3", phone="8 999 000-00-00"),  # 5: nobody has it
        line(code, "R-4", phone="8 916 111-22-01", date="вчера"),  # 6
        line("NOWHERE", "R-5", phone="8 916 111-22-01"),  # 7
        line(code, "R-6", phone="8 916 111-22-01", price="abc"),  # 8
        line(code, "R-7", card="no-such-card"),  # 9
        line(code, "R-8"),  # 10: nobody's receipt
        line(code, "R-9", qty="2", price="999 999 999 999,00", cost="1"),  # 11: overflows
        line(code, "R-10", phone="8 916 111-22-02", sku="DRESS-1", cost=""),  # 12: catalogue cost
        line(code, "R-2", card="777"),  # 13: the same receipt again, same content
        line(code, "R-8", qty="3"),  # 14: the same number, other content
        line(code, "R-11", phone="8 916 111-22-01", price="abc"),  # 15: a bad spelling again
    ]


EXPECTED = {
    2: ("created", ""),
    4: ("created", ""),
    5: ("error", "No customer has this phone; create the card first."),
    6: ("error", "вчера is not a date (use дд.мм.гггг)."),
    7: ("error", "Unknown store NOWHERE."),
    8: ("error", "abc is not a number."),
    9: ("error", "No customer has this card; create the card first."),
    10: ("created", ""),
    11: ("error", "Quantity times unit price is more than a receipt can hold."),
    12: ("created", ""),
    13: ("unchanged", "Already stored."),
    14: ("error", "Already received with different content."),
    15: ("error", "abc is not a number."),
}


def test_a_batch_mixing_good_and_bad_receipts_reports_each_and_stores_the_good(
    admin_user, store_a, buyers
):
    anna, boris = buyers
    content = make_csv(mixed_rows(store_a.code))
    interval = sys.getswitchinterval()
    job = run(upload(admin_user, "h.csv", content, kind="history"), admin_user, dry_run=False)
    assert outcomes(job, "run") == EXPECTED
    assert sys.getswitchinterval() == interval  # shortened only while the reader ran
    stored = {r.pos_receipt_id: r for r in Receipt.objects.all()}
    assert set(stored) == {"R-1", "R-2", "R-8", "R-10"}
    assert stored["R-1"].customer_id == anna.pk and stored["R-2"].customer_id == boris.pk
    assert stored["R-8"].customer_id is None and stored["R-10"].customer_id == boris.pk
    assert stored["R-1"].total == Decimal("5380.00")  # 4990 + 2 x 199.50 - 9
    # The margin trigger saw the lines written in the same statement as their receipts.
    assert stored["R-1"].margin == Decimal("5380.00") - Decimal("2500") - 2 * Decimal("80")
    dress = Product.objects.get(sku="DRESS-1")
    assert ReceiptLine.objects.get(receipt=stored["R-10"]).unit_cost == dress.cost
    lines = ReceiptLine.objects.filter(receipt=stored["R-1"]).order_by("line_no")
    assert [(x.line_no, x.product.sku, x.quantity) for x in lines] == [
        (1, "DRESS-1", Decimal("1.000")),
        (2, "SOCK-1", Decimal("2.000")),
    ]

    # The import told the margin trigger to leave its receipts alone only around its own
    # statement: a till's receipt stored afterwards in the same transaction is summed as ever.
    receipt_record(
        store=store_a,
        pos_receipt_id="TILL-1",
        purchased_at=timezone.now(),
        lines=[LineInput(product=dress, quantity=Decimal(1), unit_price=Decimal("4990.00"))],
    )
    till = Receipt.objects.get(pos_receipt_id="TILL-1")
    assert till.margin == Decimal("4990.00") - dress.cost

    again = run(upload(admin_user, "h.csv", content, kind="history"), admin_user, dry_run=False)
    report = outcomes(again, "run")
    assert {n: o for n, (o, _m) in report.items() if o != "error"} == {
        2: "unchanged", 4: "unchanged", 10: "unchanged", 12: "unchanged", 13: "unchanged"
    }  # fmt: skip
    assert Receipt.objects.count() == 5 and ReceiptLine.objects.count() == 6


def _receipts(code: str, first: int, count: int) -> list[list]:
    rows = [HEADER]
    for n in range(first, first + count):
        phone = "8 916 111-22-01" if n % 2 else ""
        card = "" if n % 2 else "777"
        rows.append(line(code, f"Q-{n}", phone=phone, card=card, sku=f"S-{n % 7}"))
        rows.append(line(code, f"Q-{n}", phone=phone, card=card, sku="DRESS-1", qty="2"))
    rows.append(line(code, f"BAD-{first}", phone="8 999 000-00-00"))
    return rows


def test_a_batchs_statements_do_not_grow_with_its_size(admin_user, store_a, buyers):
    Product.objects.create(sku="DRESS-1", name="Dress", price=1, cost=1)
    for n in range(7):  # the catalogue known, so no batch adds products
        Product.objects.create(sku=f"S-{n}", name="Sock", price=1, cost=1)
    statements = []
    for first, count in ((0, 5), (5, 300)):
        content = make_csv(_receipts(store_a.code, first, count))
        job = upload(admin_user, f"h{first}.csv", content, kind="history")
        processor = HistoryProcessor(job)
        prepared = processor.prepare(list(job_data_rows(job)))
        with CaptureQueriesContext(connection) as queries:
            rows = processor.process(prepared, dry_run=False)
        assert [r.outcome for r in rows].count("created") == count
        assert [r.outcome for r in rows].count("error") == 1
        statements.append(len(queries))
    assert statements[0] == statements[1] <= 10, statements
    assert Receipt.objects.count() == 305 and ReceiptLine.objects.count() == 610


def _till_text(data, lines):
    # What the till's path hashes (`receipt_canonical` + `canonical_text`), phone left out.
    return canonical_text(receipt_canonical({**data, "phone": "", "lines": lines}))


@pytest.mark.parametrize(
    ("number", "card", "zone", "total", "sku", "name", "cost"),
    [
        ("R-1", "", "Europe/Moscow", "100.50", "SOCK-1", "Носки", "80.00"),
        ('R"2\\', "777", "Asia/Omsk", "0.00", "S\u2028\t1", "«Платье»\n", None),
        ("Чек ё 3", "", "UTC", "1230.10", "ЁЛКА", "", "0.00"),
    ],
)
def test_the_reading_threads_receipt_text_is_the_tills_canonical_text(
    number, card, zone, total, sku, name, cost
):
    import datetime as dt
    import zoneinfo

    from sales.history_import import _fast_text_agrees, _receipt_text
    from sales.ingest.idempotency import line_canonical

    line = {
        "sku": sku,
        "name": name,
        "category": "Одежда/Разное",
        "quantity": Decimal("2.500"),
        "unit_price": Decimal("40.20"),
        "discount": Decimal("0.00"),
        "unit_cost": None if cost is None else Decimal(cost),
    }
    data = {
        "pos_receipt_id": number,
        "purchased_at": dt.datetime(2024, 3, 1, 23, 30, tzinfo=zoneinfo.ZoneInfo(zone)),
        "customer_id": None,
        "phone": "+79161112201",
        "card": card,
        "payment_method": PaymentMethod.CASH,
        "channel": SalesChannel.STORE,
        "total": Decimal(total),
        "lines": [line, line],
    }
    texts = [canonical_text(line_canonical(line))] * 2
    assert _receipt_text(data, texts) == _till_text(data, [line, line])
    assert _fast_text_agrees()


def test_a_receiver_reading_the_imported_batch_gets_receipts_with_their_customers(
    admin_user, store_a, buyers
):
    """`receipts_stored_bulk`'s `stored` is built only when read; read, it is the batch."""
    anna, boris = buyers
    seen = []

    def receiver(sender, store, stored, imported, **kwargs):
        seen.append((store, imported, len(stored), list(stored)))

    signals.receipts_stored_bulk.connect(receiver, sender=Receipt)
    try:
        content = make_csv(mixed_rows(store_a.code))
        run(upload(admin_user, "h.csv", content, kind="history"), admin_user, dry_run=False)
    finally:
        signals.receipts_stored_bulk.disconnect(receiver, sender=Receipt)
    [(store, imported, count, stored)] = seen
    assert store == store_a and imported is True and count == 4
    by_number = {receipt.pos_receipt_id: (receipt, data, lines) for receipt, data, lines in stored}
    assert set(by_number) == {"R-1", "R-2", "R-8", "R-10"}
    receipt, data, lines = by_number["R-1"]
    assert data["customer_id"] == anna.pk and data["phone"] == ""
    assert [line.product.sku for line in lines] == ["DRESS-1", "SOCK-1"]
    assert by_number["R-2"][1]["card"] == "777" and by_number["R-2"][0].customer_id == boris.pk


def test_buyers_found_by_phone_or_card_are_marked_and_known_ones_left_alone(
    admin_user, store_a, buyers
):
    anna, boris = buyers  # found by phone and by card
    Customer.objects.filter(pk=anna.pk).update(lifecycle_stage=LifecycleStage.LAPSED)
    Customer.objects.filter(pk=boris.pk).update(lifecycle_stage=LifecycleStage.LEAD)
    run(upload(admin_user, "h.csv", make_csv(mixed_rows(store_a.code)), kind="history"),
        admin_user, dry_run=False)  # fmt: skip
    stages = dict(Customer.objects.values_list("pk", "lifecycle_stage"))
    assert stages[anna.pk] == stages[boris.pk] == LifecycleStage.CUSTOMER

    # A batch whose customers (found by phone) have all bought before writes no card.
    content = make_csv([HEADER, line(store_a.code, "R-20", phone="8 916 111-22-01")])
    job = upload(admin_user, "h2.csv", content, kind="history")
    processor = HistoryProcessor(job)
    prepared = processor.prepare(list(job_data_rows(job)))
    with CaptureQueriesContext(connection) as queries:
        [row] = processor.process(prepared, dry_run=False)
    assert row.outcome == "created"
    writes = [q["sql"] for q in queries if q["sql"].startswith("UPDATE")]
    assert not [sql for sql in writes if "customers_customer" in sql], writes

"""Purchase history from files, through the POS ingest rules, feeding the analytics."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from analytics.models import CustomerMetrics
from analytics.services import metrics_recompute_all
from customers.models import Customer, LifecycleStage
from sales.models import Receipt, ReceiptLine, Return
from tests.factories import CustomerFactory

from .conftest import make_csv, make_xlsx, outcomes, run, upload

pytestmark = pytest.mark.django_db

HEADER = [
    "Магазин",
    "Дата",
    "Номер чека",
    "Телефон",
    "Карта",
    "Артикул",
    "Товар",
    "Категория",
    "Количество",
    "Цена",
    "Себестоимость",
    "Скидка",
    "Возврат",
]


def history_rows(store_code: str) -> list[list]:
    last_year = (timezone.localdate() - dt.timedelta(days=300)).strftime("%d.%m.%Y")
    recent = (timezone.localdate() - dt.timedelta(days=20)).strftime("%d.%m.%Y")
    return [
        HEADER,
        [
            store_code,
            f"{last_year} 12:30",
            "R-1",
            "8 916 111-22-01",
            "",
            "DRESS-1",
            "Платье",
            "Одежда/Платья",
            "1",
            "4 990,00",
            "2 500,00",
            "500,00",
            "",
        ],
        [
            store_code,
            f"{last_year} 12:30",
            "R-1",
            "8 916 111-22-01",
            "",
            "SOCK-1",
            "Носки",
            "Одежда/Носки",
            "2",
            "199,50",
            "80",
            "",
            "",
        ],
        [
            store_code,
            f"{recent} 18:05",
            "R-2",
            "",
            "777",
            "CHEESE",
            "Сыр весовой",
            "Еда",
            "0,450",
            "1200",
            "700",
            "",
            "",
        ],
        [
            store_code,
            f"{recent} 18:05",
            "R-2",
            "",
            "777",
            "SOCK-1",
            "Носки",
            "Одежда/Носки",
            "2",
            "199,50",
            "80",
            "",
            "",
        ],
        [
            store_code,
            f"{recent} 18:05",
            "R-2",
            "",
            "777",
            "SOCK-1",
            "Носки",
            "Одежда/Носки",
            "-1",
            "199,50",
            "80",
            "",
            "",
        ],
        [
            store_code,
            f"{recent} 19:00",
            "R-3",
            "8 999 000-00-00",
            "",
            "SOCK-1",
            "Носки",
            "",
            "1",
            "199,50",
            "",
            "",
            "",
        ],
        [store_code, "вчера", "R-4", "", "", "SOCK-1", "Носки", "", "1", "199,50", "", "", ""],
    ]


@pytest.fixture
def buyers(store_a):
    anna = CustomerFactory(home_store=store_a, phone_number="+79161112201", card_number="")
    boris = CustomerFactory(home_store=store_a, phone_number="+79161112202", card_number="777")
    return anna, boris


def test_history_csv_goes_through_the_pos_rules_and_feeds_the_analytics(
    admin_user, store_a, buyers
):
    anna, boris = buyers
    content = make_csv(history_rows(store_a.code), encoding="cp1251")
    job = upload(admin_user, "history.csv", content, kind="history")
    assert job.mapping["2"] == "receipt" and job.mapping["8"] == "quantity"
    job = run(job, admin_user, dry_run=True)
    assert Receipt.objects.count() == 0
    job = run(job, admin_user, dry_run=False)
    report = outcomes(job, "run")
    assert report[2][0] == "created", report  # R-1, two lines
    assert report[4][0] == "created"  # R-2 with one line returned
    assert report[7][0] == "error" and "No customer has this phone" in report[7][1]
    assert report[8][0] == "error" and "not a date" in report[8][1]
    r1 = Receipt.objects.get(pos_receipt_id="R-1")
    assert r1.customer_id == anna.pk and r1.store == store_a
    assert r1.total == Decimal("4889.00")  # 4990 - 500 + 2 x 199.50
    assert r1.purchased_at.astimezone(store_a.timezone).hour == 12
    lines = list(ReceiptLine.objects.filter(receipt=r1).order_by("line_no"))
    assert [(line.product.sku, line.quantity) for line in lines] == [
        ("DRESS-1", Decimal("1.000")),
        ("SOCK-1", Decimal("2.000")),
    ]
    assert lines[0].unit_cost == Decimal("2500.00")
    r2 = Receipt.objects.get(pos_receipt_id="R-2")
    assert r2.customer_id == boris.pk and r2.total == Decimal("939.00")
    back = Return.objects.get(receipt=r2)
    assert back.lines.get().quantity == Decimal("1.000")
    anna.refresh_from_db()
    assert anna.lifecycle_stage == LifecycleStage.CUSTOMER
    # The analytics see the history at once.
    metrics_recompute_all()
    metrics = CustomerMetrics.objects.get(customer=anna)
    assert metrics.receipts == 1 and metrics.revenue == Decimal("4889.00")
    assert CustomerMetrics.objects.get(customer=boris).receipts == 1


def test_history_file_twice_stores_nothing_twice(admin_user, store_a, buyers):
    content = make_xlsx(history_rows(store_a.code))
    run(upload(admin_user, "h.xlsx", content, kind="history"), admin_user, dry_run=False)
    receipts = Receipt.objects.count()
    lines = ReceiptLine.objects.count()
    returns = Return.objects.count()
    second = run(upload(admin_user, "h.xlsx", content, kind="history"), admin_user, dry_run=False)
    assert (Receipt.objects.count(), ReceiptLine.objects.count(), Return.objects.count()) == (
        receipts,
        lines,
        returns,
    )
    assert second.counts["unchanged"] == 2


def test_history_dry_run_reports_known_receipts(admin_user, store_a, buyers):
    content = make_csv(history_rows(store_a.code))
    run(upload(admin_user, "h.csv", content, kind="history"), admin_user, dry_run=False)
    job = run(upload(admin_user, "h.csv", content, kind="history"), admin_user, dry_run=True)
    report = outcomes(job, "dry")
    assert report[2][0] == "unchanged"


def test_manager_imports_history_of_own_stores_only(manager_a, store_a, store_b, buyers):
    from django.contrib.auth.models import Permission

    manager_a.user_permissions.add(Permission.objects.get(codename="import_customers"))
    manager_a = type(manager_a).objects.get(pk=manager_a.pk)
    rows = history_rows(store_b.code)[:3]
    job = run(
        upload(manager_a, "h.csv", make_csv(rows), kind="history", store=store_a),
        manager_a,
        dry_run=False,
    )
    assert outcomes(job, "run")[2][0] == "error"
    assert Receipt.objects.count() == 0
    assert Customer.objects.count() == 2


def test_imported_history_earns_no_points_while_a_tills_bulk_does(
    admin_user, store_a, buyers, pos_a
):
    """Years of purchases brought from an old system are not credited to the bonus programme
    (sales.history_import passes `imported`; loyalty's bulk receiver skips them)."""
    from loyalty.models import ReceiptPoints
    from tests.conftest import receipt_payload

    run(upload(admin_user, "h.csv", make_csv(history_rows(store_a.code)), kind="history"),
        admin_user, dry_run=False)  # fmt: skip
    assert Receipt.objects.filter(pos_receipt_id="R-1").exists()
    assert not ReceiptPoints.objects.exists()

    answer = pos_a.post(
        "/api/v1/receipts/bulk/", {"receipts": [receipt_payload("T-1", card="777")]}, format="json"
    )
    assert answer.status_code in (200, 201, 207), answer.content
    assert ReceiptPoints.objects.filter(receipt__pos_receipt_id="T-1").exists()


def test_the_dry_run_predicts_each_returns_outcome(admin_user, store_a, buyers):
    """A dry run says what the run will do for returns too: of a receipt sold in the same rows,
    sold earlier in the file, already stored, unknown, or of a product not on the receipt."""
    day = (timezone.localdate() - dt.timedelta(days=30)).strftime("%d.%m.%Y")

    def row(number, sku, quantity, flag=""):
        return [store_a.code, f"{day} 10:00", number, "8 916 111-22-01", "", sku, sku, "Разное",
                quantity, "100,00", "50,00", "", flag]  # fmt: skip

    run(
        upload(admin_user, "old.csv", make_csv([HEADER, row("S-0", "HAT", "1")]), kind="history"),
        admin_user,
        dry_run=False,
    )
    rows = [
        HEADER,
        row("S-1", "CAP", "2"),
        row("S-1", "CAP", "-1"),  # returned in the same receipt's rows
        row("S-2", "BAG", "1"),
        row("S-3", "PEN", "1"),
        row("S-2", "BAG", "1", "да"),  # returned later in the file
        row("S-0", "HAT", "-1"),  # stored by the earlier import
        row("S-9", "CAP", "-1"),  # never sold
        row("S-3", "CUP", "-1"),  # not on the receipt
    ]
    content = make_csv(rows)
    dry = outcomes(run(upload(admin_user, "r.csv", content, kind="history"), admin_user,
                       dry_run=True), "dry")  # fmt: skip
    job = run(upload(admin_user, "r.csv", content, kind="history"), admin_user, dry_run=False)
    real = outcomes(job, "run")
    assert {n: o for n, (o, _m) in dry.items()} == {n: o for n, (o, _m) in real.items()}, (
        dry,
        real,
    )
    assert dry[8][0] == "error" and dry[8][1] == real[8][1]
    assert dry[9][0] == "error" and "CUP" in dry[9][1] and dry[9][1] == real[9][1]
    assert {dry[n][0] for n in (2, 4, 5, 6, 7)} == {"created"}


def test_a_history_import_queues_one_full_recompute_not_a_refresh_per_batch(
    admin_user, store_a, buyers, settings, celery_queue, django_capture_on_commit_callbacks
):
    """Years of receipts in batches of a few hundred used to queue a metrics refresh of every
    buyer of every batch while the import ran; the finished import asks for one recompute."""
    settings.CLIENTELE_IMPORT_BATCH = 2
    content = make_csv(history_rows(store_a.code))
    with django_capture_on_commit_callbacks(execute=True):
        job = run(upload(admin_user, "h.csv", content, kind="history"), admin_user, dry_run=True)

    def analytics() -> list[str]:
        return [name for name, _args in celery_queue() if name.startswith("analytics.")]

    assert analytics() == [], "a dry run asks for nothing"
    with django_capture_on_commit_callbacks(execute=True):
        run(job, admin_user, dry_run=False)
    assert Receipt.objects.count() == 2
    assert analytics() == ["analytics.tasks.recompute_all_metrics"]

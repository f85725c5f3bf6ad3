"""Purchase history written by two connections in turn (`customers.imports.engine`): the same
report and the same rows as one writer, batches committed in the file's order, a return waiting
for the batch that stored its receipt, and a failing batch leaving only the batches before it.

Transactional tests: each writer has its own connection, which a test's open transaction would
hide the data from (inside one, the engine writes with one connection, as the other tests do).
"""

from __future__ import annotations

import threading
import time

import pytest

from customers.imports import engine
from customers.imports.models import ImportRow, ImportStatus
from customers.imports.services import import_start
from sales.history_import import HistoryProcessor
from sales.models import Product, Receipt, ReceiptLine, Return
from tests.factories import CustomerFactory

from .conftest import make_csv, outcomes, run, upload
from .test_history_setwise import EXPECTED, HEADER, line, mixed_rows

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def buyers(store_a):
    return (
        CustomerFactory(home_store=store_a, phone_number="+79161112201", card_number=""),
        CustomerFactory(home_store=store_a, phone_number="+79161112202", card_number="777"),
    )


@pytest.fixture
def writers(monkeypatch):
    """The threads that wrote batches, in the order the batches committed."""
    seen: list[tuple[str, int]] = []
    write = engine._write_batch

    def spy(job_id, token, processor, count, batch, turns=None):
        write(job_id, token, processor, count, batch, turns)
        seen.append((threading.current_thread().name, count))

    monkeypatch.setattr(engine, "_write_batch", spy)
    return seen


def test_two_writers_report_and_store_what_one_writer_does(
    admin_user, store_a, buyers, settings, writers
):
    settings.CLIENTELE_IMPORT_BATCH = 2  # rows: each receipt of the file in a batch of its own
    anna, boris = buyers
    job = run(
        upload(admin_user, "h.csv", make_csv(mixed_rows(store_a.code)), kind="history"),
        admin_user,
        dry_run=False,
    )
    assert len({name for name, _count in writers}) == 2, writers
    assert outcomes(job, "run") == EXPECTED
    assert job.status == ImportStatus.DONE and job.processed_rows == 14
    assert job.counts == {"created": 4, "error": 8, "unchanged": 1}
    stored = {r.pos_receipt_id: r for r in Receipt.objects.all()}
    assert set(stored) == {"R-1", "R-2", "R-8", "R-10"}
    assert stored["R-1"].customer_id == anna.pk and stored["R-2"].customer_id == boris.pk
    assert ReceiptLine.objects.count() == 5


def test_a_return_waits_for_the_batch_that_stored_its_receipt(
    admin_user, store_a, buyers, settings, writers, monkeypatch
):
    """R-1's return is in the batch after R-1's; R-1's batch is slow to commit."""
    settings.CLIENTELE_IMPORT_BATCH = 2
    # Known, so that batch 2 adds no product, which would wait for batch 1's commit too.
    Product.objects.create(sku="SOCK-1", name="Socks", price=1, cost=1)
    code = store_a.code
    rows = [
        HEADER,
        line(code, "R-1", phone="8 916 111-22-01", qty="2"),  # 2: batch 1
        line(code, "R-2", phone="8 916 111-22-01"),  # 3: batch 1
        # Batch 2 marks no buyer (R-3 is nobody's), which would wait for batch 1's commit.
        line(code, "R-1", qty="-1"),  # 4: batch 2, the return
        line(code, "R-3"),  # 5: batch 2
    ]
    insert = engine.json_insert
    calls = []

    def slow_first_report(model, rows, base=None):
        calls.append(len(rows))
        if len(calls) == 1:
            time.sleep(1)  # the next batch runs meanwhile
        return insert(model, rows, base)

    monkeypatch.setattr(engine, "json_insert", slow_first_report)
    job = run(upload(admin_user, "h.csv", make_csv(rows), kind="history"), admin_user,
              dry_run=False)  # fmt: skip
    assert [count for _name, count in writers] == [2, 2]
    assert outcomes(job, "run") == {
        2: ("created", ""),
        3: ("created", ""),
        4: ("created", ""),
        5: ("created", ""),
    }
    [back] = Return.objects.all()
    assert back.receipt.pos_receipt_id == "R-1"


def test_a_failing_batch_leaves_the_batches_before_it_and_nothing_after(
    admin_user, store_a, buyers, settings, monkeypatch
):
    settings.CLIENTELE_IMPORT_BATCH = 2
    code = store_a.code
    rows = [HEADER] + [line(code, f"R-{n}", phone="8 916 111-22-01") for n in range(12)]
    process = HistoryProcessor.process
    calls = []
    lock = threading.Lock()

    def fail_third(self, batch, *, dry_run):
        with lock:
            calls.append(1)
            third = len(calls) == 3
        if third:
            raise RuntimeError("the third batch breaks")
        return process(self, batch, dry_run=dry_run)

    monkeypatch.setattr(HistoryProcessor, "process", fail_third)
    job = upload(admin_user, "h.csv", make_csv(rows), kind="history")
    import_start(actor=admin_user, job=job, dry_run=False)
    with pytest.raises(RuntimeError, match="third batch"):
        engine.import_execute(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED and job.processed_rows == 4
    assert sorted(Receipt.objects.values_list("pos_receipt_id", flat=True)) == [
        "R-0", "R-1", "R-2", "R-3"
    ]  # fmt: skip
    assert ImportRow.objects.filter(job=job).count() == 4

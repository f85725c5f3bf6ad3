"""Racing retries: parallel threads, each with its own database connection, same pos ids."""

import itertools
import threading

import pytest
from django.db import connection

from sales.models import Receipt, ReceiptLine, Return, ReturnLine
from tests.conftest import key_client, receipt_payload

pytestmark = pytest.mark.django_db(transaction=True)


def race(n: int, send) -> list:
    """Run `send()` in n threads released at the same moment; returns their responses."""
    barrier = threading.Barrier(n)
    responses: list = [None] * n
    errors: list = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            responses[i] = send()
        except Exception as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return responses


def test_concurrent_same_receipt_is_stored_exactly_once(pos_key_a):
    payload = receipt_payload("RACE-1")

    responses = race(
        6, lambda: key_client(pos_key_a.raw).post("/api/v1/receipts/", payload, format="json")
    )

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 5 + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert Receipt.objects.count() == 1
    assert ReceiptLine.objects.count() == 2


def test_concurrent_bulk_batches_with_overlapping_receipts_store_each_once(pos_key_a):
    receipts = [receipt_payload(f"RB-{i}") for i in range(30)]

    responses = race(
        4,
        lambda: key_client(pos_key_a.raw).post(
            "/api/v1/receipts/bulk/", {"receipts": receipts}, format="json"
        ),
    )

    bodies = [r.json() for r in responses]
    assert all(r.status_code == 200 for r in responses)
    assert sum(b["created"] for b in bodies) == 30
    assert all(b["created"] + b["duplicate"] == 30 for b in bodies)
    assert Receipt.objects.count() == 30
    assert ReceiptLine.objects.count() == 60


def test_concurrent_returns_never_exceed_what_was_bought(pos_key_a):
    client = key_client(pos_key_a.raw)
    sale = receipt_payload("RET-R")
    assert client.post("/api/v1/receipts/", sale, format="json").status_code == 201
    counter = itertools.count()

    def send():
        # Each wants both scarves back: only one of them can have them.
        return key_client(pos_key_a.raw).post(
            "/api/v1/returns/",
            {
                "pos_return_id": f"RET-{next(counter)}",
                "pos_receipt_id": "RET-R",
                "returned_at": sale["purchased_at"],
                "lines": [{"line_no": 2, "quantity": "2"}],
            },
            format="json",
        )

    responses = race(5, send)

    assert sorted(r.status_code for r in responses) == [201] + [400] * 4
    assert Return.objects.count() == 1
    assert sum(line.quantity for line in ReturnLine.objects.all()) == 2

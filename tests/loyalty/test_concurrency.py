"""Sixteen tills spending one balance at the same moment, each on its own connection."""

from decimal import Decimal

import pytest

from loyalty.models import Account, Entry, EntryKind
from tests.conftest import key_client
from tests.sales.api.test_concurrency import race

from .conftest import assert_ledger_consistent, give_points, line, receipt

pytestmark = pytest.mark.django_db(transaction=True)


def test_sixteen_concurrent_redemptions_spend_the_balance_exactly(pos_key, customer, catalogue):
    give_points(customer, "100")
    payloads = iter(
        receipt(f"C{i}", [line("DRESS")], customer=customer, points="30") for i in range(16)
    )
    bodies = [next(payloads) for _ in range(16)]
    counter = iter(range(16))

    def send():
        return key_client(pos_key.raw).post(
            "/api/v1/receipts/", bodies[next(counter)], format="json"
        )

    responses = race(16, send)

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * 3 + [409] * 13
    for refused in (r for r in responses if r.status_code == 409):
        assert refused.json()["error"]["code"] == "insufficient_points"
        assert Decimal(refused.json()["error"]["available"]) < 30
    account = Account.objects.get()
    assert account.available == Decimal("10")
    assert Entry.objects.filter(kind=EntryKind.REDEEM).count() == 3
    assert_ledger_consistent()


def test_concurrent_replays_of_one_redeeming_receipt_redeem_once(pos_key, customer, catalogue):
    give_points(customer, "100")
    payload = receipt("SAME", [line("DRESS")], customer=customer, points="100")

    responses = race(
        8, lambda: key_client(pos_key.raw).post("/api/v1/receipts/", payload, format="json")
    )

    assert sorted(r.status_code for r in responses) == [200] * 7 + [201]
    assert len({str(r.json()["points"]) for r in responses}) == 1
    assert Entry.objects.filter(kind=EntryKind.REDEEM).count() == 1
    assert Account.objects.get().available == 0

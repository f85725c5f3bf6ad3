"""Merged cards' points: the absorbed ledgers are appended to the survivor's, and an undo leaves
every balance consistent (the points stay with the survivor)."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from customers.duplicates.merge import customer_merge, customer_merge_undo
from loyalty import services
from loyalty.models import Account, Entry, EntryKind, ReceiptPoints
from loyalty.services.adjustments import _bonus
from sales.models import Receipt
from tests.factories import CustomerFactory

from .conftest import assert_ledger_consistent, give_points, line, receipt, return_line

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def twin(store_a):
    return CustomerFactory(home_store=store_a, card_number="7700002", phone_number="+79161230002")


def balances(customer) -> tuple[Decimal, Decimal, Decimal]:
    account = Account.objects.filter(customer=customer).first()
    if account is None:
        return D(0), D(0), D(0)
    return account.available, account.pending, account.debt


def test_merge_appends_the_absorbed_ledger_to_the_survivor(
    admin_user, pos, customer, twin, catalogue
):
    give_points(customer, "40")
    give_points(twin, "100")
    # The twin earns (pending, held 14 days) and spends part of its points on one receipt.
    response = pos.post(
        "/api/v1/receipts/",
        receipt("R1", [line("DRESS", "1", "1000.00")], customer=twin, points="60"),
        format="json",
    )
    assert response.status_code == 201, response.json()
    before = [balances(customer), balances(twin)]
    expected = tuple(sum(b[i] for b in before) for i in range(3))
    twin_rows = Entry.objects.filter(account__customer=twin).count()
    survivor_rows = Entry.objects.filter(account__customer=customer).count()
    ids_before = set(Entry.objects.values_list("id", flat=True))

    customer_merge(actor=admin_user, survivor_id=customer.pk, absorbed_ids=[twin.pk])

    assert balances(customer) == expected == (D("80.00"), D("28.20"), D("0"))
    assert not Account.objects.filter(customer_id=twin.pk).exists()
    rows = Entry.objects.filter(account__customer=customer)
    assert rows.count() == survivor_rows + twin_rows
    # Appended, never rewritten: the survivor's own rows are the ones it had.
    assert ids_before & set(rows.values_list("id", flat=True)) == set(
        Entry.objects.filter(pk__in=ids_before).values_list("id", flat=True)
    )
    booked = ReceiptPoints.objects.get(receipt__pos_receipt_id="R1")
    assert booked.account.customer_id == customer.pk
    assert Receipt.objects.get(pos_receipt_id="R1").customer_id == customer.pk
    assert_ledger_consistent()

    # The copied earn row keeps its hold date: it becomes available on the survivor's account.
    services.points_activate_due(now=timezone.now() + dt.timedelta(days=15))
    assert balances(customer)[:2] == (D("108.20"), D("0"))
    assert Entry.objects.filter(account__customer=customer, kind=EntryKind.ACTIVATE).count() == 1
    assert_ledger_consistent()


def test_a_return_after_the_merge_takes_the_points_from_the_survivor(
    admin_user, pos, customer, twin, catalogue
):
    pos.post("/api/v1/receipts/", receipt("R1", [line("DRESS")], customer=twin), format="json")
    customer_merge(actor=admin_user, survivor_id=customer.pk, absorbed_ids=[twin.pk])
    assert balances(customer)[1] == D("30.00")

    response = return_line(pos, "RT1", "R1", "1")

    assert response.status_code == 201, response.json()
    assert balances(customer) == (D("0"), D("0"), D("0"))
    assert_ledger_consistent()


def test_a_bonus_both_cards_had_keeps_its_points_and_is_granted_once(admin_user, customer, twin):
    now = timezone.now()
    for card in (customer, twin):
        account = services.accounts_lock([card.pk])[card.pk]
        assert _bonus(
            account=account, key="welcome", amount=D("200"), at=now, expires_at=None, reason="w"
        )

    customer_merge(actor=admin_user, survivor_id=customer.pk, absorbed_ids=[twin.pk])

    account = Account.objects.get(customer=customer)
    assert account.available == D("400.00")
    assert account.entries.filter(bonus_key="welcome").count() == 1
    assert_ledger_consistent()


def test_undo_leaves_the_points_with_the_survivor_and_balances_consistent(
    admin_user, pos, customer, twin, catalogue
):
    give_points(customer, "10")
    give_points(twin, "90")
    pos.post("/api/v1/receipts/", receipt("R1", [line("DRESS")], customer=twin), format="json")
    total = sum((sum(balances(c)) for c in (customer, twin)), D(0))
    merge = customer_merge(actor=admin_user, survivor_id=customer.pk, absorbed_ids=[twin.pk])
    # The survivor spends part of the folded points before the merge is undone.
    services.points_adjust(actor=None, customer=customer, amount=D("-95"), reason="spent")

    customer_merge_undo(actor=admin_user, merge=merge)

    assert Receipt.objects.get(pos_receipt_id="R1").customer_id == twin.pk
    assert balances(customer) == (D("5.00"), D("30.00"), D("0"))
    assert balances(twin) == (D("0"), D("0"), D("0"))
    assert sum((sum(balances(c)) for c in (customer, twin)), D(0)) == total - D("95")
    assert_ledger_consistent()
    # The restored card earns again on its own account.
    pos.post("/api/v1/receipts/", receipt("R2", [line("DRESS")], customer=twin), format="json")
    assert balances(twin)[1] == D("30.00")
    assert_ledger_consistent()


def test_a_return_after_the_undo_takes_from_the_restored_card_and_a_later_merge_holds(
    admin_user, pos, customer, twin, store_a, catalogue
):
    """The receipt went back to the restored card, its earn stayed (pending) with the survivor:
    the return takes what the restored card has (a debt here), never the survivor's pending,
    and links nothing across accounts, so the survivor can later be merged away itself."""
    pos.post("/api/v1/receipts/", receipt("R1", [line("DRESS")], customer=twin), format="json")
    merge = customer_merge(actor=admin_user, survivor_id=customer.pk, absorbed_ids=[twin.pk])
    customer_merge_undo(actor=admin_user, merge=merge)
    assert balances(customer) == (D("0"), D("30.00"), D("0"))

    response = return_line(pos, "RT1", "R1", "1")

    assert response.status_code == 201, response.json()
    assert balances(twin) == (D("0"), D("0"), D("30.00"))
    assert balances(customer) == (D("0"), D("30.00"), D("0"))
    reverse = Entry.objects.get(kind=EntryKind.REVERSE)
    assert reverse.source_id is None or reverse.source.account_id == reverse.account_id
    assert_ledger_consistent()

    third = CustomerFactory(home_store=store_a, card_number="7700003", phone_number="+79161230003")
    customer_merge(actor=admin_user, survivor_id=third.pk, absorbed_ids=[customer.pk])
    customer_merge(actor=admin_user, survivor_id=third.pk, absorbed_ids=[twin.pk])

    # The debt settles against the folded pending once both are on one account.
    assert sum(balances(third)) == D("60.00")
    assert_ledger_consistent()

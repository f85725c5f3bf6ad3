"""The demo chain comes with a year of bonus-programme history that keeps the ledger's rules."""

import datetime as dt

import pytest

from loyalty.models import Account, Entry, EntryKind, ReceiptPoints
from tests.demo.test_seed_demo import TODAY, seed

from .conftest import assert_ledger_consistent

pytestmark = pytest.mark.django_db


def test_demo_chain_has_a_year_of_points_history():
    seed(customers=300)

    kinds = set(Entry.objects.values_list("kind", flat=True))
    assert {EntryKind.EARN, EntryKind.ACTIVATE, EntryKind.REDEEM, EntryKind.EXPIRE} <= kinds
    first = Entry.objects.order_by("at").first().at
    assert first.date() >= dt.date.fromisoformat(TODAY) - dt.timedelta(days=366)
    assert ReceiptPoints.objects.filter(redeemed__gt=0).exists()
    assert Account.objects.filter(available__gt=0).exists()
    assert Account.objects.exclude(tier=None).values("tier").distinct().count() >= 2
    assert_ledger_consistent()

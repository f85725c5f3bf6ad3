"""Expiry: earned and bonus points run out; every debit counts against the earliest-expiring
credits (oldest first), which is exact for earned points and never takes more than is
available. The nightly task writes the expiries."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from ..models import ZERO, Entry, EntryKind
from .ledger import accounts_lock

_EXPIRING = """
SELECT a.customer_id,
       coalesce(sum(e.available_delta) FILTER (WHERE e.available_delta > 0
                                                 AND e.expires_at <= %(at)s), 0)
       + coalesce(sum(e.available_delta) FILTER (WHERE e.available_delta < 0), 0)
FROM loyalty_account a JOIN loyalty_entry e ON e.account_id = a.id
WHERE a.available > 0 AND a.id IN (
    SELECT account_id FROM loyalty_entry WHERE available_delta > 0 AND expires_at <= %(at)s)
  AND (%(all)s OR a.customer_id = ANY(%(ids)s))
GROUP BY a.customer_id
"""


def expiring_by(*, at: dt.datetime, customer_ids: list[int] | None = None) -> dict[int, Decimal]:
    """Points that will have expired by `at`, per customer (earliest-expiring spent first)."""
    with connection.cursor() as cursor:
        cursor.execute(
            _EXPIRING, {"at": at, "all": customer_ids is None, "ids": customer_ids or []}
        )
        return {cid: amount for cid, amount in cursor.fetchall() if amount > 0}


@transaction.atomic
def points_expire_due(*, now: dt.datetime | None = None) -> int:
    """Write the expiries due by now; rerunning writes nothing new. Returns rows written."""
    now = now or timezone.now()
    accounts = accounts_lock(list(expiring_by(at=now)))
    # Read again under the locks: a redemption in between may have spent the oldest points.
    due = expiring_by(at=now, customer_ids=list(accounts))
    rows = []
    for customer_id, account in accounts.items():
        amount = min(due.get(customer_id, ZERO), account.available)
        if amount > 0:
            rows.append(
                Entry(account_id=account.pk, kind=EntryKind.EXPIRE, at=now, available_delta=-amount)
            )
    Entry.objects.bulk_create(rows)
    return len(rows)

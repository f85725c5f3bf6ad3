"""A year of bonus-programme history for the demo chain, written after its receipts.

The programme is taken to have started a year before the demo's today: every card holder who
agreed to be contacted got the welcome bonus then (its short term has long run out, so the
expiry run writes its expiries), each receipt of the year earned the base rate after its hold
period, and about one receipt in five paid part of itself with points while the balance
allowed. Tiers are then placed from the spend. Demo returns are history from before the
programme and take nothing back.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction

from . import services
from .models import ZERO, Entry, EntryKind, ReceiptPoints
from .rules import RuleBook, earn_expiry, floor_kopeck, programme_current


@transaction.atomic
def demo_history(*, today: dt.date, log=None, seed: int = 42) -> int:
    """Write the demo ledger; returns the number of rows written."""
    from customers.models import Customer
    from sales.models import Receipt, ReceiptLine

    rnd = random.Random(seed)  # noqa: S311 - reproducible demo data
    tz = ZoneInfo(settings.TIME_ZONE)
    now = dt.datetime.combine(today, dt.time(0), tz)
    start = now - dt.timedelta(days=365)
    programme = programme_current()
    rate = RuleBook.load(start=start, end=start).base_rate(None)
    members = list(
        Customer.objects.exclude(card_number=None)
        .exclude(card_number="")
        .values_list("pk", "consent_email", "consent_sms")
    )
    accounts = services.accounts_lock([pk for pk, _e, _s in members])
    receipts = list(
        Receipt.objects.filter(
            customer_id__in=accounts, purchased_at__gte=start, purchased_at__lt=now
        )
        .order_by("purchased_at", "id")
        .values_list("id", "customer_id", "purchased_at", "total")
    )
    lines: dict[int, list[tuple[int, Decimal]]] = defaultdict(list)
    for receipt_id, line_no, amount in ReceiptLine.objects.filter(
        receipt_id__in=[r[0] for r in receipts]
    ).values_list("receipt_id", "line_no", "amount"):
        lines[receipt_id].append((line_no, amount))

    entries: list[Entry] = []
    booked: list[ReceiptPoints] = []
    balance: dict[int, Decimal] = defaultdict(lambda: ZERO)
    pending: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for pk, email, sms in members:
        if email or sms:
            account = accounts[pk]
            entries.append(
                Entry(
                    account=account,
                    kind=EntryKind.EARN,
                    at=start,
                    available_delta=programme.welcome_bonus,
                    bonus_key="welcome",
                    reason="welcome",
                    expires_at=start + dt.timedelta(days=programme.bonus_days),
                )
            )
            balance[pk] += programme.welcome_bonus
    for receipt_id, customer_id, at, total in receipts:
        account = accounts[customer_id]
        redeemed = ZERO
        if rnd.random() < 0.2 and balance[customer_id] >= 100:
            redeemed = min(balance[customer_id], floor_kopeck(total * programme.max_burn_share))
        earned = floor_kopeck((total - redeemed) * rate)
        if redeemed:
            balance[customer_id] -= redeemed
            entries.append(
                Entry(
                    account=account,
                    kind=EntryKind.REDEEM,
                    at=at,
                    receipt_id=receipt_id,
                    available_delta=-redeemed,
                )
            )
        if earned:
            pending[customer_id] += earned
            entries.append(
                Entry(
                    account=account,
                    kind=EntryKind.EARN,
                    at=at,
                    receipt_id=receipt_id,
                    pending_delta=earned,
                    activates_at=at + dt.timedelta(days=programme.hold_days),
                    expires_at=earn_expiry(at=at, tz=tz, months=programme.earn_months),
                )
            )
        shares = _spread_lines(lines[receipt_id], total, redeemed, rate)
        booked.append(
            ReceiptPoints(
                receipt_id=receipt_id,
                account=account,
                requested=redeemed,
                redeemed=redeemed,
                earned=earned,
                available_after=balance[customer_id],
                pending_after=pending[customer_id],
                lines=shares,
            )
        )
    Entry.objects.bulk_create(entries, batch_size=5000)
    ReceiptPoints.objects.bulk_create(booked, batch_size=5000)
    written = len(entries)
    written += services.points_activate_due(now=now, since=start - dt.timedelta(days=60))
    written += services.points_expire_due(now=now)
    services.tiers_recompute(now=now)
    with connection.cursor() as cursor:
        # Check the deferred foreign keys now, so a reset later in the same transaction may
        # TRUNCATE these tables (PostgreSQL refuses while trigger events are pending).
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    if log:
        log(f"bonus programme: {written:,} ledger rows over the last year")
    return written


def _spread_lines(lines, total: Decimal, redeemed: Decimal, rate: Decimal) -> dict:
    """Per-line earned and redeemed (pro rata), so later returns can take back by line."""
    if not lines or total <= 0:
        return {}
    result = {}
    for line_no, amount in lines:
        part = floor_kopeck(redeemed * amount / total)
        earned = floor_kopeck((amount - part) * rate)
        if earned or part:
            result[str(line_no)] = {"earned": str(earned), "redeemed": str(part)}
    return result

"""Receipts: the points a stored receipt burns and earns, booked in the receipt's transaction.

A receipt earns at the tier the customer held when they came to the till (what the till's
calculation showed); the tier is recomputed right after, from the receipt included. Each
booking (one receipt, or a whole offline batch) writes its ledger rows in one INSERT, and a
batch its receipts' points in one more: the rows are plain values (`ledger.Row`, `_Points`),
never model instances, which were most of a bulk booking's cost.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ..models import ZERO, Account, EntryKind, ReceiptPoints
from ..rules import (
    CartLine,
    RuleBook,
    calculate,
    category_paths_of,
    earn_expiry,
    rulebook_for,
    rules_version,
)
from .ledger import (
    ENTRY_INSERT,
    ENTRY_ROWS,
    Locked,
    Row,
    _activation_rows,
    accounts_lock,
    accounts_lock_sums,
    activation_entry,
    entries_insert,
    entries_params,
    id_array,
)
from .tiers import tiers_place, tiers_recompute


class PointsRefused(Exception):
    """A redemption the rules or the balance do not allow."""

    def __init__(self, *, code: str, message: str, status: int, available: Decimal):
        super().__init__(message)
        self.code, self.message, self.status, self.available = code, message, status, available


def _cart(lines, paths: dict[int, str]) -> list[CartLine]:
    return [
        CartLine(
            line_no=i,
            sku=line.product.sku,
            product_id=line.product.pk,
            amount=line.amount,
            category_path=paths.get(line.product.pk, ""),
        )
        for i, line in enumerate(lines, start=1)
    ]


def _lines_json(calc) -> dict[str, dict[str, str]]:
    return {
        str(r.line_no): {"earned": str(r.earned), "redeemed": str(r.redeemed)}
        for r in calc.lines
        if r.earned or r.redeemed
    }


@dataclass(slots=True, eq=False)
class _Points:
    """A receipt's `ReceiptPoints` row before it is written (the same names)."""

    receipt_id: int
    account_id: int
    requested: Decimal
    redeemed: Decimal
    earned: Decimal
    refused: bool
    available_after: Decimal
    pending_after: Decimal
    tier_name: str
    lines: dict[str, dict[str, str]]


_POINTS_FIELDS = [f.name for f in fields(_Points)]


def _book(*, book, account, receipt, cart, wanted, offline, entries: list[Row]) -> _Points:
    """Append the ledger rows of one receipt to `entries`, given its locked account (whose
    sums are advanced); returns its points row."""
    calc = calculate(
        book=book,
        tier=account.tier,
        available=account.available,
        lines=cart,
        wanted=wanted,
        at=receipt.purchased_at,
    )
    refused = False
    if wanted > calc.max_redeemable:
        if not offline:
            if wanted > account.available:
                raise PointsRefused(
                    code="insufficient_points",
                    message=_("Only %(n)s points are available.") % {"n": account.available},
                    status=409,
                    available=account.available,
                )
            raise PointsRefused(
                code="invalid",
                message=_("At most %(n)s points may be spent on this receipt.")
                % {"n": calc.max_redeemable},
                status=400,
                available=account.available,
            )
        refused = True
        calc = calculate(
            book=book,
            tier=account.tier,
            available=account.available,
            lines=cart,
            wanted=ZERO,
            at=receipt.purchased_at,
        )
    programme = book.programme
    if calc.redeemed:
        account.available -= calc.redeemed
        entries.append(
            Row(
                account_id=account.pk,
                kind=EntryKind.REDEEM,
                at=receipt.purchased_at,
                receipt_id=receipt.pk,
                available_delta=-calc.redeemed,
            )
        )
    if calc.earned:
        account.pending += calc.earned
        entries.append(
            Row(
                account_id=account.pk,
                kind=EntryKind.EARN,
                at=receipt.purchased_at,
                receipt_id=receipt.pk,
                pending_delta=calc.earned,
                activates_at=receipt.purchased_at + dt.timedelta(days=programme.hold_days),
                expires_at=earn_expiry(
                    at=receipt.purchased_at, tz=receipt.store.timezone, months=programme.earn_months
                ),
            )
        )
    return _Points(
        receipt_id=receipt.pk,
        account_id=account.pk,
        requested=wanted,
        redeemed=calc.redeemed,
        earned=calc.earned,
        refused=refused,
        available_after=account.available,
        pending_after=account.pending,
        tier_name=account.tier.name if account.tier else "",
        lines=_lines_json(calc),
    )


def _activate_past_hold(
    entries: list[Row], accounts: dict[int, Account] | dict[int, Locked], now: dt.datetime
) -> list[Row]:
    """Activation rows for the lots just earned whose hold has already passed (an old offline
    receipt), in booking order, after the whole booking (as the activation run would)."""
    by_id = {a.pk: a for a in accounts.values()}
    return [
        activation_entry(
            by_id[entry.account_id],
            now=now,
            remaining=entry.pending_delta,
            expires_at=entry.expires_at,
            source=entry,
        )
        for entry in entries
        if entry.kind == EntryKind.EARN and entry.activates_at and entry.activates_at <= now
    ]


_AFTER = """
SELECT a.id, a.available, a.pending, coalesce(t.name, '')
FROM loyalty_account a LEFT JOIN loyalty_tier t ON t.id = a.tier_id
WHERE a.id = ANY(%s::bigint[])
"""


def _after(account_ids: list[int]) -> dict[int, tuple[Decimal, Decimal, str]]:
    """(available, pending, tier) of each account as left by the booking (what the till shows
    next), read back from the ledger's sums in one query."""
    with connection.cursor() as cursor:
        cursor.execute(_AFTER, [id_array(account_ids)])
        return {pk: (available, pending, tier) for pk, available, pending, tier in cursor}


@transaction.atomic
def receipt_points_book(
    *, receipt, lines, wanted: Decimal, offline: bool = False
) -> ReceiptPoints | None:
    """Burn and earn points for one stored receipt, in its transaction; raises PointsRefused
    when the redemption does not fit (offline: stores it refused and flagged instead)."""
    wanted = wanted or ZERO
    book = rulebook_for(at=receipt.purchased_at, version=rules_version())
    programme = book.programme
    if receipt.customer_id is None or not programme.is_active:
        if wanted > 0:
            message = (
                _("Points can only be spent by a known customer.")
                if programme.is_active
                else _("The bonus programme is switched off.")
            )
            raise PointsRefused(code="invalid", message=message, status=400, available=ZERO)
        return None
    now = timezone.now()
    accounts = accounts_lock([receipt.customer_id])
    account = accounts[receipt.customer_id]
    activation = _activation_rows(now, accounts)
    paths = category_paths_of(book, (line.product.pk for line in lines))
    entries: list[Row] = []
    booked = _book(
        book=book,
        account=account,
        receipt=receipt,
        cart=_cart(lines, paths),
        wanted=wanted,
        offline=offline,
        entries=entries,
    )
    entries_insert([*activation, *entries, *_activate_past_hold(entries, accounts, now)])
    tiers_recompute(customer_ids=[receipt.customer_id])
    booked.available_after, booked.pending_after, booked.tier_name = _after([account.pk])[
        account.pk
    ]
    points = ReceiptPoints(**{name: getattr(booked, name) for name in _POINTS_FIELDS})
    points.save(force_insert=True)
    return points


# A bulk booking's ledger rows and its receipts' points rows in one statement (one round trip;
# the sums trigger still runs once, at its end).
_INSERT_BOOKING = (
    "WITH"
    + ENTRY_ROWS
    + ", entries AS ("
    + ENTRY_INSERT
    + """)
INSERT INTO loyalty_receiptpoints (receipt_id, account_id, requested, redeemed, earned, refused,
  available_after, pending_after, tier_name, lines)
SELECT * FROM json_to_recordset(%s::json) AS x(receipt_id bigint, account_id bigint,
  requested numeric, redeemed numeric, earned numeric, refused boolean, available_after numeric,
  pending_after numeric, tier_name text, lines jsonb)
"""
)


def _booking_insert(entries: list[Row], points: list[_Points]) -> None:
    """The ledger rows and the `ReceiptPoints` rows of a bulk booking, each set as one JSON
    document (see ledger's `entries_insert` for why not arrays)."""
    payload = [
        {
            "receipt_id": p.receipt_id,
            "account_id": p.account_id,
            "requested": str(p.requested),
            "redeemed": str(p.redeemed),
            "earned": str(p.earned),
            "refused": p.refused,
            "available_after": str(p.available_after),
            "pending_after": str(p.pending_after),
            "tier_name": p.tier_name,
            "lines": p.lines,
        }
        for p in points
    ]
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_BOOKING, [*entries_params(entries), json.dumps(payload)])


@transaction.atomic
def receipts_points_book_bulk(
    *, stored: list[tuple[Any, list]], wanted: dict[int, Decimal]
) -> dict:
    """Book many stored receipts (offline tills) in purchase-time order; a redemption that no
    longer fits is refused and flagged, never raised. Returns {receipt id: its points row},
    with the attributes of `ReceiptPoints` that `selectors.receipt_answer_of` reads."""
    with_customer = [(r, lines) for r, lines in stored if r.customer_id]
    if not with_customer:
        return {}
    with_customer.sort(key=lambda item: (item[0].purchased_at, item[0].pk))
    first, last = with_customer[0][0].purchased_at, with_customer[-1][0].purchased_at
    if first < timezone.now() - dt.timedelta(days=1):
        # Old receipts: the promotions of their own period (the cached copy holds current ones).
        book = RuleBook.load(start=first, end=last)
    else:
        book = rulebook_for(at=first, version=rules_version())
    if not book.programme.is_active:
        return {}
    now = timezone.now()
    accounts = accounts_lock_sums([r.customer_id for r, _l in with_customer], book.tiers)
    entries = _activation_rows(now, accounts)
    paths = category_paths_of(
        book, (line.product.pk for _r, lines in with_customer for line in lines)
    )
    points = {
        receipt.pk: _book(
            book=book,
            account=accounts[receipt.customer_id],
            receipt=receipt,
            cart=_cart(lines, paths),
            wanted=wanted.get(receipt.pk, ZERO),
            offline=True,
            entries=entries,
        )
        for receipt, lines in with_customer
    }
    # The tiers first: a placement reads the receipts' spend, never the ledger, and it names the
    # new tier of each account it moves, so the answers need no read of the accounts after.
    # Each booked receipt has the tier it was booked at unless its account moved.
    moved = tiers_place(customer_ids=list(accounts))
    for booked in points.values():
        booked.tier_name = moved.get(booked.account_id, booked.tier_name)
    _booking_insert([*entries, *_activate_past_hold(entries, accounts, now)], list(points.values()))
    return points

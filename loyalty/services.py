"""Writes of the bonus programme: booking receipts and returns, activation, expiry, tiers,
bonuses and an admin's adjustments. Every change of a balance is an appended ledger row.

Serialisation: every write that reads a balance first locks the customer's account row
(`SELECT … FOR UPDATE`), so two tills spending the same points are decided one after the
other. The CHECK on the account (kept equal to the ledger's sums by a trigger) is the last
line: even a writer that forgot the lock cannot take a balance below zero.

Decisions where the brief is silent:
- A receipt earns at the tier the customer held when they came to the till (what the till's
  calculation showed); the tier is recomputed right after, from the receipt included.
- A points debt (a return taking back points already spent) is settled by the next
  activation, before any of it becomes available.
- Expiry counts every debit against the earliest-expiring credits (oldest first), which is
  exact for earned points and never takes more than is available.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.audit import audit_record

from .models import ZERO, Account, Entry, EntryKind, ReceiptPoints
from .rules import KOPECK, CartLine, RuleBook, calculate, earn_expiry, programme_current

MAX_ADJUST = Decimal("1000000")


class PointsRefused(Exception):
    """A redemption the rules or the balance do not allow."""

    def __init__(self, *, code: str, message: str, status: int, available: Decimal):
        super().__init__(message)
        self.code, self.message, self.status, self.available = code, message, status, available


def _round(value: Decimal) -> Decimal:
    return value.quantize(KOPECK, rounding=ROUND_HALF_UP)


# --- Accounts ----------------------------------------------------------------------------

_ENSURE_ACCOUNTS = """
INSERT INTO loyalty_account (customer_id, spend_12m, available, pending, debt, created_at)
SELECT c, 0, 0, 0, 0, now() FROM unnest(%s::bigint[]) AS c
ON CONFLICT (customer_id) DO NOTHING
"""


def accounts_lock(customer_ids: list[int]) -> dict[int, Account]:
    """Open missing accounts and lock them all, in id order so that two batches never
    deadlock; returns them by customer id."""
    ids = sorted(set(customer_ids))
    if not ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(_ENSURE_ACCOUNTS, [ids])
    accounts = Account.objects.select_for_update(of=("self",)).select_related("tier")
    return {a.customer_id: a for a in accounts.filter(customer_id__in=ids).order_by("id")}


def _refresh_sums(account: Account) -> None:
    fresh = Account.objects.filter(pk=account.pk).values("available", "pending", "debt").get()
    account.available, account.pending, account.debt = (
        fresh["available"],
        fresh["pending"],
        fresh["debt"],
    )


# --- Activation --------------------------------------------------------------------------

_DUE = """
SELECT e.id, e.account_id, e.expires_at,
       e.pending_delta + coalesce((SELECT sum(r.pending_delta) FROM loyalty_entry r
                                   WHERE r.source_id = e.id AND r.kind = 'reverse'), 0)
FROM loyalty_entry e
WHERE e.kind = 'earn' AND e.pending_delta > 0 AND e.activates_at <= %s
  AND NOT EXISTS (SELECT 1 FROM loyalty_entry a WHERE a.source_id = e.id AND a.kind = 'activate')
"""


def _activation_rows(now: dt.datetime, accounts: dict[int, Account]) -> list[Entry]:
    """Activation rows for the due earn lots of these locked accounts (updates their debt)."""
    by_id = {a.pk: a for a in accounts.values()}
    with connection.cursor() as cursor:
        cursor.execute(_DUE + " AND e.account_id = ANY(%s) ORDER BY e.id", [now, list(by_id)])
        due = cursor.fetchall()
    rows = []
    for entry_id, account_id, expires_at, remaining in due:
        account = by_id[account_id]
        settle = min(remaining, account.debt)
        account.debt -= settle
        account.pending -= remaining
        account.available += remaining - settle
        rows.append(
            Entry(
                account_id=account_id,
                kind=EntryKind.ACTIVATE,
                at=now,
                source_id=entry_id,
                pending_delta=-remaining,
                available_delta=remaining - settle,
                debt_delta=-settle,
                expires_at=expires_at,
            )
        )
    return rows


_DUE_CUSTOMERS = """
SELECT DISTINCT a.customer_id
FROM loyalty_entry e JOIN loyalty_account a ON a.id = e.account_id
WHERE e.kind = 'earn' AND e.pending_delta > 0 AND e.activates_at <= %s AND e.activates_at > %s
  AND NOT EXISTS (SELECT 1 FROM loyalty_entry x WHERE x.source_id = e.id AND x.kind = 'activate')
LIMIT %s
"""


@transaction.atomic
def points_activate_due(
    *, now: dt.datetime | None = None, since: dt.datetime | None = None, batch: int = 2000
) -> int:
    """Make earned points whose hold period has passed available; returns rows written.

    Only lots that came due after `since` (default: 35 days back) are looked for: booking a
    receipt activates at once whatever is already due, so older lots were handled then, and
    the nightly run never rereads the whole history.
    """
    now = now or timezone.now()
    since = since or now - dt.timedelta(days=35)
    written = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(_DUE_CUSTOMERS, [now, since, batch])
            customers = [row[0] for row in cursor.fetchall()]
        if not customers:
            return written
        rows = _activation_rows(now, accounts_lock(customers))
        Entry.objects.bulk_create(rows)
        written += len(rows)


# --- Receipts ----------------------------------------------------------------------------


def _cart(lines) -> list[CartLine]:
    return [
        CartLine(line_no=i, sku=line.product.sku, product=line.product, amount=line.amount)
        for i, line in enumerate(lines, start=1)
    ]


def _lines_json(calc) -> dict[str, dict[str, str]]:
    return {
        str(r.line_no): {"earned": str(r.earned), "redeemed": str(r.redeemed)}
        for r in calc.lines
        if r.earned or r.redeemed
    }


@dataclass
class _Booked:
    entries: list[Entry]
    points: ReceiptPoints


def _book(*, book, account, receipt, cart, wanted, offline, now) -> _Booked:
    """The rows one receipt writes, given its locked account (whose sums are advanced)."""
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
    entries = []
    programme = book.programme
    if calc.redeemed:
        account.available -= calc.redeemed
        entries.append(
            Entry(
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
            Entry(
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
    points = ReceiptPoints(
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
    return _Booked(entries, points)


@transaction.atomic
def receipt_points_book(
    *, receipt, lines, wanted: Decimal, offline: bool = False
) -> ReceiptPoints | None:
    """Burn and earn points for one stored receipt, in its transaction; raises PointsRefused
    when the redemption does not fit (offline: stores it refused and flagged instead)."""
    wanted = wanted or ZERO
    programme = programme_current()
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
    book = RuleBook.load(start=receipt.purchased_at)
    book.prepare([line.product for line in lines])
    booked = _book(
        book=book,
        account=account,
        receipt=receipt,
        cart=_cart(lines),
        wanted=wanted,
        offline=offline,
        now=now,
    )
    Entry.objects.bulk_create([*activation, *booked.entries])
    if (
        booked.entries
        and booked.entries[-1].activates_at
        and booked.entries[-1].activates_at <= now
    ):
        Entry.objects.bulk_create(_activation_rows(now, accounts))
    tiers_recompute(customer_ids=[receipt.customer_id])
    _refresh_sums(account)
    booked.points.available_after, booked.points.pending_after = account.available, account.pending
    booked.points.tier_name = _tier_names([account.pk]).get(account.pk, "")
    booked.points.save(force_insert=True)
    return booked.points


@transaction.atomic
def receipts_points_book_bulk(
    *, stored: list[tuple[Any, list]], wanted: dict[int, Decimal]
) -> dict:
    """Book many stored receipts (offline tills) in purchase-time order; a redemption that no
    longer fits is refused and flagged, never raised. Returns {receipt id: ReceiptPoints}."""
    programme = programme_current()
    with_customer = [(r, lines) for r, lines in stored if r.customer_id]
    if not with_customer or not programme.is_active:
        return {}
    now = timezone.now()
    with_customer.sort(key=lambda item: (item[0].purchased_at, item[0].pk))
    accounts = accounts_lock([r.customer_id for r, _l in with_customer])
    entries = _activation_rows(now, accounts)
    book = RuleBook.load(
        start=with_customer[0][0].purchased_at, end=with_customer[-1][0].purchased_at
    )
    book.prepare([line.product for _r, lines in with_customer for line in lines])
    points = {}
    for receipt, lines in with_customer:
        booked = _book(
            book=book,
            account=accounts[receipt.customer_id],
            receipt=receipt,
            cart=_cart(lines),
            wanted=wanted.get(receipt.pk, ZERO),
            offline=True,
            now=now,
        )
        entries.extend(booked.entries)
        points[receipt.pk] = booked.points
    Entry.objects.bulk_create(entries)
    # Old offline receipts may be past their hold already: activate those now.
    Entry.objects.bulk_create(_activation_rows(now, accounts))
    tiers_recompute(customer_ids=list(accounts))
    names = _tier_names([a.pk for a in accounts.values()])
    for booked in points.values():
        booked.tier_name = names.get(booked.account_id, "")
    ReceiptPoints.objects.bulk_create(points.values())
    return points


def _tier_names(account_ids: list[int]) -> dict[int, str]:
    """Tier of each account as placed after the receipt (what the till shows next)."""
    return dict(
        Account.objects.filter(pk__in=account_ids, tier__isnull=False).values_list(
            "pk", "tier__name"
        )
    )


# --- Returns -----------------------------------------------------------------------------


def _share(total: Decimal, before: Decimal, after: Decimal, whole: Decimal) -> Decimal:
    # Cumulative rounding: partial returns add up to the line's points to the kopeck.
    return _round(total * after / whole) - _round(total * before / whole)


@transaction.atomic
def return_points_book(*, doc) -> Entry | None:
    """Give back the points burned on the returned lines and take back those they earned,
    pro rata; what cannot be taken back any more becomes a debt, never a negative balance."""
    from sales.models import ReturnLine

    booked = ReceiptPoints.objects.filter(receipt_id=doc.receipt_id).first()
    if booked is None or not booked.lines:
        return None
    account = accounts_lock([doc.receipt.customer_id or booked.account.customer_id])
    account = next(iter(account.values()))
    now = timezone.now()
    lines = list(doc.lines.select_related("receipt_line"))
    earlier = dict(
        ReturnLine.objects.filter(receipt_line_id__in=[rl.receipt_line_id for rl in lines])
        .exclude(return_doc_id=doc.pk)
        .values_list("receipt_line_id")
        .annotate(q=Sum("quantity"))
    )
    take = give = ZERO
    for rl in lines:
        per_line = booked.lines.get(str(rl.receipt_line.line_no))
        if not per_line:
            continue
        whole = rl.receipt_line.quantity
        before = earlier.get(rl.receipt_line_id, ZERO)
        after = before + rl.quantity
        take += _share(Decimal(per_line["earned"]), before, after, whole)
        give += _share(Decimal(per_line["redeemed"]), before, after, whole)
    entries = []
    if give > 0:
        account.available += give
        programme = programme_current()
        entries.append(
            Entry(
                account_id=account.pk,
                kind=EntryKind.RESTORE,
                at=doc.returned_at,
                receipt_id=None,
                return_doc_id=doc.pk,
                available_delta=give,
                expires_at=earn_expiry(at=now, tz=doc.store.timezone, months=programme.earn_months),
            )
        )
    if take > 0:
        earn = Entry.objects.filter(receipt_id=doc.receipt_id, kind=EntryKind.EARN).first()
        pending_left = ZERO
        if (
            earn is not None
            and not Entry.objects.filter(source=earn, kind=EntryKind.ACTIVATE).exists()
        ):
            pending_left = earn.pending_delta + (
                Entry.objects.filter(source=earn, kind=EntryKind.REVERSE).aggregate(
                    s=Sum("pending_delta")
                )["s"]
                or ZERO
            )
        from_pending = min(take, max(pending_left, ZERO))
        from_available = min(take - from_pending, account.available)
        debt = take - from_pending - from_available
        account.available -= from_available
        entries.append(
            Entry(
                account_id=account.pk,
                kind=EntryKind.REVERSE,
                at=doc.returned_at,
                return_doc_id=doc.pk,
                source=earn,
                pending_delta=-from_pending,
                available_delta=-from_available,
                debt_delta=debt,
            )
        )
    Entry.objects.bulk_create(entries)
    tiers_recompute(customer_ids=[account.customer_id])
    return entries[-1] if entries else None


# --- Expiry ------------------------------------------------------------------------------

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


# --- Tiers -------------------------------------------------------------------------------

_TIERS = """
WITH spend AS (
  SELECT a.id,
         greatest(coalesce((SELECT sum(r.total) FROM sales_receipt r
                            WHERE r.customer_id = a.customer_id AND r.purchased_at >= %(since)s), 0)
                - coalesce((SELECT sum(rl.amount) FROM sales_returnline rl
                            JOIN sales_return rt ON rt.id = rl.return_doc_id
                            JOIN sales_receipt r ON r.id = rt.receipt_id
                            WHERE r.customer_id = a.customer_id
                              AND rt.returned_at >= %(since)s), 0),
                  0) AS spend
  FROM loyalty_account a
  WHERE %(all)s OR a.customer_id = ANY(%(ids)s)
), placed AS (
  SELECT s.id, s.spend, (SELECT t.id FROM loyalty_tier t WHERE t.threshold <= s.spend
                         ORDER BY t.threshold DESC LIMIT 1) AS tier_id
  FROM spend s
)
UPDATE loyalty_account a SET spend_12m = p.spend, tier_id = p.tier_id
FROM placed p
WHERE a.id = p.id AND (a.spend_12m, a.tier_id) IS DISTINCT FROM (p.spend, p.tier_id)
"""


def tiers_recompute(*, customer_ids: list[int] | None = None, now=None) -> int:
    """Place accounts in tiers by their trailing 12-month spend net of returns (None: all)."""
    since = (now or timezone.now()) - dt.timedelta(days=365)
    with connection.cursor() as cursor:
        cursor.execute(
            _TIERS, {"since": since, "all": customer_ids is None, "ids": customer_ids or []}
        )
        return cursor.rowcount


# --- Bonuses and adjustments -------------------------------------------------------------


def _bonus(*, account: Account, key: str, amount: Decimal, at, expires_at, reason: str) -> bool:
    if amount <= 0 or account.entries.filter(bonus_key=key).exists():
        return False
    Entry.objects.create(
        account=account,
        kind=EntryKind.EARN,
        at=at,
        available_delta=amount,
        bonus_key=key,
        expires_at=expires_at,
        reason=reason,
    )
    return True


@transaction.atomic
def welcome_bonus_grant(*, customer) -> bool:
    """Once per customer, when they have agreed to be contacted on some channel."""
    programme = programme_current()
    if not programme.is_active or not any(
        (
            customer.consent_email,
            customer.consent_sms,
            customer.consent_messenger,
            customer.consent_phone,
        )
    ):
        return False
    account = accounts_lock([customer.pk])[customer.pk]
    now = timezone.now()
    return _bonus(
        account=account,
        key="welcome",
        amount=programme.welcome_bonus,
        at=now,
        expires_at=now + dt.timedelta(days=programme.bonus_days),
        reason="welcome",
    )


@transaction.atomic
def birthday_bonuses_grant(*, today: dt.date | None = None) -> int:
    """Grant the birthday bonus to customers whose birthday is `window` days ahead; it stays
    valid until `window` days after the birthday."""
    from customers.models import Customer

    programme = programme_current()
    if not programme.is_active or programme.birthday_bonus <= 0:
        return 0
    today = today or timezone.localdate()
    window = programme.birthday_window_days
    day = today + dt.timedelta(days=window)
    people = Customer.objects.filter(birth_date__month=day.month, birth_date__day=day.day)
    ids = list(people.values_list("id", flat=True)[:50000])
    accounts = accounts_lock(ids)
    now = timezone.now()
    granted = 0
    for account in accounts.values():
        granted += _bonus(
            account=account,
            key=f"birthday:{day.year}",
            amount=programme.birthday_bonus,
            at=now,
            expires_at=now + dt.timedelta(days=2 * window + 1),
            reason="birthday",
        )
    return granted


@transaction.atomic
def points_adjust(*, actor, customer, amount: Decimal, reason: str, request=None) -> Entry:
    """An admin's manual correction, with a reason, audited; it cannot go below zero."""
    reason = (reason or "").strip()
    errors: dict[str, list[str]] = {}
    if not reason:
        errors["reason"] = [_("Give a reason for the adjustment.")]
    if amount == 0 or abs(amount) > MAX_ADJUST or amount != amount.quantize(KOPECK):
        errors["amount"] = [_("Give a non-zero amount in points, to the kopeck.")]
    if errors:
        raise ValidationError(errors)
    account = accounts_lock([customer.pk])[customer.pk]
    if account.available + amount < 0:
        raise ValidationError(
            {"amount": [_("Only %(n)s points are available.") % {"n": account.available}]}
        )
    now = timezone.now()
    programme = programme_current()
    entry = Entry.objects.create(
        account=account,
        kind=EntryKind.ADJUST,
        at=now,
        available_delta=amount,
        reason=reason,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        expires_at=now + dt.timedelta(days=30 * programme.earn_months) if amount > 0 else None,
    )
    audit_record(
        actor=actor,
        action="points_adjust",
        obj=customer,
        request=request,
        amount=str(amount),
        reason=reason,
        entry=entry.pk,
    )
    return entry


def ledger_totals(account_id: int) -> dict[str, Decimal]:
    """The sums of an account's rows (what the account's columns must equal)."""
    totals = Entry.objects.filter(account_id=account_id).aggregate(
        available=Sum("available_delta"), pending=Sum("pending_delta"), debt=Sum("debt_delta")
    )
    return {k: v or ZERO for k, v in totals.items()}

"""Returns: the points burned on the returned lines go back, those they earned are taken back,
pro rata to the kopeck; what cannot be taken back any more becomes a debt."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from ..models import ZERO, Entry, EntryKind, ReceiptPoints
from ..rules import KOPECK, earn_expiry, programme_current
from .ledger import accounts_lock
from .tiers import tiers_recompute


def _round(value: Decimal) -> Decimal:
    return value.quantize(KOPECK, rounding=ROUND_HALF_UP)


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
        # This account's own earn only: after a merge's undo the receipt is back on the restored
        # card while its earn stayed with the survivor (loyalty.merging), whose pending this
        # return must not touch, and a reversal never points across accounts (a fold moves
        # rows between accounts and deletes the originals).
        earn = Entry.objects.filter(
            account_id=account.pk, receipt_id=doc.receipt_id, kind=EntryKind.EARN
        ).first()
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

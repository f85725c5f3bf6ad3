"""Loyalty's part in the sales writes, connected in `LoyaltyConfig.ready()`.

Each receiver runs inside the transaction that stores the receipt or the return, so the ledger
rows commit or roll back with it; a refused redemption becomes sales' `ReceiptRefused`, which
the POS API answers with 409 (balance) or 400 (rules).
"""

from __future__ import annotations

from decimal import Decimal

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from customers.duplicates.merge import customers_merged
from customers.models import Customer
from sales import signals
from sales.models import Receipt, Return

from . import merging, services
from .models import ProductRule, Programme, Promotion, ReceiptPoints, Tier
from .rules import rulebook_forget
from .selectors import receipt_answer_of


@receiver(signals.receipt_stored, sender=Receipt)
def _book_receipt(sender, receipt, data, lines, offline=False, **kwargs) -> None:
    try:
        services.receipt_points_book(
            receipt=receipt,
            lines=lines,
            wanted=data.get("points_redeemed") or Decimal(0),
            offline=offline,
        )
    except services.PointsRefused as exc:
        raise signals.ReceiptRefused(
            code=exc.code,
            message=str(exc.message),
            status=exc.status,
            fields={"points_redeemed": [str(exc.message)]},
            available=str(exc.available),
        ) from exc


@receiver(signals.receipts_stored_bulk, sender=Receipt)
def _book_bulk(sender, stored, imported=False, **kwargs) -> dict:
    # History imported from the chain's old systems earns no points: it was bought before this
    # programme (or under the old one, whose balances come across as an adjusted opening
    # balance), and crediting years of receipts at once would hand out points nobody earned.
    if imported:
        return {}
    wanted = {receipt.pk: data.get("points_redeemed") or Decimal(0) for receipt, data, _l in stored}
    booked = services.receipts_points_book_bulk(
        stored=[(receipt, lines) for receipt, _d, lines in stored], wanted=wanted
    )
    return {pk: receipt_answer_of(points) for pk, points in booked.items()}


@receiver(signals.return_stored, sender=Return)
def _book_return(sender, doc, **kwargs) -> None:
    services.return_points_book(doc=doc)


@receiver(signals.receipt_answer, sender=Receipt)
def _answer(sender, receipts, **kwargs) -> dict:
    booked = ReceiptPoints.objects.filter(receipt_id__in=[r.pk for r in receipts])
    return {points.receipt_id: {"points": receipt_answer_of(points)} for points in booked}


@receiver(post_save, sender=Customer)
def _welcome(sender, instance, created, raw=False, **kwargs) -> None:
    # New cards only (fixtures excluded); without consent nothing is granted, and the bonus key
    # makes it once per customer.
    if created and not raw:
        services.welcome_bonus_grant(customer=instance)


@receiver(customers_merged, dispatch_uid="loyalty.fold_merged_accounts")
def _merged(sender, survivor_id, absorbed_ids, undone=False, **kwargs) -> None:
    # Inside the merge's transaction, before the absorbed cards (and their accounts) go.
    if undone:
        merging.accounts_after_undo(survivor_id=survivor_id, restored_ids=absorbed_ids)
    else:
        merging.accounts_fold(survivor_id=survivor_id, absorbed_ids=absorbed_ids)


for _model in (Programme, Tier, ProductRule, Promotion):
    post_save.connect(
        rulebook_forget, sender=_model, dispatch_uid=f"loyalty-rules-{_model.__name__}"
    )
    post_delete.connect(
        rulebook_forget, sender=_model, dispatch_uid=f"loyalty-rules-del-{_model.__name__}"
    )

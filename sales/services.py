"""Writes of sales: receipts and returns.

`receipt_record` and `return_record` hold the rules (totals add up, returns never exceed what
was bought); the POS API adds idempotency and batching on top of them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Sum
from django.utils.translation import gettext as _

from crm.models import Store
from customers.buyers import customers_mark_buyers
from customers.models import LifecycleStage

from .models import ZERO, Product, Receipt, ReceiptLine, Return, ReturnLine

KOPECK = Decimal("0.01")


def money(value: Decimal) -> Decimal:
    return value.quantize(KOPECK, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class LineInput:
    product: Product
    quantity: Decimal
    unit_price: Decimal
    discount: Decimal = ZERO
    unit_cost: Decimal | None = None  # None: the catalogue cost at the time of sale

    @property
    def amount(self) -> Decimal:
        return money(self.quantity * self.unit_price - self.discount)


# What numeric(14, 2) holds. A line's amount and margin and a receipt's total and margin are
# products and sums of fields that are each within their own limit, so these are checked as
# products too: the database would otherwise refuse the row with an overflow.
MAX_MONEY = Decimal("999999999999.99")


def line_cost(line: LineInput) -> Decimal:
    return line.product.cost if line.unit_cost is None else line.unit_cost


def line_capacity_errors(line: LineInput) -> list[str]:
    """Why the line's amount or margin would not fit the money columns (empty when they do)."""
    errors = []
    if line.quantity * line.unit_price > MAX_MONEY:
        errors.append(_("Quantity times unit price is more than a receipt can hold."))
    if line.quantity * line_cost(line) > MAX_MONEY:
        errors.append(_("Quantity times unit cost is more than a receipt can hold."))
    return errors


def receipt_capacity_errors(lines: list[LineInput]) -> dict[str, list[str]]:
    """Per-line and whole-receipt overflow of the money columns, keyed like the API's fields."""
    errors = {f"lines[{i}]": e for i, line in enumerate(lines) if (e := line_capacity_errors(line))}
    if not errors and sum((line.quantity * line_cost(line) for line in lines), ZERO) > MAX_MONEY:
        errors["lines"] = [_("The lines' total cost is more than a receipt can hold.")]
    return errors


def line_errors(line: LineInput) -> list[str]:
    errors = []
    if line.quantity <= 0:
        errors.append(_("Quantity must be positive."))
    if line.unit_price < 0:
        errors.append(_("Unit price cannot be negative."))
    if line.discount < 0:
        errors.append(_("Discount cannot be negative."))
    elif line.discount > line.quantity * line.unit_price:
        errors.append(_("Discount cannot exceed the line's price."))
    if line.unit_cost is not None and line.unit_cost < 0:
        errors.append(_("Unit cost cannot be negative."))
    return errors


@transaction.atomic
def receipt_record(
    *,
    store: Store,
    pos_receipt_id: str,
    purchased_at: dt.datetime,
    lines: list[LineInput],
    total: Decimal | None = None,
    customer=None,
    payment_method: str = "card",
    channel: str = "store",
    content_hash: str = "",
) -> Receipt:
    """Store one receipt with its lines; the lines must add up to `total` to the kopeck."""
    if not lines:
        raise ValidationError({"lines": [_("A receipt needs at least one line.")]})
    errors = {f"lines[{i}]": e for i, line in enumerate(lines) if (e := line_errors(line))}
    if errors:
        raise ValidationError(errors)
    errors = receipt_capacity_errors(lines)
    if errors:
        raise ValidationError(errors)
    lines_total = sum((line.amount for line in lines), ZERO)
    if total is not None and money(total) != lines_total:
        raise ValidationError(
            {
                "total": [
                    _("Lines add up to %(lines)s, not %(total)s.")
                    % {"lines": lines_total, "total": money(total)}
                ]
            }
        )
    receipt = Receipt.objects.create(
        store=store,
        customer=customer,
        pos_receipt_id=pos_receipt_id,
        purchased_at=purchased_at,
        payment_method=payment_method,
        channel=channel,
        total=lines_total,
        content_hash=content_hash,
    )
    ReceiptLine.objects.bulk_create(
        ReceiptLine(
            receipt=receipt,
            line_no=index,
            product=line.product,
            quantity=line.quantity,
            unit_price=line.unit_price,
            discount=line.discount,
            unit_cost=line.product.cost if line.unit_cost is None else line.unit_cost,
        )
        for index, line in enumerate(lines, start=1)
    )
    if customer is not None and customer.lifecycle_stage != LifecycleStage.CUSTOMER:
        # Customers owns its cards: it marks the buyer (one UPDATE, skipped when already one).
        customers_mark_buyers([customer.pk])
        customer.lifecycle_stage = LifecycleStage.CUSTOMER
    return receipt


def returned_quantities(line_ids: list[int]) -> dict[int, Decimal]:
    """How much of each receipt line has been returned so far."""
    rows = (
        ReturnLine.objects.filter(receipt_line_id__in=line_ids)
        .values("receipt_line_id")
        .annotate(qty=Sum("quantity"))
    )
    return {row["receipt_line_id"]: row["qty"] for row in rows}


@transaction.atomic
def return_record(
    *,
    store: Store,
    receipt: Receipt,
    pos_return_id: str,
    returned_at: dt.datetime,
    lines: list[tuple[int, Decimal]],
    content_hash: str = "",
) -> Return:
    """Record goods brought back: `lines` are (line_no on the receipt, quantity).

    The receipt's lines are locked first, so two returns racing for the same goods are
    serialised and together can never exceed what was bought.
    """
    if not lines:
        raise ValidationError({"lines": [_("A return needs at least one line.")]})
    if returned_at < receipt.purchased_at:
        # The refund is booked at returned_at: before the sale it would land in a wrong month.
        raise ValidationError({"returned_at": [_("A return cannot be dated before its purchase.")]})
    receipt_lines = {
        line.line_no: line
        for line in ReceiptLine.objects.select_for_update().filter(receipt=receipt).order_by("id")
    }
    errors: dict[str, list[str]] = {}
    wanted: dict[int, Decimal] = {}
    for index, (line_no, quantity) in enumerate(lines):
        if line_no not in receipt_lines:
            errors[f"lines[{index}]"] = [_("The receipt has no line %(n)s.") % {"n": line_no}]
        elif quantity <= 0:
            errors[f"lines[{index}]"] = [_("Quantity must be positive.")]
        else:
            wanted[line_no] = wanted.get(line_no, ZERO) + quantity
    already = returned_quantities([line.id for line in receipt_lines.values()])
    for index, (line_no, _qty) in enumerate(lines):
        line = receipt_lines.get(line_no)
        if line is None or f"lines[{index}]" in errors:
            continue
        left = line.quantity - already.get(line.id, ZERO)
        if wanted[line_no] > left:
            errors[f"lines[{index}]"] = [
                _("Only %(left)s of line %(n)s can still be returned.")
                % {"left": left.normalize(), "n": line_no}
            ]
    if errors:
        raise ValidationError(errors)
    doc = Return.objects.create(
        store=store,
        receipt=receipt,
        pos_return_id=pos_return_id,
        returned_at=returned_at,
        content_hash=content_hash,
    )
    ReturnLine.objects.bulk_create(
        ReturnLine(
            return_doc=doc,
            receipt_line=receipt_lines[line_no],
            quantity=qty,
            amount=money(receipt_lines[line_no].amount * qty / receipt_lines[line_no].quantity),
            margin=money(receipt_lines[line_no].margin * qty / receipt_lines[line_no].quantity),
        )
        for line_no, qty in wanted.items()
    )
    return doc


def receipt_margins_resync() -> int:
    """Set every receipt's margin from its lines; returns how many receipts were corrected.

    The triggers keep the column exact; this is for loads that bypass triggers on purpose
    (`session_replication_role = replica` in the benchmarks' seeding).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE sales_receipt r SET margin = l.margin
            FROM (SELECT receipt_id, sum(margin) AS margin
                  FROM sales_receiptline GROUP BY receipt_id) l
            WHERE r.id = l.receipt_id AND r.margin IS DISTINCT FROM l.margin
            """
        )
        return cursor.rowcount

"""The purchases and returns sheets of a customer's subject-access file (customers.privacy).

Registered in `SalesConfig.ready()` through `customers.extensions.register_access_sheet`; the
sheets sit after the consents and before the contact log, as they always have.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from customers.extensions import AccessSheet

from .models import Receipt, ReturnLine


def _receipt_rows(customer) -> list[list[Any]]:
    rows = []
    receipts = (
        Receipt.objects.filter(customer_id=customer.pk)
        .select_related("store")
        .prefetch_related("lines__product")
        .order_by("purchased_at", "id")
    )
    for receipt in receipts:
        for line in receipt.lines.all():
            rows.append(
                [
                    receipt.purchased_at,
                    receipt.store.name,
                    receipt.pos_receipt_id,
                    line.product.name,
                    line.quantity,
                    line.unit_price,
                    line.discount,
                    receipt.total,
                ]
            )
    return rows


def _return_rows(customer) -> list[list[Any]]:
    lines = (
        ReturnLine.objects.filter(return_doc__receipt__customer_id=customer.pk)
        .select_related("return_doc__store", "return_doc__receipt", "receipt_line__product")
        .order_by("return_doc__returned_at", "id")
    )
    return [
        [
            line.return_doc.returned_at,
            line.return_doc.store.name,
            line.return_doc.pos_return_id,
            line.return_doc.receipt.pos_receipt_id,
            line.receipt_line.product.name,
            line.quantity,
            line.amount,
        ]
        for line in lines
    ]


def _receipt_header() -> list[str]:
    return [
        _("Date"),
        _("Store"),
        _("Receipt"),
        _("Product"),
        _("Quantity"),
        _("Price"),
        _("Discount"),
        _("Receipt total"),
    ]


def _return_header() -> list[str]:
    return [
        _("Date"),
        _("Store"),
        _("Return"),
        _("Receipt"),
        _("Product"),
        _("Quantity"),
        _("Refund"),
    ]


PURCHASES = AccessSheet(
    order=40, title=lambda: _("Purchases"), header=_receipt_header, rows=_receipt_rows
)
RETURNS = AccessSheet(
    order=50, title=lambda: _("Returns"), header=_return_header, rows=_return_rows
)

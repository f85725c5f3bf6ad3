"""Signals sent inside the transaction that stores a receipt or a return.

A higher app (the bonus programme) takes part in these writes without sales importing it: its
receivers run in the same transaction, so what they write commits or rolls back with the
receipt. A receiver refuses a receipt by raising `ReceiptRefused`; the POS API turns that into
its error format. Receivers are connected in the higher app's `AppConfig.ready()`.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, NamedTuple

from django.dispatch import Signal

if TYPE_CHECKING:
    from crm.models import Store

# kwargs: receipt, data (the validated input), lines (list of LineInput), offline (bool).
receipt_stored = Signal()
# kwargs: store, stored: list of (StoredReceipt, data, lines), imported (True for purchase
# history brought from another system by an import, not sent by a till). Receivers return
# {receipt id: dict} for the receipts they answer about (never raise).
receipts_stored_bulk = Signal()
# kwargs: doc (the Return, its lines written).
return_stored = Signal()
# kwargs: receipts (a list). Receivers return {receipt id: dict merged into its API answer},
# in one query for the whole list.
receipt_answer = Signal()


class StoredReceipt(NamedTuple):
    """A receipt a bulk upload has just stored, as `receipts_stored_bulk` hands it on: the
    fields its receivers read, named as on `Receipt`."""

    pk: int
    customer_id: int | None
    purchased_at: dt.datetime
    store: Store


class ReceiptRefused(Exception):
    """A receiver's refusal of a receipt: 400 (invalid) or 409 (conflict, e.g. balance)."""

    def __init__(
        self,
        *,
        code: str,
        message: str,
        status: int = 400,
        fields: dict[str, list[str]] | None = None,
        **extra: Any,
    ):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.fields = fields or {}
        self.extra = extra


def answers_extra(receipts: list) -> dict[int, dict[str, Any]]:
    """What receivers add to the API answers of these receipts, by receipt id."""
    extra: dict[int, dict[str, Any]] = {}
    if not receipts:
        return extra
    for _receiver, response in receipt_answer.send(sender=type(receipts[0]), receipts=receipts):
        for receipt_id, fields in (response or {}).items():
            extra.setdefault(receipt_id, {}).update(fields)
    return extra


# kwargs: customer_ids (a sorted list of ints). Sent after the transaction that stored receipts
# or returns of these customers commits; analytics connects it to refresh their metrics.
purchases_committed = Signal()

# No kwargs. Sent when an import of purchase history has stored its whole file: the receipts of
# years at once, for which analytics recomputes every customer's metrics in one run instead of
# a refresh per receipt.
purchases_imported = Signal()

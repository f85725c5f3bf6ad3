"""Receipts the tills send: one at a time, or many in a few set statements.

See `idempotency` for how a retry differs from a conflict; references (customers, products)
are resolved in `references`. Storing a receipt sends `sales.signals.receipt_stored` (or
`receipts_stored_bulk`) inside the transaction and, after the commit, `purchases_committed`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.api import STORAGE_REFUSED, django_validation_error_fields
from crm.models import Store
from customers.buyers import customers_mark_buyers
from customers.models import Customer

from .. import signals
from ..models import Receipt, ReceiptLine
from ..services import LineInput, receipt_record
from .idempotency import (
    RECEIPT_UNIQUE,
    IdempotencyConflict,
    Outcome,
    content_hash,
    is_violation,
    receipt_canonical,
)
from .references import customer_index, line_inputs, products_for_lines

logger = logging.getLogger(__name__)


def schedule_metrics_refresh(customer_ids: Iterable[int]) -> None:
    """After commit, queue the metrics refresh of these customers, in one broker message.

    A broker outage is logged, not raised: the receipt is already stored when the callback
    runs, so failing the response then would only make the till retry a receipt that is safe.
    """
    ids = sorted({cid for cid in customer_ids if cid})
    if not ids:
        return

    def announce() -> None:
        signals.purchases_committed.send(sender=None, customer_ids=ids)

    transaction.on_commit(announce, robust=True)


# --- One receipt -------------------------------------------------------------------------


def _receipt_replay(store: Store, pos_receipt_id: str, digest: str) -> Outcome | None:
    existing = Receipt.objects.filter(store=store, pos_receipt_id=pos_receipt_id).first()
    if existing is None:
        return None
    if existing.content_hash != digest:
        raise IdempotencyConflict(
            field_name="pos_receipt_id", pos_id=pos_receipt_id, existing_id=existing.pk
        )
    return Outcome(created=False, obj=existing)


@transaction.atomic
def receipt_ingest(*, user, store: Store, data: dict[str, Any], offline: bool = False) -> Outcome:
    """Store one validated receipt once: a retry returns the stored one, other content conflicts.

    Unknown SKUs with a name are added to the catalogue; the customer is found by exact id,
    phone or card among those the caller may look up.
    """
    digest = content_hash(receipt_canonical(data))
    replay = _receipt_replay(store, data["pos_receipt_id"], digest)
    if replay is not None:
        return replay
    customer_id, errors = customer_index(user, [data]).resolve(data)
    lines, line_errors = line_inputs(data, products_for_lines(data["lines"]))
    errors.update(line_errors)
    if errors:
        raise ValidationError(errors)
    customer = None
    if customer_id:
        customer = Customer.objects.only("id", "lifecycle_stage").get(pk=customer_id)
    try:
        with transaction.atomic():
            receipt = receipt_record(
                store=store,
                pos_receipt_id=data["pos_receipt_id"],
                purchased_at=data["purchased_at"],
                lines=lines,
                total=data["total"],
                customer=customer,
                payment_method=data["payment_method"],
                channel=data["channel"],
                content_hash=digest,
            )
            # Loyalty books points here, in this transaction; it may raise ReceiptRefused.
            signals.receipt_stored.send(
                sender=Receipt, receipt=receipt, data=data, lines=lines, offline=offline
            )
    except IntegrityError as exc:
        if not is_violation(exc, RECEIPT_UNIQUE):
            raise
        # A concurrent request stored it between our look and our insert; it has committed.
        replay = _receipt_replay(store, data["pos_receipt_id"], digest)
        if replay is None:
            raise
        return replay
    schedule_metrics_refresh([customer_id] if customer_id else [])
    return Outcome(created=True, obj=receipt)


# --- Many receipts -----------------------------------------------------------------------


@dataclass
class BulkResult:
    index: int
    pos_receipt_id: str | None
    status: str = "error"  # created | duplicate | error
    id: int | None = None
    error: dict[str, Any] | None = None
    extra: dict[str, Any] | None = None  # what signal receivers (loyalty) answered


def _error(code: str, message: str, fields: dict[str, list[str]] | None = None) -> dict:
    return {"code": code, "message": str(message), "fields": fields or {}}


def _conflict(pos_id: str) -> dict:
    return _error(
        "conflict",
        _("%(id)s was already received with different content.") % {"id": pos_id},
        {"pos_receipt_id": [_("Already received with different content.")]},
    )


# Rows travel as one JSON document: json.dumps is C code, and PostgreSQL parses it far faster
# than psycopg adapts thousands of Python values one by one.
_INSERT_RECEIPTS = """
INSERT INTO sales_receipt
    (store_id, customer_id, pos_receipt_id, purchased_at, payment_method, channel, total,
     content_hash, created_at)
SELECT %s, r.c, r.p, r.t, r.m, r.ch, r.total, r.h, %s
FROM json_to_recordset(%s::json)
     AS r(c bigint, p text, t timestamptz, m text, ch text, total numeric, h text)
ON CONFLICT (store_id, pos_receipt_id) DO NOTHING
RETURNING id, pos_receipt_id
"""

_INSERT_LINES = """
INSERT INTO sales_receiptline
    (receipt_id, line_no, product_id, quantity, unit_price, discount, unit_cost)
SELECT r.r, r.n, r.p, r.q, r.u, r.d, r.c
FROM json_to_recordset(%s::json)
     AS r(r bigint, n smallint, p bigint, q numeric, u numeric, d numeric, c numeric)
"""


@transaction.atomic
def receipts_ingest_bulk(
    *, user, store: Store, items: list[tuple[int, dict[str, Any]]], imported: bool = False
) -> list[BulkResult]:
    """Store many validated receipts, each accepted or rejected on its own, in a few statements.

    `items` are (position in the request, validated receipt). References are resolved in set
    queries up front; receipts and lines go in with one INSERT each, and ON CONFLICT settles
    races with concurrent requests. Should the set insert still fail, each receipt is retried
    on its own savepoint, so one bad receipt never takes the batch down.

    `imported` marks purchase history brought from another system (`sales.history_import`):
    receivers learn it through `receipts_stored_bulk` (the bonus programme earns nothing on it).
    """
    results: dict[int, BulkResult] = {}
    digests = {index: content_hash(receipt_canonical(data)) for index, data in items}
    pos_ids = {data["pos_receipt_id"] for _index, data in items}
    stored = {
        pos_id: (pk, digest)
        for pos_id, pk, digest in Receipt.objects.filter(
            store=store, pos_receipt_id__in=pos_ids
        ).values_list("pos_receipt_id", "id", "content_hash")
    }
    pending: list[tuple[int, dict[str, Any]]] = []
    first_in_batch: dict[str, int] = {}
    repeats: list[tuple[int, int]] = []  # (index, index of the first with that pos id)
    for index, data in items:
        pos_id = data["pos_receipt_id"]
        result = results[index] = BulkResult(index=index, pos_receipt_id=pos_id)
        if pos_id in stored:
            pk, digest = stored[pos_id]
            if digest == digests[index]:
                result.status, result.id = "duplicate", pk
            else:
                result.error = _conflict(pos_id)
        elif pos_id in first_in_batch:
            repeats.append((index, first_in_batch[pos_id]))
        else:
            first_in_batch[pos_id] = index
            pending.append((index, data))

    customers = customer_index(user, (data for _i, data in pending))
    resolved = [(index, data, *customers.resolve(data)) for index, data in pending]
    # Only receipts that can still be stored may add products to the catalogue.
    products = products_for_lines(
        line for _i, data, _c, errors in resolved if not errors for line in data["lines"]
    )
    ready: list[tuple[int, dict[str, Any], int | None, list[LineInput]]] = []
    for index, data, customer_id, errors in resolved:
        lines, line_errors = line_inputs(data, products)
        errors.update(line_errors)
        if errors:
            results[index].error = _error("invalid", _("The receipt is invalid."), errors)
        else:
            ready.append((index, data, customer_id, lines))

    if ready:
        try:
            with transaction.atomic():
                _insert_ready(store, ready, digests, results)
            _announce_bulk(store, ready, results, imported=imported)
        except DatabaseError:
            logger.exception("bulk insert failed; storing receipts one by one")
            _insert_one_by_one(user, store, ready, results)

    settle_repeats(repeats, digests, results)
    created_customers = [
        customer_id
        for index, _data, customer_id, _lines in ready
        if results[index].status == "created"
    ]
    customers_mark_buyers(created_customers)
    schedule_metrics_refresh(created_customers)
    return [results[index] for index, _data in items]


def settle_repeats(repeats: list[tuple[int, int]], digests: dict, results: dict) -> None:
    """A receipt sent twice in one batch is the first one's duplicate (same content) or a
    conflict; `repeats` are (index, index of the first with that pos id)."""
    for index, first in repeats:
        original = results[first]
        if original.status == "error" or digests[first] != digests[index]:
            results[index].error = (
                _conflict(original.pos_receipt_id) if original.status != "error" else original.error
            )
        else:
            results[index].status, results[index].id = "duplicate", original.id


def _insert_ready(store, ready, digests, results) -> None:
    rows = [
        {
            "c": customer_id,
            "p": data["pos_receipt_id"],
            "t": data["purchased_at"].isoformat(),
            "m": data["payment_method"],
            "ch": data["channel"],
            "total": str(sum((line.amount for line in lines), Decimal(0))),
            "h": digests[index],
        }
        for index, data, customer_id, lines in ready
    ]
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_RECEIPTS, [store.pk, timezone.now(), json.dumps(rows)])
        inserted = {pos_id: pk for pk, pos_id in cursor.fetchall()}
        line_rows = []
        lost: list[int] = []
        for index, data, _customer_id, lines in ready:
            receipt_id = inserted.get(data["pos_receipt_id"])
            if receipt_id is None:
                lost.append(index)
                continue
            results[index].status, results[index].id = "created", receipt_id
            line_rows.extend(
                {
                    "r": receipt_id,
                    "n": line_no,
                    "p": line.product.pk,
                    "q": str(line.quantity),
                    "u": str(line.unit_price),
                    "d": str(line.discount),
                    "c": str(line.product.cost if line.unit_cost is None else line.unit_cost),
                }
                for line_no, line in enumerate(lines, start=1)
            )
        if line_rows:
            cursor.execute(_INSERT_LINES, [json.dumps(line_rows)])
    if lost:
        # Another request stored these between our look and our insert; it has committed.
        by_pos = {results[i].pos_receipt_id: i for i in lost}
        for pos_id, pk, digest in Receipt.objects.filter(
            store=store, pos_receipt_id__in=by_pos
        ).values_list("pos_receipt_id", "id", "content_hash"):
            index = by_pos[pos_id]
            if digest == digests[index]:
                results[index].status, results[index].id = "duplicate", pk
            else:
                results[index].error = _conflict(pos_id)


def _announce_bulk(store, ready, results, *, imported: bool = False) -> None:
    """Tell receivers (loyalty) about the receipts this batch created, inside its transaction.

    They get what was just written (`signals.StoredReceipt`), not the rows read back: a
    batch's worth of model instances cost a quarter of the batch's time, programme on or off.
    """
    if not signals.receipts_stored_bulk.has_listeners(Receipt):
        return
    positions: dict[int, int] = {}
    stored = []
    for index, data, customer_id, lines in ready:
        result = results[index]
        if result.status == "created":
            positions[result.id] = index
            receipt = signals.StoredReceipt(result.id, customer_id, data["purchased_at"], store)
            stored.append((receipt, data, lines))
    if not stored:
        return
    responses = signals.receipts_stored_bulk.send(
        sender=Receipt, store=store, stored=stored, imported=imported
    )
    for _receiver, answers in responses:
        for receipt_id, answer in (answers or {}).items():
            results[positions[receipt_id]].extra = {"points": answer}


def _insert_one_by_one(user, store, ready, results) -> None:
    for index, data, _customer_id, _lines in ready:
        result = results[index]
        result.status, result.id, result.error = "error", None, None
        try:
            with transaction.atomic():
                outcome = receipt_ingest(user=user, store=store, data=data, offline=True)
        except ValidationError as exc:
            result.error = _error(
                "invalid", _("The receipt is invalid."), django_validation_error_fields(exc)
            )
        except IdempotencyConflict as exc:
            result.error = _conflict(exc.pos_id)
        except signals.ReceiptRefused as exc:
            result.error = _error(exc.code, exc.message, exc.fields)
        except DatabaseError as exc:
            # Validation keeps values within the columns; should the database still refuse
            # one, its text (table, column, value) is for the log, never for the till.
            logger.error("receipt %s could not be stored", data["pos_receipt_id"], exc_info=exc)
            result.error = _error(
                "invalid",
                _("The receipt is invalid."),
                {"non_field_errors": [str(STORAGE_REFUSED)]},
            )
        else:
            result.status = "created" if outcome.created else "duplicate"
            result.id = outcome.obj.pk


def receipt_lines_for_output(receipt: Receipt) -> list[ReceiptLine]:
    return list(receipt.lines.select_related("product").order_by("line_no"))

"""What the tills send: idempotent receipts and returns, the set-based bulk load, catalogue upsert.

Idempotency: a receipt is known by (store, pos_receipt_id), which the database keeps unique.
The posted content is reduced to a canonical form and hashed; a repeat with the same hash is a
harmless retry (answered with what is stored), a repeat with another hash is a conflict. Two
racing requests are decided by the unique constraint: the loser's insert fails inside its own
savepoint (or does nothing, ON CONFLICT) and it then reads the winner's row.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.models import Store
from customers.access import lookup_customers
from customers.models import CustomerPhone, LifecycleStage

from . import signals
from .models import Category, Product, Receipt, ReceiptLine, Return
from .services import LineInput, receipt_capacity_errors, receipt_record, return_record

logger = logging.getLogger(__name__)

RECEIPT_UNIQUE = "receipt_unique_pos_id_per_store"
RETURN_UNIQUE = "return_unique_pos_id_per_store"


class IdempotencyConflict(Exception):
    """The pos id is already stored with different content."""

    def __init__(self, *, field_name: str, pos_id: str, existing_id: int):
        super().__init__(pos_id)
        self.field_name = field_name
        self.pos_id = pos_id
        self.existing_id = existing_id

    @property
    def message(self) -> str:
        return _("%(id)s was already received with different content.") % {"id": self.pos_id}


@dataclass
class Outcome:
    created: bool
    obj: Any


def _dec(value: Decimal | None) -> str | None:
    # 1.5, 1.50 and 1.500 are the same quantity and must hash the same.
    return None if value is None else format(value.normalize(), "f")


def receipt_canonical(data: dict[str, Any]) -> dict[str, Any]:
    """The validated receipt as plain JSON values, independent of how the till spelled them."""
    return {
        "pos_receipt_id": data["pos_receipt_id"],
        "purchased_at": data["purchased_at"].astimezone(dt.UTC).isoformat(),
        "customer_id": data.get("customer_id"),
        "phone": data.get("phone") or "",
        "card": data.get("card") or "",
        "payment_method": data["payment_method"],
        "channel": data["channel"],
        "total": _dec(data["total"]),
        "lines": [
            {
                "sku": line["sku"],
                "quantity": _dec(line["quantity"]),
                "unit_price": _dec(line["unit_price"]),
                "discount": _dec(line["discount"]),
                "unit_cost": _dec(line.get("unit_cost")),
                "name": line.get("name") or "",
                "category": line.get("category") or "",
            }
            for line in data["lines"]
        ],
        # Only when points are spent, so receipts stored before loyalty keep their hashes.
        **(
            {"points_redeemed": _dec(data["points_redeemed"])}
            if data.get("points_redeemed")
            else {}
        ),
    }


def return_canonical(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "pos_return_id": data["pos_return_id"],
        "pos_receipt_id": data["pos_receipt_id"],
        "returned_at": data["returned_at"].astimezone(dt.UTC).isoformat(),
        "lines": [
            {"line_no": line["line_no"], "quantity": _dec(line["quantity"])}
            for line in data["lines"]
        ],
    }


def content_hash(canonical: dict[str, Any]) -> str:
    text = json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


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


def _is_violation(exc: IntegrityError, constraint: str) -> bool:
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None) == constraint


# --- Resolution of references: a few set queries whatever the number of receipts ----------


def category_path_parts(path: str) -> list[str]:
    return [part.strip() for part in path.split("/") if part.strip()]


def categories_for_paths(paths: Iterable[str]) -> dict[str, Category]:
    """Category per normalised path ("A/B"), creating missing nodes of the tree."""
    wanted: dict[str, list[str]] = {}
    for path in paths:
        parts = category_path_parts(path)
        for depth in range(1, len(parts) + 1):
            wanted["/".join(parts[:depth])] = parts[:depth]
    if not wanted:
        return {}
    found = {c.path: c for c in Category.objects.filter(path__in=wanted)}
    for path, parts in sorted(wanted.items(), key=lambda item: len(item[1])):
        if path not in found:
            parent = found["/".join(parts[:-1])] if len(parts) > 1 else None
            # get_or_create survives a concurrent request creating the same node.
            found[path], _created = Category.objects.get_or_create(parent=parent, name=parts[-1])
    return found


def products_for_lines(lines: Iterable[dict[str, Any]]) -> dict[str, Product]:
    """Products by SKU for these lines; unknown SKUs that carry a name are created."""
    lines = list(lines)
    skus = {line["sku"] for line in lines}
    found = {p.sku: p for p in Product.objects.filter(sku__in=skus).only("id", "sku", "cost")}
    to_create: dict[str, dict[str, Any]] = {}
    for line in lines:
        if line["sku"] not in found and line.get("name") and line["sku"] not in to_create:
            to_create[line["sku"]] = line
    if to_create:
        categories = categories_for_paths(
            line["category"] for line in to_create.values() if line.get("category")
        )
        Product.objects.bulk_create(
            [
                Product(
                    sku=sku,
                    name=line["name"],
                    category=categories.get("/".join(category_path_parts(line["category"])))
                    if line.get("category")
                    else None,
                    price=line["unit_price"],
                    cost=line.get("unit_cost") or Decimal(0),
                )
                for sku, line in to_create.items()
            ],
            ignore_conflicts=True,
        )
        # Re-read: with ignore_conflicts PostgreSQL returns no ids, and a racing request may
        # have created some of them first.
        found.update(
            {p.sku: p for p in Product.objects.filter(sku__in=to_create).only("id", "sku", "cost")}
        )
    return found


@dataclass
class CustomerIndex:
    by_id: dict[int, int] = field(default_factory=dict)
    by_phone: dict[str, int] = field(default_factory=dict)
    by_card: dict[str, int] = field(default_factory=dict)

    def resolve(self, data: dict[str, Any]) -> tuple[int | None, dict[str, list[str]]]:
        if data.get("customer_id"):
            found = self.by_id.get(data["customer_id"])
            if found is None:
                return None, {"customer_id": [_("No such customer.")]}
            return found, {}
        if data.get("phone"):
            found = self.by_phone.get(data["phone"])
            if found is None:
                return None, {"phone": [_("No customer has this phone; create the card first.")]}
            return found, {}
        if data.get("card"):
            found = self.by_card.get(data["card"])
            if found is None:
                return None, {"card": [_("No customer has this card; create the card first.")]}
            return found, {}
        return None, {}


def customer_index(user, items: Iterable[dict[str, Any]]) -> CustomerIndex:
    """Customers named by these receipts, found as a till finds them: exact id, phone or card."""
    items = list(items)
    ids = {i["customer_id"] for i in items if i.get("customer_id")}
    phones = {i["phone"] for i in items if i.get("phone")}
    cards = {i["card"] for i in items if i.get("card")}
    scope = lookup_customers(user)
    index = CustomerIndex()
    if ids:
        index.by_id = {pk: pk for pk in scope.filter(pk__in=ids).values_list("pk", flat=True)}
    if phones:
        index.by_phone = dict(
            CustomerPhone.objects.filter(number__in=phones, customer__in=scope).values_list(
                "number", "customer_id"
            )
        )
    if cards:
        index.by_card = dict(scope.filter(card_number__in=cards).values_list("card_number", "pk"))
        # A card merged into another one still finds its owner (customers.duplicates).
        from customers.duplicates.models import MergedAlias

        for number, survivor_id in MergedAlias.objects.filter(
            old_card_number__in=cards - set(index.by_card), survivor__in=scope
        ).values_list("old_card_number", "survivor_id"):
            index.by_card[number] = survivor_id
    return index


def _line_inputs(
    data: dict[str, Any], products: dict[str, Product]
) -> tuple[list[LineInput], dict[str, list[str]]]:
    errors: dict[str, list[str]] = {}
    lines = []
    for index, line in enumerate(data["lines"]):
        product = products.get(line["sku"])
        if product is None:
            errors[f"lines[{index}].sku"] = [
                _("Unknown SKU %(sku)s; send name (and category) to create it.")
                % {"sku": line["sku"]}
            ]
            continue
        lines.append(
            LineInput(
                product=product,
                quantity=line["quantity"],
                unit_price=line["unit_price"],
                discount=line["discount"],
                unit_cost=line.get("unit_cost"),
            )
        )
    if not errors:
        # The catalogue cost stands in for an omitted unit cost, so capacity is checked here,
        # once the products are known.
        errors.update(receipt_capacity_errors(lines))
    return lines, errors


def _mark_customers_bought(customer_ids: Iterable[int]) -> None:
    ids = {cid for cid in customer_ids if cid}
    if ids:
        from customers.models import Customer

        Customer.objects.filter(pk__in=ids).exclude(lifecycle_stage=LifecycleStage.CUSTOMER).update(
            lifecycle_stage=LifecycleStage.CUSTOMER
        )


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
    lines, line_errors = _line_inputs(data, products_for_lines(data["lines"]))
    errors.update(line_errors)
    if errors:
        raise ValidationError(errors)
    customer = None
    if customer_id:
        from customers.models import Customer

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
        if not _is_violation(exc, RECEIPT_UNIQUE):
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
    *, user, store: Store, items: list[tuple[int, dict[str, Any]]]
) -> list[BulkResult]:
    """Store many validated receipts, each accepted or rejected on its own, in a few statements.

    `items` are (position in the request, validated receipt). References are resolved in set
    queries up front; receipts and lines go in with one INSERT each, and ON CONFLICT settles
    races with concurrent requests. Should the set insert still fail, each receipt is retried
    on its own savepoint, so one bad receipt never takes the batch down.
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
        lines, line_errors = _line_inputs(data, products)
        errors.update(line_errors)
        if errors:
            results[index].error = _error("invalid", _("The receipt is invalid."), errors)
        else:
            ready.append((index, data, customer_id, lines))

    if ready:
        try:
            with transaction.atomic():
                _insert_ready(store, ready, digests, results)
            _announce_bulk(store, ready, results)
        except DatabaseError:
            logger.exception("bulk insert failed; storing receipts one by one")
            _insert_one_by_one(user, store, ready, results)

    for index, first in repeats:
        original = results[first]
        if original.status == "error" or digests[first] != digests[index]:
            results[index].error = (
                _conflict(original.pos_receipt_id) if original.status != "error" else original.error
            )
        else:
            results[index].status, results[index].id = "duplicate", original.id
    created_customers = [
        customer_id
        for index, _data, customer_id, _lines in ready
        if results[index].status == "created"
    ]
    _mark_customers_bought(created_customers)
    schedule_metrics_refresh(created_customers)
    return [results[index] for index, _data in items]


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


def _announce_bulk(store, ready, results) -> None:
    """Tell receivers (loyalty) about the receipts this batch created, inside its transaction."""
    created = {
        results[i].id: (i, data, lines)
        for i, data, _c, lines in ready
        if results[i].status == "created"
    }
    if not created or not signals.receipts_stored_bulk.has_listeners(Receipt):
        return
    receipts = Receipt.objects.filter(pk__in=created).select_related("store")
    responses = signals.receipts_stored_bulk.send(
        sender=Receipt,
        store=store,
        stored=[(r, created[r.pk][1], created[r.pk][2]) for r in receipts],
    )
    for _receiver, answers in responses:
        for receipt_id, answer in (answers or {}).items():
            results[created[receipt_id][0]].extra = {"points": answer}


def _insert_one_by_one(user, store, ready, results) -> None:
    for index, data, _customer_id, _lines in ready:
        result = results[index]
        result.status, result.id, result.error = "error", None, None
        try:
            with transaction.atomic():
                outcome = receipt_ingest(user=user, store=store, data=data, offline=True)
        except ValidationError as exc:
            from crm.api import django_validation_error_fields

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
            from crm.api import STORAGE_REFUSED

            logger.error("receipt %s could not be stored", data["pos_receipt_id"], exc_info=exc)
            result.error = _error(
                "invalid",
                _("The receipt is invalid."),
                {"non_field_errors": [str(STORAGE_REFUSED)]},
            )
        else:
            result.status = "created" if outcome.created else "duplicate"
            result.id = outcome.obj.pk


# --- Returns -----------------------------------------------------------------------------


def _return_replay(store: Store, pos_return_id: str, digest: str) -> Outcome | None:
    existing = Return.objects.filter(store=store, pos_return_id=pos_return_id).first()
    if existing is None:
        return None
    if existing.content_hash != digest:
        raise IdempotencyConflict(
            field_name="pos_return_id", pos_id=pos_return_id, existing_id=existing.pk
        )
    return Outcome(created=False, obj=existing)


@transaction.atomic
def return_ingest(*, store: Store, data: dict[str, Any]) -> Outcome:
    """Store one validated return of a receipt of the same store, once (idempotent)."""
    digest = content_hash(return_canonical(data))
    replay = _return_replay(store, data["pos_return_id"], digest)
    if replay is not None:
        return replay
    receipt = Receipt.objects.filter(store=store, pos_receipt_id=data["pos_receipt_id"]).first()
    if receipt is None:
        raise ValidationError({"pos_receipt_id": [_("This store has no such receipt.")]})
    try:
        with transaction.atomic():
            doc = return_record(
                store=store,
                receipt=receipt,
                pos_return_id=data["pos_return_id"],
                returned_at=data["returned_at"],
                lines=[(line["line_no"], line["quantity"]) for line in data["lines"]],
                content_hash=digest,
            )
            signals.return_stored.send(sender=Return, doc=doc)
    except IntegrityError as exc:
        if not _is_violation(exc, RETURN_UNIQUE):
            raise
        replay = _return_replay(store, data["pos_return_id"], digest)
        if replay is None:
            raise
        return replay
    schedule_metrics_refresh([receipt.customer_id] if receipt.customer_id else [])
    return Outcome(created=True, obj=doc)


# --- Catalogue ---------------------------------------------------------------------------


@transaction.atomic
def products_upsert_bulk(*, items: list[dict[str, Any]]) -> list[tuple[str, int, bool]]:
    """Insert or update products by SKU in one statement; returns (sku, id, created)."""
    categories = categories_for_paths(item["category"] for item in items if item.get("category"))
    known = set(
        Product.objects.filter(sku__in=[i["sku"] for i in items]).values_list("sku", flat=True)
    )
    products = Product.objects.bulk_create(
        [
            Product(
                sku=item["sku"],
                name=item["name"],
                category=categories.get("/".join(category_path_parts(item["category"])))
                if item.get("category")
                else None,
                price=item["price"],
                cost=item["cost"],
                is_active=item["is_active"],
            )
            for item in items
        ],
        update_conflicts=True,
        unique_fields=["sku"],
        update_fields=["name", "category", "price", "cost", "is_active", "updated_at"],
    )
    return [(p.sku, p.pk, p.sku not in known) for p in products]


def receipt_lines_for_output(receipt: Receipt) -> list[ReceiptLine]:
    return list(receipt.lines.select_related("product").order_by("line_no"))

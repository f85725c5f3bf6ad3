"""Purchase history from another system, stored set-wise: a batch of receipts in a few statements.

The same rules as `receipts_ingest_bulk` (idempotent by store and receipt number with the same
content hash, the customer found as the till finds them, unknown SKUs added to the catalogue,
money columns checked for overflow), but shaped for an import's volume: the lines travel as one
JSON document that the caller built beforehand (in the import's reading thread), and receipts
and lines go in with one statement that joins the lines to the receipts it inserted and to the
catalogue by SKU. Nothing per receipt is adapted or built as a model in Python, which was most of
the history import's time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.models import Store
from customers.access import lookup_customers_sql
from customers.buyers import customers_mark_buyers
from customers.models import LifecycleStage

from .. import signals
from ..models import Product, Receipt
from .idempotency import content_hash, receipt_canonical
from .receipts import (
    BulkResult,
    _conflict,
    _error,
    _insert_one_by_one,
    logger,
    settle_repeats,
)
from .references import customer_index, customer_ref_errors, line_inputs, products_for_lines

# What `receipt_canonical` writes for a receipt whose customer is not yet known; the import's
# reading thread hashes nothing, it leaves the text with this placeholder (see `HistoryReceipt`).
UNRESOLVED = '"customer_id":null'


@dataclass(slots=True)
class HistoryReceipt:
    """One receipt of a file, parsed (without the database) and ready to be stored.

    `data` is a receipt as the POS API validates it. `position` names the receipt's lines in
    the batch's lines document. `text` is the canonical text with the phone left out and no
    customer id: a receipt found by phone is hashed, as the till's path hashes it, with the
    customer's id in the phone's place, which only the batch's look-up knows.
    `capacity` holds the overflow errors found on lines with their cost; `needs_cost` says some
    line takes the catalogue's cost, so its check waits for the products. `key` and `row` are
    the receipt's parts of the look-up's and the insert's JSON documents (`_STORED`, `_INSERT`)
    but for the customer and the hash, written in the reading thread too.
    """

    index: int
    position: int
    store: Store
    data: dict[str, Any]
    text: str
    capacity: dict[str, list[str]]
    needs_cost: bool
    key: str
    row: str


# Each look-up is one index probe (a LATERAL subquery with LIMIT, which PostgreSQL cannot turn
# into a join): joined to the JSON's rows, whose count it cannot estimate, the planner picks a
# hash join over a sequential scan of every receipt (or product), which grows with the table.
_STORED = """
SELECT w.s, w.p, r.id, r.content_hash
FROM json_to_recordset(%s::json) AS w(s bigint, p text)
CROSS JOIN LATERAL (
    SELECT id, content_hash FROM sales_receipt WHERE store_id = w.s AND pos_receipt_id = w.p
    LIMIT 1
) r
"""

_MISSING_SKUS = """
SELECT w.sku FROM json_array_elements_text(%s::json) AS w(sku)
LEFT JOIN LATERAL (SELECT 1 AS found FROM sales_product WHERE sku = w.sku LIMIT 1) p ON TRUE
WHERE p.found IS NULL
"""

# Receipts, then the lines of those actually inserted (ON CONFLICT: a concurrent import may have
# stored some first), joined to the catalogue by SKU: one probe per distinct SKU (a batch repeats
# its products), materialized so that the planner does not probe again per line. A line without
# its cost takes the catalogue's, as `receipts_ingest_bulk` does. One statement, which writes
# each receipt's margin (the sum of its lines' generated `margin`, same formula) with the
# receipt: the margin trigger then leaves these receipts alone (`sales.margin_written`,
# migration 0010) instead of writing each of them a second time.
_INSERT = """
WITH r AS (
    SELECT * FROM json_to_recordset(%s::json)
        AS r(i int, s bigint, c bigint, p text, t timestamptz, m text, ch text, total numeric,
             h text)
), j AS (
    SELECT * FROM json_to_recordset(%s::json)
        AS j(i int, n smallint, k text, q numeric, u numeric, d numeric, c numeric)
), p AS MATERIALIZED (
    SELECT k.k, p.id, p.cost FROM (SELECT DISTINCT k FROM j) k
    CROSS JOIN LATERAL (SELECT id, cost FROM sales_product WHERE sku = k.k LIMIT 1) p
), l AS (
    SELECT j.i, j.n, p.id AS product, j.q, j.u, j.d, coalesce(j.c, p.cost) AS c
    FROM j JOIN p ON p.k = j.k
), m AS (
    SELECT i, sum(round(q * u - d - q * c, 2)) AS margin FROM l GROUP BY i
), ins AS (
    INSERT INTO sales_receipt
        (store_id, customer_id, pos_receipt_id, purchased_at, payment_method, channel, total,
         content_hash, created_at, margin)
    SELECT r.s, r.c, r.p, r.t, r.m, r.ch, r.total, r.h, %s, coalesce(m.margin, 0)
    FROM r LEFT JOIN m ON m.i = r.i
    ON CONFLICT (store_id, pos_receipt_id) DO NOTHING
    RETURNING id, store_id, pos_receipt_id
), got AS (
    SELECT ins.id, r.i FROM ins JOIN r ON r.s = ins.store_id AND r.p = ins.pos_receipt_id
), lines AS (
    INSERT INTO sales_receiptline
        (receipt_id, line_no, product_id, quantity, unit_price, discount, unit_cost)
    SELECT got.id, l.n, l.product, l.q, l.u, l.d, l.c FROM l JOIN got ON got.i = l.i
)
SELECT i, id FROM got
"""

_MARGIN_WRITTEN = (
    "SELECT set_config('sales.margin_written', 'on', true);"
    f"{_INSERT};"
    "SELECT set_config('sales.margin_written', 'off', true)"
)

_PHONE_OWNERS = """
SELECT w.number, p.customer_id, c.lifecycle_stage = %s
FROM json_array_elements_text(%s::json) AS w(number)
CROSS JOIN LATERAL (
    SELECT customer_id FROM customers_customerphone WHERE number = w.number LIMIT 1
) p
JOIN customers_customer c ON c.id = p.customer_id
"""


def _phone_owners(user, numbers: list[str]) -> tuple[dict[str, int], set[int]]:
    """The owner of each number among the customers `user` may look up, in one statement, and
    those of them already marked buyers (`customers_mark_buyers` has nothing to do for them).

    The till's look-up (`customer_index`) scoped by `lookup_customers_sql`; one index probe
    per number, as `customers.imports.sql.phone_owners` explains.
    """
    if not numbers:
        return {}, set()
    scope, params = lookup_customers_sql(user, "c")
    # Only customers.access' own condition goes into the text; values are parameters.
    sql = f"{_PHONE_OWNERS} WHERE {scope}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [LifecycleStage.CUSTOMER.value, json.dumps(numbers), *params])
        rows = cursor.fetchall()
    return {number: cid for number, cid, _bought in rows}, {
        cid for _n, cid, bought in rows if bought
    }


def _keys(receipts: list[HistoryReceipt]) -> str:
    # Arrays of a batch's values travel as JSON: psycopg adapts a list item by item in Python.
    return "[" + ",".join([f"{{{r.key}}}" for r in receipts]) + "]"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class _StoredLater(Sequence):
    """`receipts_stored_bulk`'s `stored`, read from the database only if a receiver reads it.

    The bonus programme, today's only receiver, ignores imported history before looking; a
    million receipts need not be built as models for nobody.
    """

    def __init__(self, created: list[HistoryReceipt], customer, results) -> None:
        self._receipts = created
        self._customer = customer
        self._results = results
        self._items: list | None = None

    def _load(self) -> list:
        if self._items is None:
            created = {
                self._results[r.index].id: _till_data(r, self._customer[r.index])
                for r in self._receipts
            }
            skus = {line["sku"] for data in created.values() for line in data["lines"]}
            products = {p.sku: p for p in Product.objects.filter(sku__in=skus)}
            receipts = Receipt.objects.filter(pk__in=created).select_related("store")
            self._items = [
                (receipt, data, line_inputs(data, products)[0])
                for receipt in receipts
                for data in [created[receipt.pk]]
            ]
        return self._items

    def __len__(self) -> int:
        return len(self._receipts)

    def __getitem__(self, index):
        return self._load()[index]

    def __iter__(self) -> Iterator:
        return iter(self._load())


def history_receipts_store(
    *, user, receipts: list[HistoryReceipt], lines_json: str
) -> list[BulkResult]:
    """Store a batch of imported receipts, each accepted or refused on its own, in a few
    statements whatever the batch's size; results in the order of `receipts`.

    `lines_json` holds every line of `receipts` as `{i: position, n: line no, k: sku, q, u, d,
    c: unit cost or null}`; lines of receipts that are refused or already stored are left out
    by the insert's join.
    """
    if not receipts:
        return []
    results = {
        r.index: BulkResult(index=r.index, pos_receipt_id=r.data["pos_receipt_id"])
        for r in receipts
    }
    owners, bought = _phone_owners(
        user, sorted({r.data["phone"] for r in receipts if r.data["phone"]})
    )
    cards = customer_index(user, (r.data for r in receipts if r.data["card"])).by_card

    # The customer and the content hash, as the till's path has them.
    customer: dict[int, int | None] = {}
    digests: dict[int, str] = {}
    refused: dict[int, dict[str, list[str]]] = {}
    for r in receipts:
        data, cid = r.data, None
        if data["phone"]:
            cid = owners.get(data["phone"])
            if cid is None:
                digests[r.index] = content_hash(receipt_canonical(data))
                refused[r.index] = customer_ref_errors(data)
            else:
                digests[r.index] = _digest(r.text.replace(UNRESOLVED, f'"customer_id":{cid}', 1))
        else:
            digests[r.index] = _digest(r.text)
            if data["card"]:
                cid = cards.get(data["card"])
                if cid is None:
                    refused[r.index] = customer_ref_errors(data)
        customer[r.index] = cid

    with connection.cursor() as cursor:
        cursor.execute(_STORED, [_keys(receipts)])
        stored = {(s, p): (pk, digest) for s, p, pk, digest in cursor.fetchall()}

    pending: list[HistoryReceipt] = []
    first_in_batch: dict[tuple[int, str], int] = {}
    repeats: list[tuple[int, int]] = []
    for r in receipts:
        key = (r.store.pk, r.data["pos_receipt_id"])
        result = results[r.index]
        if key in stored:
            pk, digest = stored[key]
            if digest == digests[r.index]:
                result.status, result.id = "duplicate", pk
            else:
                result.error = _conflict(key[1])
        elif key in first_in_batch:
            repeats.append((r.index, first_in_batch[key]))
        else:
            first_in_batch[key] = r.index
            pending.append(r)

    ready: list[HistoryReceipt] = []
    costly: list[HistoryReceipt] = []
    for r in pending:
        errors = refused.get(r.index) or r.capacity
        if errors:
            results[r.index].error = _error("invalid", _("The receipt is invalid."), errors)
        elif r.needs_cost:
            costly.append(r)
        else:
            ready.append(r)
    if ready or costly:
        _catalogue_complete([*ready, *costly])
    if costly:
        # Lines taking the catalogue's cost are checked for overflow once it is known.
        products = products_for_lines(line for r in costly for line in r.data["lines"])
        for r in costly:
            _lines, errors = line_inputs(r.data, products)
            if errors:
                results[r.index].error = _error("invalid", _("The receipt is invalid."), errors)
            else:
                ready.append(r)

    if ready:
        try:
            with transaction.atomic():
                _insert(ready, customer, digests, results, lines_json)
        except DatabaseError:
            logger.exception("history insert failed; storing receipts one by one")
            _store_one_by_one(user, ready, customer, results)

    settle_repeats(repeats, digests, results)

    created = [r for r in ready if results[r.index].status == "created"]
    _announce(created, customer, results)
    buyers = [customer[r.index] for r in created]
    # Most of a history's receipts are of customers who bought before: marking only the others
    # spares the card table a statement per batch once every customer has bought.
    customers_mark_buyers([cid for cid in buyers if cid not in bought])
    # No metrics refresh per batch: years of history would queue one per buyer per batch while
    # the import runs; the import asks for one recompute when the file is done (`finished`).
    return [results[r.index] for r in receipts]


def _catalogue_complete(receipts: list[HistoryReceipt]) -> None:
    """Add the SKUs the catalogue lacks (a file's lines always name their product)."""
    skus = sorted({line["sku"] for r in receipts for line in r.data["lines"]})
    with connection.cursor() as cursor:
        cursor.execute(_MISSING_SKUS, [json.dumps(skus)])
        missing = {row[0] for row in cursor.fetchall()}
    if missing:
        products_for_lines(
            line for r in receipts for line in r.data["lines"] if line["sku"] in missing
        )


def _insert(ready, customer, digests, results, lines_json: str) -> None:
    rows = ",".join(
        [
            f'{{{r.key},{r.row},"c":{customer[r.index] or "null"},"h":"{digests[r.index]}"}}'
            for r in ready
        ]
    )
    with connection.cursor() as cursor:
        # Local to the transaction, and undone with the caller's savepoint should the insert
        # fail (the one-by-one retry's lines are then summed by the trigger). The three
        # statements go in one round trip (Django's psycopg cursor binds parameters on the
        # client, which allows several statements); the insert's answer is the second result.
        cursor.execute(_MARGIN_WRITTEN, [f"[{rows}]", lines_json, timezone.now()])
        cursor.nextset()
        inserted = dict(cursor.fetchall())
    lost = []
    for r in ready:
        receipt_id = inserted.get(r.position)
        if receipt_id is None:
            lost.append(r)
        else:
            results[r.index].status, results[r.index].id = "created", receipt_id
    if lost:
        # Another import stored these between our look and our insert; it has committed.
        with connection.cursor() as cursor:
            cursor.execute(_STORED, [_keys(lost)])
            stored = {(s, p): (pk, digest) for s, p, pk, digest in cursor.fetchall()}
        for r in lost:
            pk, digest = stored.get((r.store.pk, r.data["pos_receipt_id"]), (None, None))
            if pk is not None and digest == digests[r.index]:
                results[r.index].status, results[r.index].id = "duplicate", pk
            else:
                results[r.index].error = _conflict(r.data["pos_receipt_id"])


def _till_data(r: HistoryReceipt, customer_id: int | None) -> dict[str, Any]:
    # The receipt as `receipt_ingest` takes it: a customer found by phone named by id.
    if customer_id and r.data["phone"]:
        return {**r.data, "customer_id": customer_id, "phone": ""}
    return r.data


def _store_one_by_one(user, ready, customer, results) -> None:
    by_store: dict[int, list] = {}
    for r in ready:
        by_store.setdefault(r.store.pk, []).append(r)
    for receipts in by_store.values():
        _insert_one_by_one(
            user,
            receipts[0].store,
            [
                (r.index, _till_data(r, customer[r.index]), customer[r.index], None)
                for r in receipts
            ],
            results,
        )


def _announce(created: list[HistoryReceipt], customer, results) -> None:
    """Tell `receipts_stored_bulk`'s receivers (loyalty) about the batch, marked imported."""
    if not created or not signals.receipts_stored_bulk.has_listeners(Receipt):
        return
    by_store: dict[int, tuple[Store, list[HistoryReceipt]]] = {}
    for r in created:
        by_store.setdefault(r.store.pk, (r.store, []))[1].append(r)
    for store, receipts in by_store.values():
        signals.receipts_stored_bulk.send(
            sender=Receipt,
            store=store,
            stored=_StoredLater(receipts, customer, results),
            imported=True,
        )

"""Purchase history from CSV/XLSX, through the same ingest rules as the POS API.

Each file row is one receipt line; consecutive rows with the same store and receipt number are
one receipt (a batch never splits a receipt). Receipts follow the POS API's bulk rules, stored
set-wise by `sales.ingest.history` (the rows parsed in the import's reading thread, see
`prepare`), so they are idempotent by (store, receipt number) — a repeated file reports them as
already stored — and the customer is found by phone or card as the till finds them. The
receipt's total is the sum of its lines (a "total" column, when mapped, must agree to the
kopeck). Returns: lines with a negative quantity, or with a return flag, become a return of the
same receipt's matching lines, stored through `return_ingest` like the till's returns.
"""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.models import Store
from customers.imports import parsing
from customers.imports.engine import RowReport, previous_batch_committed, register_processor
from customers.imports.mapping import Target, normalise_header, register_kind
from customers.imports.models import ImportJob, ImportKind, RowOutcome

from . import signals
from .ingest.history import HistoryReceipt, history_receipts_store
from .ingest.idempotency import (
    IdempotencyConflict,
    _dec,
    canonical_text,
    line_canonical,
    receipt_canonical,
)
from .ingest.returns import return_ingest
from .models import PaymentMethod, Receipt, ReceiptLine, SalesChannel
from .services import MAX_MONEY, LineInput, money, receipt_capacity_errors

CENT = Decimal("0.01")
MILLI = Decimal("0.001")
# Past any row's end: a column the mapping leaves out reads as an empty cell.
ABSENT = 1 << 30
# Spellings of lines kept per import (about a kilobyte each), then forgotten: memory stays flat.
LINE_CACHE = 4096
_LINE_KEYS = ("quantity", "price", "discount", "cost", "is_return", "sku", "name", "category")
# One JSON value as `canonical_text` spells it (a text, number or null).
_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _receipt_text(data: dict[str, Any], lines: list[str]) -> str:
    """`canonical_text(receipt_canonical(...))` of a parsed receipt without phone, customer or
    points, its lines' texts given: written directly, since a general `json.dumps` with sorted
    keys was the reading thread's largest cost. Keys in sorted order, as `canonical_text`'s;
    `HistoryProcessor` checks the two agree before it uses this (see `_fast_text_agrees`)."""
    return (
        f'{{"card":{_json(data["card"])},"channel":{_json(data["channel"])},'
        f'"customer_id":null,"lines":[{",".join(lines)}],'
        f'"payment_method":{_json(data["payment_method"])},"phone":"",'
        f'"pos_receipt_id":{_json(data["pos_receipt_id"])},'
        f'"purchased_at":{_json(data["purchased_at"].astimezone(dt.UTC).isoformat())},'
        f'"total":{_json(_dec(data["total"]))}}}'
    )


def _slow_text(data: dict[str, Any], lines: list[dict[str, Any]]) -> str:
    canonical = receipt_canonical({**data, "phone": "", "lines": []})
    canonical["lines"] = lines
    return canonical_text(canonical)


def _fast_text_agrees() -> bool:
    """Whether `_receipt_text` still writes what `receipt_canonical` + `canonical_text` write,
    for a receipt with awkward values: should either change, the import falls back to them
    rather than hash receipts differently from the till."""
    line = {
        "sku": 'S"1\\ё',
        "name": "Платье «Ночь»\n",
        "category": "",
        "quantity": Decimal("1.500"),
        "unit_price": Decimal("10.00"),
        "discount": Decimal("0.00"),
        "unit_cost": None,
    }
    data = {
        "pos_receipt_id": "R/1 ё",
        "purchased_at": dt.datetime(2024, 3, 1, 10, 5, tzinfo=zoneinfo.ZoneInfo("Asia/Omsk")),
        "customer_id": None,
        "phone": "",
        "card": "77\u2028",
        "payment_method": PaymentMethod.CARD,
        "channel": SalesChannel.STORE,
        "total": Decimal("15.00"),
        "lines": [line],
    }
    canonical = line_canonical(line)
    return _receipt_text(data, [canonical_text(canonical)]) == _slow_text(data, [canonical])


def _text(value: Any) -> str:
    # `parsing.text`, with the cells of a CSV (all strings) spared its type checks.
    return value.strip() if type(value) is str else parsing.text(value)


def _t(key: str, label, *headers: str) -> Target:
    return Target(key, label, tuple(normalise_header(h) for h in headers))


HISTORY_TARGETS = (
    _t("store", gettext_lazy("Store (code or name)"), "магазин", "store", "точка", "код магазина"),
    _t(
        "purchased_at",
        gettext_lazy("Date and time"),
        "дата",
        "дата и время",
        "дата чека",
        "время",
        "date",
        "datetime",
        "purchased at",
    ),
    _t(
        "receipt",
        gettext_lazy("Receipt number"),
        "чек",
        "номер чека",
        "receipt",
        "receipt number",
        "receipt no",
    ),
    _t("phone", gettext_lazy("Customer phone"), "телефон", "телефон клиента", "phone"),
    _t("card", gettext_lazy("Loyalty card"), "карта", "номер карты", "card", "card number"),
    _t("sku", gettext_lazy("SKU"), "артикул", "sku", "код товара", "код"),
    _t(
        "name", gettext_lazy("Product name"), "товар", "наименование", "название", "product", "name"
    ),
    _t("category", gettext_lazy("Category"), "категория", "группа", "category"),
    _t("quantity", gettext_lazy("Quantity"), "количество", "кол во", "qty", "quantity"),
    _t("price", gettext_lazy("Price"), "цена", "price", "unit price"),
    _t("cost", gettext_lazy("Cost"), "себестоимость", "закупочная цена", "cost", "unit cost"),
    _t("discount", gettext_lazy("Discount"), "скидка", "discount"),
    _t("is_return", gettext_lazy("Return (yes/no)"), "возврат", "return", "is return"),
    _t("payment_method", gettext_lazy("Payment method"), "оплата", "способ оплаты", "payment"),
)
register_kind(ImportKind.HISTORY, lambda: HISTORY_TARGETS)

_PAYMENT = {
    "наличные": PaymentMethod.CASH,
    "cash": PaymentMethod.CASH,
    "карта": PaymentMethod.CARD,
    "card": PaymentMethod.CARD,
    "сбп": PaymentMethod.SBP,
    "sbp": PaymentMethod.SBP,
    "бонусы": PaymentMethod.BONUS,
}


def _capacity(lines: list[dict[str, Any]]) -> tuple[dict[str, list[str]], bool]:
    """The receipt's overflow errors (`receipt_capacity_errors`), and whether they wait for the
    catalogue's cost of a line that gives none. The sums are checked first: nearly every
    receipt fits, and only one that does not is spelled out line by line."""
    if any(line["unit_cost"] is None for line in lines):
        return {}, True
    costs = [line["quantity"] * line["unit_cost"] for line in lines]
    if (
        sum(costs, Decimal(0)) <= MAX_MONEY
        and all(cost <= MAX_MONEY for cost in costs)
        and all(line["quantity"] * line["unit_price"] <= MAX_MONEY for line in lines)
    ):
        return {}, False
    inputs = [
        LineInput(
            product=None,
            quantity=line["quantity"],
            unit_price=line["unit_price"],
            discount=line["discount"],
            unit_cost=line["unit_cost"],
        )
        for line in lines
    ]
    return receipt_capacity_errors(inputs), False


@dataclass(slots=True, frozen=True)
class _Line:
    """A parsed line, shared by every row that spells it the same: read, never changed."""

    is_return: bool
    line: dict[str, Any]
    canonical: dict[str, Any]
    text: str
    amount: Decimal
    sql: str


@dataclass(slots=True)
class _Parsed:
    receipt: HistoryReceipt
    returns: list[dict[str, Any]]


@dataclass(slots=True)
class PreparedHistory:
    """A batch as `prepare` leaves it: report lines of rows that did not parse, parsed
    receipts, and the lines of all of them as the JSON document the insert reads."""

    items: list[RowReport | _Parsed]
    lines_json: str


# Entries a dry run keeps of what it saw sold (about 60 bytes each): a file of a million lines
# fits; past it, returns of receipts sold earlier in the file are no longer checked.
DRY_RUN_MEMORY = 1_500_000


class HistoryProcessor:
    # Batches are written by two connections in turn (`customers.imports.engine`): the
    # statements of one while the previous one's report and foreign keys are checked at commit.
    # What that needs of `process` is that it only waits for locks of earlier batches, which
    # the insert does (ON CONFLICT and the catalogue's new products wait for the batch that
    # holds them, and then read what it stored, as `history_receipts_store` does for a
    # concurrent import), and that a return, which reads its receipt, waits for the earlier
    # batches to commit first.
    overlapping = True

    def __init__(self, job: ImportJob):
        self.job = job
        self.actor = job.created_by
        self.columns = {v: int(k) for k, v in (job.mapping or {}).items() if v}
        self._lines: dict[tuple, _Line] = {}
        self._line_columns = [self.columns.get(key, ABSENT) for key in _LINE_KEYS]
        self._key_columns = (
            self.columns.get("store", ABSENT),
            self.columns.get("receipt", ABSENT),
        )
        self._fast_text = _fast_text_agrees()
        # What a dry run has seen sold so far, for the returns later in the file: the hashes of
        # (store, receipt) and of (store, receipt, SKU), a few dozen bytes each, up to a cap.
        self._dry_sold: set[int] = set()
        # Incomplete when full, or when this worker resumes a dry run another one began.
        self._dry_full = bool(job.processed_rows)
        self.stores: dict[str, Store] = {}
        for store in Store.objects.all():
            self.stores[store.code.lower()] = store
            self.stores[store.name.lower()] = store
        # Read here: `prepare` runs in the reading thread, which never queries.
        self.default_store = job.store
        self.allowed_store_ids = None
        user = self.actor
        if user is not None and not (
            user.is_superuser or user.has_perm("customers.view_all_customers")
        ):
            from customers.access import user_store_ids

            self.allowed_store_ids = set(user_store_ids(user))

    def _cell(self, cells: list[Any], key: str) -> Any:
        index = self.columns.get(key)
        if index is None or index >= len(cells):
            return ""
        return cells[index]

    def group_key(self, cells: list[Any]) -> Any:
        # The cells as read (the reader strips text; an XLSX number equals itself as int or
        # float): asked twice per row of a million, so no normalising here.
        n = len(cells)
        store, receipt = self._key_columns
        return (cells[store] if store < n else "", cells[receipt] if receipt < n else "")

    def _store(self, cells) -> Store:
        raw = parsing.text(self._cell(cells, "store"))
        store = self.stores.get(raw.lower()) if raw else self.default_store
        if store is None:
            raise ValueError(_("Unknown store %(store)s.") % {"store": raw[:60]})
        if self.allowed_store_ids is not None and store.pk not in self.allowed_store_ids:
            raise ValueError(_("You may import only into your own stores."))
        return store

    def _line(self, cells) -> _Line:
        """The line of these cells; a spelling seen before (a file repeats its products, prices
        and quantities) is parsed once, as `parsing` does for single numbers."""
        n = len(cells)
        values = tuple([cells[i] if i < n else "" for i in self._line_columns])
        found = self._lines.get(values)
        if found is None:
            if len(self._lines) >= LINE_CACHE:
                self._lines.clear()
            found = self._lines[values] = self._parse_line(*values)
        return found

    def _parse_line(
        self, quantity_raw, price_raw, discount_raw, cost_raw, flag, sku_raw, name_raw, category_raw
    ) -> _Line:
        quantity = parsing.parse_decimal(quantity_raw or 1)
        price = parsing.parse_decimal(price_raw)
        discount = parsing.parse_decimal(discount_raw) if not parsing.is_blank(discount_raw) else 0
        is_return = quantity < 0 or (not parsing.is_blank(flag) and parsing.parse_bool(flag))
        name = _text(name_raw)
        sku = _text(sku_raw) or name
        if not sku:
            raise ValueError(_("Give the SKU or the product name."))
        if price < 0:
            raise ValueError(_("The price cannot be negative."))
        if quantity == 0:
            raise ValueError(_("Quantity must be positive."))
        if discount < 0 or discount > abs(quantity) * price:
            raise ValueError(_("Discount cannot exceed the line's price."))
        line = {
            "sku": sku[:64],
            "name": name[:200] or sku[:200],
            "category": _text(category_raw)[:200],
            "quantity": abs(quantity).quantize(MILLI),
            "unit_price": price.quantize(CENT),
            "discount": Decimal(discount).quantize(CENT),
            "unit_cost": None
            if parsing.is_blank(cost_raw)
            else parsing.parse_decimal(cost_raw).quantize(CENT),
        }
        canonical = line_canonical(line)
        sql = {
            "k": line["sku"],
            "q": str(line["quantity"]),
            "u": str(line["unit_price"]),
            "d": str(line["discount"]),
            "c": None if line["unit_cost"] is None else str(line["unit_cost"]),
        }
        return _Line(
            is_return=is_return,
            line=line,
            canonical=canonical,
            text=canonical_text(canonical),
            amount=money(line["quantity"] * line["unit_price"] - line["discount"]),
            # The line's part of the batch's lines document, written once per spelling.
            sql=json.dumps(sql)[1:-1],
        )

    def _receipt(self, rows: list[tuple[int, list[Any]]]) -> dict[str, Any]:
        first = rows[0][1]
        store = self._store(first)
        number = parsing.text(self._cell(first, "receipt"))
        if not number:
            raise ValueError(_("The receipt number is empty."))
        naive = parsing.parse_datetime(self._cell(first, "purchased_at"))
        zone = store.timezone
        if isinstance(zone, str):
            zone = zoneinfo.ZoneInfo(zone)
        purchased_at = naive.replace(tzinfo=zone)
        phone_raw = self._cell(first, "phone")
        card = parsing.text(self._cell(first, "card"))[:32]
        phone = (
            parsing.phone_e164(parsing.text(phone_raw)) if not parsing.is_blank(phone_raw) else ""
        )
        lines = [self._line(cells) for _row, cells in rows]
        payment = parsing.text(self._cell(first, "payment_method")).lower()
        return {
            "store": store,
            "data": {
                "pos_receipt_id": number[:64],
                "purchased_at": purchased_at,
                "customer_id": None,
                "phone": phone,
                "card": "" if phone else card,
                "payment_method": _PAYMENT.get(payment, PaymentMethod.CARD),
                "channel": SalesChannel.STORE,
                "lines": [line.line for line in lines if not line.is_return],
            },
            "parsed": [line for line in lines if not line.is_return],
            "returns": [line.line for line in lines if line.is_return],
        }

    def prepare(self, batch: list[tuple[int, list[Any]]]) -> PreparedHistory:
        """Parse the batch's receipts and write their lines' JSON, without the database.

        Runs in the import's reading thread (see `customers.imports.engine._read_ahead`), so
        the parsing overlaps the previous batch's statements; what needs the database (the
        customer, what is already stored) is left to `process`.
        """
        groups: list[list[tuple[int, list[Any]]]] = []
        last = object()
        for row_no, cells in batch:
            key = self.group_key(cells)
            if key != last:
                groups.append([])
                last = key
            groups[-1].append((row_no, cells))
        items: list[RowReport | _Parsed] = []
        lines: list[str] = []
        for position, rows in enumerate(groups):
            row_no = rows[0][0]
            try:
                parsed = self._receipt(rows)
            except (ValueError, ValidationError) as exc:
                message = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
                items.append(
                    RowReport(row_no=row_no, outcome=RowOutcome.ERROR, message=message[:500])
                )
                continue
            data, sold = parsed["data"], parsed["parsed"]
            data["total"] = sum((line.amount for line in sold), Decimal(0))
            capacity, needs_cost = _capacity(data["lines"])
            lines.extend(
                f'{{"i":{position},"n":{line_no},{line.sql}}}'
                for line_no, line in enumerate(sold, start=1)
            )
            # The canonical form of `sales.ingest.idempotency`, its lines' parts reused.
            if self._fast_text:
                text = _receipt_text(data, [line.text for line in sold])
            else:
                text = _slow_text(data, [line.canonical for line in sold])
            store = parsed["store"]
            receipt = HistoryReceipt(
                index=row_no,
                position=position,
                store=store,
                data=data,
                text=text,
                capacity=capacity,
                needs_cost=needs_cost,
                key=f'"s":{store.pk},"p":{_json(data["pos_receipt_id"])}',
                row=(
                    f'"i":{position},"t":{_json(data["purchased_at"].isoformat())},'
                    f'"m":{_json(data["payment_method"])},"ch":{_json(data["channel"])},'
                    f'"total":"{data["total"]}"'
                ),
            )
            items.append(_Parsed(receipt, parsed["returns"]))
        return PreparedHistory(items, f"[{','.join(lines)}]")

    def process(self, batch: PreparedHistory, *, dry_run: bool) -> list[RowReport]:
        out = [item for item in batch.items if isinstance(item, RowReport)]
        parsed = [item for item in batch.items if isinstance(item, _Parsed)]
        if dry_run:
            return out + self._judge(parsed)
        results = history_receipts_store(
            user=self.actor,
            receipts=[p.receipt for p in parsed if p.receipt.data["lines"]],
            lines_json=batch.lines_json,
        )
        for result in results:
            if result.status == "created":
                out.append(RowReport(row_no=result.index, outcome=RowOutcome.CREATED))
            elif result.status == "duplicate":
                out.append(
                    RowReport(
                        row_no=result.index,
                        outcome=RowOutcome.UNCHANGED,
                        message=_("Already stored."),
                    )
                )
            else:
                error = result.error or {}
                fields = error.get("fields") or {}
                detail = "; ".join(m for msgs in fields.values() for m in msgs)
                out.append(
                    RowReport(
                        row_no=result.index,
                        outcome=RowOutcome.ERROR,
                        message=(detail or error.get("message", ""))[:500],
                        changes=fields,
                    )
                )
        seen = {row.row_no: row for row in out}
        if any(item.returns for item in parsed):
            previous_batch_committed()
        for item in parsed:
            if not item.returns:
                continue
            receipt = item.receipt
            row = self._return(receipt.store, receipt.index, receipt.data, item.returns)
            existing = seen.get(receipt.index)
            if existing is None:
                out.append(row)
            elif row.outcome == RowOutcome.ERROR:
                existing.outcome, existing.message = row.outcome, row.message
        return out

    def finished(self) -> None:
        """The whole file is stored: the analytics recompute once (`purchases_imported`)."""
        transaction.on_commit(lambda: signals.purchases_imported.send(sender=None), robust=True)

    def _judge(self, parsed: list[_Parsed]) -> list[RowReport]:
        """The dry run's outcome: a receipt already stored is unchanged, any other created; a
        return whose receipt is neither stored nor sold earlier in the file, or whose product
        is not on it, is the error the run would report."""
        by_store: dict[int, list[_Parsed]] = {}
        for item in parsed:
            by_store.setdefault(item.receipt.store.pk, []).append(item)
        out = []
        for store_id, items in by_store.items():
            known = set(
                Receipt.objects.filter(
                    store_id=store_id,
                    pos_receipt_id__in=[i.receipt.data["pos_receipt_id"] for i in items],
                ).values_list("pos_receipt_id", flat=True)
            )
            stored_skus: dict[str, set[str]] = {}
            returned = [
                i.receipt.data["pos_receipt_id"]
                for i in items
                if i.returns and i.receipt.data["pos_receipt_id"] in known
            ]
            for number, sku in ReceiptLine.objects.filter(
                receipt__store_id=store_id, receipt__pos_receipt_id__in=returned
            ).values_list("receipt__pos_receipt_id", "product__sku"):
                stored_skus.setdefault(number, set()).add(sku)
            for item in items:
                data = item.receipt.data
                number = data["pos_receipt_id"]
                if data["lines"] and number in known:
                    outcome = RowOutcome.UNCHANGED
                else:
                    outcome = RowOutcome.CREATED
                message = self._dry_return_error(store_id, item, known, stored_skus)
                if data["lines"] and not self._dry_full:
                    self._dry_sold.add(hash((store_id, number)))
                    self._dry_sold.update(hash((store_id, number, x["sku"])) for x in data["lines"])
                    self._dry_full = len(self._dry_sold) >= DRY_RUN_MEMORY
                if message:
                    out.append(
                        RowReport(
                            row_no=item.receipt.index, outcome=RowOutcome.ERROR, message=message
                        )
                    )
                else:
                    out.append(RowReport(row_no=item.receipt.index, outcome=outcome))
        return out

    def _dry_return_error(
        self, store_id: int, item: _Parsed, known: set[str], stored_skus: dict[str, set[str]]
    ) -> str:
        """What `_return` would refuse, judged without writing: the receipt must be stored, sold
        in these rows, or sold earlier in this file, with the returned products on it. Past the
        memory cap a receipt the dry run has not remembered is given the benefit of the doubt."""
        if not item.returns:
            return ""
        data = item.receipt.data
        number = data["pos_receipt_id"]
        if number in known:
            on_receipt = stored_skus.get(number, set())
        elif data["lines"]:
            on_receipt = {line["sku"] for line in data["lines"]}
        elif hash((store_id, number)) in self._dry_sold:
            on_receipt = {
                line["sku"]
                for line in item.returns
                if hash((store_id, number, line["sku"])) in self._dry_sold
            }
        elif self._dry_full:
            return ""
        else:
            return str(_("A return of a receipt that is not stored."))
        for line in item.returns:
            if line["sku"] not in on_receipt:
                return str(_("Returned %(sku)s is not on the receipt.") % {"sku": line["sku"]})
        return ""

    def _return(self, store: Store, row_no: int, data: dict, returns: list) -> RowReport:
        receipt = Receipt.objects.filter(store=store, pos_receipt_id=data["pos_receipt_id"]).first()
        if receipt is None:
            return RowReport(
                row_no=row_no,
                outcome=RowOutcome.ERROR,
                message=_("A return of a receipt that is not stored."),
            )
        lines = list(receipt.lines.select_related("product").order_by("line_no"))
        wanted = []
        for line in returns:
            match = next((x for x in lines if x.product.sku == line["sku"]), None)
            if match is None:
                return RowReport(
                    row_no=row_no,
                    outcome=RowOutcome.ERROR,
                    message=_("Returned %(sku)s is not on the receipt.") % {"sku": line["sku"]},
                )
            wanted.append({"line_no": match.line_no, "quantity": line["quantity"]})
        try:
            with transaction.atomic():
                outcome = return_ingest(
                    store=store,
                    data={
                        "pos_return_id": f"{data['pos_receipt_id']}-R"[:64],
                        "pos_receipt_id": data["pos_receipt_id"],
                        "returned_at": data["purchased_at"],
                        "lines": wanted,
                    },
                    refresh=False,  # the finished import has every customer recomputed
                )
        except ValidationError as exc:
            return RowReport(
                row_no=row_no, outcome=RowOutcome.ERROR, message="; ".join(exc.messages)[:500]
            )
        except IdempotencyConflict as exc:
            return RowReport(row_no=row_no, outcome=RowOutcome.ERROR, message=exc.message[:500])
        return RowReport(
            row_no=row_no, outcome=RowOutcome.CREATED if outcome.created else RowOutcome.UNCHANGED
        )


register_processor(ImportKind.HISTORY, HistoryProcessor)

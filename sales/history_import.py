"""Purchase history from CSV/XLSX, through the same ingest rules as the POS API.

Each file row is one receipt line; consecutive rows with the same store and receipt number are
one receipt (a batch never splits a receipt). Receipts go through `receipts_ingest_bulk`, so
they are idempotent by (store, receipt number) — a repeated file reports them as already
stored — and the customer is found by phone or card as the till finds them. The receipt's total
is the sum of its lines (a "total" column, when mapped, must agree to the kopeck). Returns:
lines with a negative quantity, or with a return flag, become a return of the same receipt's
matching lines, stored through `return_ingest` like the till's returns.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.models import Store
from customers.access import lookup_customers
from customers.imports import parsing
from customers.imports.engine import register_processor
from customers.imports.mapping import Target, normalise_header, register_kind
from customers.imports.models import ImportJob, ImportKind, ImportRow, RowOutcome
from customers.imports.sql import phone_owners

from .ingest.idempotency import IdempotencyConflict
from .ingest.receipts import receipts_ingest_bulk
from .ingest.returns import return_ingest
from .models import PaymentMethod, Receipt, SalesChannel
from .services import money

CENT = Decimal("0.01")


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


class HistoryProcessor:
    def __init__(self, job: ImportJob):
        self.job = job
        self.actor = job.created_by
        self.columns = {v: int(k) for k, v in (job.mapping or {}).items() if v}
        self.stores: dict[str, Store] = {}
        for store in Store.objects.all():
            self.stores[store.code.lower()] = store
            self.stores[store.name.lower()] = store
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
        return (
            parsing.text(self._cell(cells, "store")),
            parsing.text(self._cell(cells, "receipt")),
        )

    def _store(self, cells) -> Store:
        raw = parsing.text(self._cell(cells, "store"))
        store = self.stores.get(raw.lower()) if raw else self.job.store
        if store is None:
            raise ValueError(_("Unknown store %(store)s.") % {"store": raw[:60]})
        if self.allowed_store_ids is not None and store.pk not in self.allowed_store_ids:
            raise ValueError(_("You may import only into your own stores."))
        return store

    def _line(self, cells) -> dict[str, Any]:
        quantity = parsing.parse_decimal(self._cell(cells, "quantity") or 1)
        price = parsing.parse_decimal(self._cell(cells, "price"))
        discount_raw = self._cell(cells, "discount")
        discount = parsing.parse_decimal(discount_raw) if not parsing.is_blank(discount_raw) else 0
        cost_raw = self._cell(cells, "cost")
        flag = self._cell(cells, "is_return")
        is_return = quantity < 0 or (not parsing.is_blank(flag) and parsing.parse_bool(flag))
        sku = parsing.text(self._cell(cells, "sku")) or parsing.text(self._cell(cells, "name"))
        if not sku:
            raise ValueError(_("Give the SKU or the product name."))
        if price < 0:
            raise ValueError(_("The price cannot be negative."))
        if quantity == 0:
            raise ValueError(_("Quantity must be positive."))
        if discount < 0 or discount > abs(quantity) * price:
            raise ValueError(_("Discount cannot exceed the line's price."))
        return {
            "sku": sku[:64],
            "name": parsing.text(self._cell(cells, "name"))[:200] or sku[:200],
            "category": parsing.text(self._cell(cells, "category"))[:200],
            "quantity": abs(quantity).quantize(Decimal("0.001")),
            "unit_price": price.quantize(CENT),
            "discount": Decimal(discount).quantize(CENT),
            "unit_cost": None
            if parsing.is_blank(cost_raw)
            else parsing.parse_decimal(cost_raw).quantize(CENT),
            "is_return": is_return,
        }

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
                "lines": [line for line in lines if not line["is_return"]],
            },
            "returns": [line for line in lines if line["is_return"]],
        }

    def process(self, batch: list[tuple[int, list[Any]]], *, dry_run: bool) -> list[ImportRow]:
        groups: list[list[tuple[int, list[Any]]]] = []
        last = object()
        for row_no, cells in batch:
            key = self.group_key(cells)
            if key != last:
                groups.append([])
                last = key
            groups[-1].append((row_no, cells))
        out: list[ImportRow] = []
        by_store: dict[int, list[tuple[int, dict, list]]] = {}
        for rows in groups:
            row_no = rows[0][0]
            try:
                parsed = self._receipt(rows)
            except (ValueError, ValidationError) as exc:
                message = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
                out.append(
                    ImportRow(row_no=row_no, outcome=RowOutcome.ERROR, message=message[:500])
                )
                continue
            data = parsed["data"]
            for line in data["lines"]:
                line.pop("is_return")
            data["total"] = sum(
                (
                    money(line["quantity"] * line["unit_price"] - line["discount"])
                    for line in data["lines"]
                ),
                Decimal(0),
            )
            by_store.setdefault(parsed["store"].pk, []).append((row_no, data, parsed["returns"]))
        self._resolve_phones(data for items in by_store.values() for _n, data, _r in items)
        stores = {s.pk: s for s in Store.objects.filter(pk__in=by_store)}
        for store_id, items in by_store.items():
            out.extend(self._ingest(stores[store_id], items, dry_run=dry_run))
        return out

    def _resolve_phones(self, receipts: Iterable[dict[str, Any]]) -> None:
        """Name each receipt's customer by id where the phone finds one the user may look up.

        The same look-up as the till's (`lookup_customers`, exact number), done once per batch
        as a join (see `phone_owners`); a phone nobody has stays on the receipt, so the ingest
        reports it in its own words.
        """
        receipts = [data for data in receipts if data["phone"]]
        owners = phone_owners({data["phone"] for data in receipts})
        if not owners:
            return
        allowed = set(
            lookup_customers(self.actor)
            .filter(pk__in=set(owners.values()))
            .values_list("pk", flat=True)
        )
        for data in receipts:
            customer_id = owners.get(data["phone"])
            if customer_id in allowed:
                data["customer_id"], data["phone"] = customer_id, ""

    def _ingest(self, store: Store, items, *, dry_run: bool) -> list[ImportRow]:
        out: list[ImportRow] = []
        with_lines = [(row_no, data) for row_no, data, _r in items if data["lines"]]
        if dry_run:
            known = set(
                Receipt.objects.filter(
                    store=store, pos_receipt_id__in=[d["pos_receipt_id"] for _n, d in with_lines]
                ).values_list("pos_receipt_id", flat=True)
            )
            for row_no, data in with_lines:
                outcome = (
                    RowOutcome.UNCHANGED
                    if data["pos_receipt_id"] in known
                    else (RowOutcome.CREATED)
                )
                out.append(ImportRow(row_no=row_no, outcome=outcome))
        else:
            results = receipts_ingest_bulk(
                user=self.actor, store=store, items=with_lines, imported=True
            )
            for result in results:
                if result.status == "created":
                    out.append(ImportRow(row_no=result.index, outcome=RowOutcome.CREATED))
                elif result.status == "duplicate":
                    out.append(
                        ImportRow(
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
                        ImportRow(
                            row_no=result.index,
                            outcome=RowOutcome.ERROR,
                            message=(detail or error.get("message", ""))[:500],
                            changes=fields,
                        )
                    )
        seen = {row.row_no for row in out}
        for row_no, data, returns in items:
            if not returns:
                continue
            if dry_run:
                if row_no not in seen:
                    out.append(ImportRow(row_no=row_no, outcome=RowOutcome.CREATED))
                continue
            row = self._return(store, row_no, data, returns)
            if row_no in seen:
                if row.outcome == RowOutcome.ERROR:
                    for existing in out:
                        if existing.row_no == row_no:
                            existing.outcome, existing.message = row.outcome, row.message
            else:
                out.append(row)
        return out

    def _return(self, store: Store, row_no: int, data: dict, returns: list) -> ImportRow:
        receipt = Receipt.objects.filter(store=store, pos_receipt_id=data["pos_receipt_id"]).first()
        if receipt is None:
            return ImportRow(
                row_no=row_no,
                outcome=RowOutcome.ERROR,
                message=_("A return of a receipt that is not stored."),
            )
        lines = list(receipt.lines.select_related("product").order_by("line_no"))
        wanted = []
        for line in returns:
            match = next((x for x in lines if x.product.sku == line["sku"]), None)
            if match is None:
                return ImportRow(
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
                )
        except ValidationError as exc:
            return ImportRow(
                row_no=row_no, outcome=RowOutcome.ERROR, message="; ".join(exc.messages)[:500]
            )
        except IdempotencyConflict as exc:
            return ImportRow(row_no=row_no, outcome=RowOutcome.ERROR, message=exc.message[:500])
        return ImportRow(
            row_no=row_no, outcome=RowOutcome.CREATED if outcome.created else RowOutcome.UNCHANGED
        )


register_processor(ImportKind.HISTORY, HistoryProcessor)

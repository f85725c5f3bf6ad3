"""Writing the simulated demo base with COPY: cards and their details, receipts, returns,
the contact log. Ids were reserved beforehand, so children reference parents directly."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
from django.db import connection

from crm.pg.bulk import copy_rows, copy_text, money, reserve_ids
from customers.models import (
    ConsentEvent,
    Contact,
    Customer,
    CustomerPhone,
    ImportantDate,
    LifecycleStage,
    ProcessingConsent,
    ProcessingConsentDocument,
    Source,
)
from sales.models import Receipt, ReceiptLine, Return, ReturnLine

from . import catalog as cat
from .contacts import ContactRow
from .people import People, custom_fields_json
from .purchases import CHANNELS, PAYMENT_METHODS, Receipts, Returns

CHUNK = 200_000
KOPECK = Decimal("0.01")

_STAGES = [LifecycleStage.LEAD.value, LifecycleStage.CUSTOMER.value, LifecycleStage.LAPSED.value]


def write_customers(
    *,
    rnd: random.Random,
    people: People,
    first_id: int,
    registered_text: list[str],
    stage: np.ndarray,
    store_ids: list[int],
    channel_ids: list[int],
    staff_ids: list[int],
) -> None:
    """The cards, with stage and creation time taken from the simulated purchases."""
    manager = staff_ids[2] if staff_ids else None
    associate = staff_ids[3] if staff_ids else None
    columns = [
        "id",
        "surname",
        "first_name",
        "patronymic",
        "gender",
        "birth_date",
        "phone",
        "email",
        "extra_emails",
        "card_number",
        "postal_code",
        "city",
        "address",
        "workplace",
        "position",
        "marital_status",
        "children_count",
        "interests",
        "preferences",
        "notes",
        "custom_fields",
        "lifecycle_stage",
        "acquisition_channel_id",
        "home_store_id",
        "assigned_manager_id",
        "consent_email",
        "consent_sms",
        "consent_messenger",
        "consent_phone",
        "do_not_contact",
        "erased_at",
        "source",
        "created_by_id",
        "created_at",
        "updated_at",
    ]

    def rows():
        stages = stage.tolist()
        homes = people.home_store.tolist()
        pre_window = people.pre_window.tolist()
        for i, row in enumerate(people.rows):
            home = homes[i]
            # The first store's manager also looks after a few customers of other stores.
            assigned = manager if rnd.random() < (0.05 if home == 0 else 0.005) else None
            consent = row["consent"]
            channel = row["acquisition_channel"]
            yield (
                first_id + i,
                row["surname"],
                row["first_name"],
                row["patronymic"],
                row["gender"],
                row["birth_date"],
                row["phone"],
                row["email"],
                "[]",
                row["card_number"],
                row["postal_code"],
                row["city"],
                row["address"],
                row["workplace"],
                row["position"],
                row["marital_status"],
                row["children_count"],
                row["interests"],
                "",
                row["notes"],
                custom_fields_json(row["custom_fields"]),
                _STAGES[stages[i]],
                channel_ids[channel] if channel is not None else None,
                store_ids[home],
                assigned,
                consent["email"] and not row["withdrawn_email"],
                consent["sms"],
                consent["messenger"],
                consent["phone"],
                row["do_not_contact"],
                None,
                Source.DEMO.value,
                associate if home == 0 and not pre_window[i] else None,
                registered_text[i],
                registered_text[i],
            )

    copy_rows(Customer, columns, rows())


def write_card_details(
    *,
    rnd: random.Random,
    people: People,
    first_id: int,
    registered: list[dt.datetime],
    tag_ids: list[int],
    now: dt.datetime,
) -> dict[str, int]:
    """Phones, tags, family dates and the consent history (one event per grant)."""
    copy_rows(
        CustomerPhone,
        ["customer_id", "number", "kind", "is_primary"],
        ((first_id + i, number, kind, primary) for i, number, kind, primary in people.phones),
    )
    through = Customer.tags.through
    copy_rows(
        through,
        ["customer_id", "tag_id"],
        ((first_id + i, tag_ids[t]) for i, t in people.tags),
    )
    copy_rows(
        ImportantDate,
        ["customer_id", "kind", "label", "date"],
        ((first_id + i, "child_birthday", name, born) for i, name, born in people.children),
    )
    events = []
    for i, row in enumerate(people.rows):
        at = registered[i]
        for channel in ("email", "sms", "messenger", "phone"):
            if row["consent"][channel]:
                events.append((first_id + i, channel, True, at, "Анкета при выдаче карты"))
        if row["withdrawn_email"]:
            span = max(int((now - at).total_seconds()), 120)
            later = at + dt.timedelta(seconds=rnd.randrange(60, span))
            events.append((first_id + i, "email", False, later, "Отписка по ссылке из письма"))
    copy_rows(
        ConsentEvent,
        ["customer_id", "channel", "granted", "at", "source", "note"],
        ((c, ch, g, at, Source.DEMO.value, note) for c, ch, g, at, note in events),
    )
    processing = _write_processing_consents(first_id=first_id, registered=registered, now=now)
    return {
        "phones": len(people.phones),
        "tags": len(people.tags),
        "important dates": len(people.children),
        "consent events": len(events),
        "processing consents": processing,
    }


def _write_processing_consents(*, first_id: int, registered: list[dt.datetime], now) -> int:
    """Paper consent to processing for the cards issued since the document came into force;
    older cards show "no consent", as in a chain that has yet to collect them again."""
    from customers.privacy import defaults

    # Resetting the demo empties the customers tables, the consent documents included.
    document, _created = ProcessingConsentDocument.objects.get_or_create(
        version=defaults.DEFAULT_VERSION,
        defaults={
            "title": defaults.DEFAULT_TITLE,
            "text": defaults.DEFAULT_TEXT,
            "effective_from": defaults.DEFAULT_EFFECTIVE_FROM,
        },
    )
    since = dt.datetime.combine(document.effective_from, dt.time.min, tzinfo=dt.UTC)
    rows = [
        (first_id + i, document.pk, True, at, "paper", f"А-{first_id + i:07d}", "", "", "")
        for i, at in enumerate(registered)
        if at >= since
    ]
    copy_rows(
        ProcessingConsent,
        [
            "customer_id",
            "document_id",
            "granted",
            "at",
            "method",
            "paper_number",
            "scan",
            "import_source",
            "note",
        ],
        rows,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE customers_customer c
               SET processing_document_id = p.document_id, processing_consent_at = p.at
              FROM customers_processingconsent p
             WHERE p.customer_id = c.id AND c.id >= %s
            """,
            [first_id],
        )
    return len(rows)


def _quantity_text(milli: int) -> str:
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli // 1000}.{milli % 1000:03d}"


def write_receipts(
    *,
    receipts: Receipts,
    first_receipt: int,
    first_line: int,
    first_customer: int,
    store_ids: list[int],
    catalog: cat.Catalog,
    progress: Callable[[str], None],
) -> None:
    """Receipts and their lines in chunks; `amount` and `margin` are computed by PostgreSQL."""
    product_ids = catalog.product_ids
    prices = [money(p) for p in catalog.price_kop]
    costs = [money(c) for c in catalog.cost_kop]
    quantity_text: dict[int, str] = {}
    store_col = np.array(store_ids, dtype=np.int64)
    total = receipts.count
    for lo in range(0, total, CHUNK):
        hi = min(lo + CHUNK, total)
        ts = np.datetime_as_string(receipts.ts[lo:hi], unit="s").tolist()
        customers = receipts.customer[lo:hi]
        customer_text = [str(first_customer + c) if c >= 0 else "\\N" for c in customers.tolist()]
        chunk = "\n".join(
            f"{rid}\t{sid}\t{cid}\t{pos:08d}\t{t}+00\t{PAYMENT_METHODS[pm]}\t{CHANNELS[ch]}"
            f"\t{tot // 100}.{tot % 100:02d}\t\t{t}+00"
            for rid, sid, cid, pos, t, pm, ch, tot in zip(
                range(first_receipt + lo, first_receipt + hi),
                store_col[receipts.store[lo:hi]].tolist(),
                customer_text,
                receipts.pos_no[lo:hi].tolist(),
                ts,
                receipts.payment[lo:hi].tolist(),
                receipts.channel[lo:hi].tolist(),
                receipts.total[lo:hi].tolist(),
                strict=True,
            )
        )
        copy_text(
            Receipt,
            [
                "id",
                "store_id",
                "customer_id",
                "pos_receipt_id",
                "purchased_at",
                "payment_method",
                "channel",
                "total",
                "content_hash",
                "created_at",
            ],
            [chunk],
        )
        l_lo = int(receipts.line_start[lo])
        l_hi = int(receipts.line_start[hi]) if hi < total else len(receipts.product)
        products = receipts.product[l_lo:l_hi].tolist()
        lines_text = []
        for lid, rid, no, p, q, d in zip(
            range(first_line + l_lo, first_line + l_hi),
            (receipts.line_receipt[l_lo:l_hi] + first_receipt).tolist(),
            receipts.line_no[l_lo:l_hi].tolist(),
            products,
            receipts.qty_milli[l_lo:l_hi].tolist(),
            receipts.discount[l_lo:l_hi].tolist(),
            strict=True,
        ):
            qt = quantity_text.get(q)
            if qt is None:
                qt = quantity_text[q] = _quantity_text(q)
            lines_text.append(
                f"{lid}\t{rid}\t{no}\t{product_ids[p]}\t{qt}\t{prices[p]}"
                f"\t{money(d) if d else '0'}\t{costs[p]}"
            )
        copy_text(
            ReceiptLine,
            [
                "id",
                "receipt_id",
                "line_no",
                "product_id",
                "quantity",
                "unit_price",
                "discount",
                "unit_cost",
            ],
            ["\n".join(lines_text)],
        )
        progress(f"receipts {hi:,}/{total:,}, lines {l_hi:,}/{len(receipts.product):,}")


def _money(value: Decimal) -> Decimal:
    return value.quantize(KOPECK, rounding=ROUND_HALF_UP)


def write_returns(
    *,
    returns: Returns,
    receipts: Receipts,
    first_receipt: int,
    first_line: int,
    store_ids: list[int],
    catalog: cat.Catalog,
) -> int:
    """Returns and their lines, refunding amount and margin pro rata to the quantity."""
    count = len(returns.receipt)
    if not count:
        return 0
    first_return = reserve_ids(Return, count)
    ts = np.datetime_as_string(returns.ts, unit="s").tolist()
    copy_rows(
        Return,
        [
            "id",
            "store_id",
            "receipt_id",
            "pos_return_id",
            "returned_at",
            "content_hash",
            "created_at",
        ],
        (
            (
                first_return + k,
                store_ids[int(receipts.store[r])],
                first_receipt + r,
                f"R{pos:07d}",
                f"{ts[k]}+00",
                "",
                f"{ts[k]}+00",
            )
            for k, (r, pos) in enumerate(
                zip(returns.receipt.tolist(), returns.pos_no.tolist(), strict=True)
            )
        ),
    )

    def lines():
        for k, index, back in zip(
            returns.line_return.tolist(),
            returns.line.tolist(),
            returns.qty_milli.tolist(),
            strict=True,
        ):
            product = int(receipts.product[index])
            quantity = Decimal(int(receipts.qty_milli[index])) / 1000
            price = Decimal(catalog.price_kop[product]) / 100
            cost = Decimal(catalog.cost_kop[product]) / 100
            discount = Decimal(int(receipts.discount[index])) / 100
            # The same arithmetic as the generated columns and `sales.services.return_record`.
            amount = _money(quantity * price - discount)
            margin = _money(quantity * price - discount - quantity * cost)
            qty = Decimal(back) / 1000
            yield (
                first_return + k,
                first_line + index,
                qty,
                _money(amount * qty / quantity),
                _money(margin * qty / quantity),
            )

    rows = list(lines())
    copy_rows(
        ReturnLine, ["return_doc_id", "receipt_line_id", "quantity", "amount", "margin"], rows
    )
    return len(rows)


def write_contacts(
    *,
    contacts: list[ContactRow],
    first_customer: int,
    home_store: list[int],
    store_ids: list[int],
    staff_ids: list[int],
) -> None:
    """The contact log, each entry filed under the customer's home store."""
    copy_rows(
        Contact,
        [
            "customer_id",
            "staff_id",
            "store_id",
            "at",
            "channel",
            "direction",
            "topic",
            "outcome",
            "agreement",
            "next_step",
            "due_date",
            "done_at",
            "created_at",
        ],
        (
            (
                first_customer + c.customer,
                staff_ids[c.staff] if c.staff is not None else None,
                store_ids[home_store[c.customer]],
                c.at,
                c.channel,
                c.direction,
                c.topic,
                c.outcome,
                c.agreement,
                c.next_step,
                c.due_date,
                c.done_at,
                c.at,
            )
            for c in contacts
        ),
    )

"""Set inserts for volume: rows travel as one JSON document and PostgreSQL builds the records
(`json_populate_recordset` over the table's own row type), as `sales.ingest` does for receipts.
Django's `bulk_create` adapts every value in Python, which was most of an import's time.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from django.db import connection, models


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(type(value))


def next_ids(model: type[models.Model], count: int) -> list[int]:
    """Reserve `count` ids from the table's sequence, so inserted rows are known by id."""
    if not count:
        return []
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [table, count],
        )
        return [row[0] for row in cursor.fetchall()]


def json_insert(
    model: type[models.Model], rows: list[dict[str, Any]], base: dict[str, Any] | None = None
) -> None:
    """INSERT every row (dicts keyed by column name) in one statement.

    `base` holds the columns every row shares (defaults, the batch's time and actor): it travels
    once, as the record that `json_populate_recordset` fills a row's missing keys from, so each
    row carries only what is its own. Rows may differ in their keys: every key of any row is
    written (a column none of them names, nor `base`, gets the table's NULL).
    """
    if not rows:
        return
    table = model._meta.db_table
    seen = dict.fromkeys(base or ())
    for row in rows:
        seen.update(dict.fromkeys(row))
    columns = list(seen)
    names = ", ".join(f'"{c}"' for c in columns)
    params: list[Any] = [json.dumps(rows, default=_default, ensure_ascii=False)]
    record = f"NULL::{table}"
    if base:
        record = f"json_populate_record(NULL::{table}, %s::json)"
        params.insert(0, json.dumps(base, default=_default, ensure_ascii=False))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({names}) SELECT {names} "  # noqa: S608 - our own model's columns
            f"FROM json_populate_recordset({record}, %s::json)",
            params,
        )


def column_defaults(model: type[models.Model], exclude: set[str]) -> dict[str, Any]:
    """Each column's Python-side default as a JSON-ready value (the database has none)."""
    instance = model()
    out = {}
    for field in model._meta.concrete_fields:
        if field.attname in exclude or field.primary_key:
            continue
        value = getattr(instance, field.attname)
        if isinstance(field, models.JSONField):
            out[field.column] = value
        elif isinstance(value, models.TextChoices):
            out[field.column] = str(value.value)
        else:
            out[field.column] = value
    return out


# Joined to an unnested array, not `number IN (...)`: for an IN list PostgreSQL prices the
# trigram index `phone_number_trgm` below the unique btree and rechecks every row sharing a
# trigram with any of the numbers (all of a chain's "+7916..." share most of theirs) — seconds
# per batch. And one index probe per number (a LATERAL subquery with LIMIT, which PostgreSQL
# cannot flatten into a join): a plain join of a batch's thousands of numbers is priced as a
# hash join over a sequential scan of every phone, which grows with the base (70 ms a batch at
# 100,000 cards; the import's batches slowed as they went). Figures: bench/README.md.
_PHONE_OWNERS = """
SELECT wanted.number, p.customer_id
FROM unnest(%s::text[]) AS wanted(number)
CROSS JOIN LATERAL (
    SELECT customer_id FROM customers_customerphone WHERE number = wanted.number LIMIT 1
) p
"""


def phone_owners(numbers: set[str] | list[str]) -> dict[str, int]:
    """The customer id owning each of these E.164 numbers (the numbers no card has are absent)."""
    if not numbers:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(_PHONE_OWNERS, [sorted(numbers)])
        return dict(cursor.fetchall())


# Cards by number (an absorbed card's old number resolves to its survivor) and by e-mail, in one
# statement over arrays: an `IN` list of a batch's thousands of values costs more to build and
# split on the client than the look-up does on the server. One index probe per value whatever
# the base's size (see _PHONE_OWNERS). A card number names one card; of the cards sharing an
# e-mail the lowest id is the match.
_CARD_AND_EMAIL_OWNERS = """
SELECT 'card', wanted.card, c.id, 0
FROM unnest(%(cards)s::text[]) AS wanted(card)
CROSS JOIN LATERAL (
    SELECT id FROM customers_customer WHERE card_number = wanted.card LIMIT 1
) c
UNION ALL
SELECT 'card', wanted.card, a.survivor_id, 1
FROM unnest(%(cards)s::text[]) AS wanted(card)
CROSS JOIN LATERAL (
    SELECT survivor_id FROM customers_mergedalias WHERE old_card_number = wanted.card LIMIT 1
) a
UNION ALL
SELECT 'email', wanted.email, c.id, 2
FROM unnest(%(emails)s::text[]) AS wanted(email)
CROSS JOIN LATERAL (
    SELECT id FROM customers_customer WHERE UPPER(email) = wanted.email ORDER BY id LIMIT 1
) c
ORDER BY 4
"""


def card_and_email_owners(cards: set[str], emails: set[str]) -> list[tuple[str, str, int]]:
    """(kind, value, customer id) for the card numbers and upper-cased e-mails some card has."""
    if not cards and not emails:
        return []
    with connection.cursor() as cursor:
        cursor.execute(_CARD_AND_EMAIL_OWNERS, {"cards": sorted(cards), "emails": sorted(emails)})
        return [(kind, value, cid) for kind, value, cid, _order in cursor.fetchall()]

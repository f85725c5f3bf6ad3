"""Set inserts for volume: rows travel as one JSON document and PostgreSQL builds the records
(`json_populate_recordset` over the table's own row type), as `sales.ingest` does for receipts.
Django's `bulk_create` adapts every value in Python, which was most of an import's time.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection, models


@dataclass(frozen=True, slots=True)
class Encoded:
    """Rows already encoded as one JSON array (`json_text`), and every column any of them names.

    For a caller that encodes each row where it has time to spare (the import's reading thread)
    and only joins the pieces where it has none.
    """

    json_text: str
    columns: tuple[str, ...]
    count: int


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(type(value))


# One encoder for every call: `json.dumps` with options builds a new one each time, which cost
# more than encoding a card's few values.
_ENCODER = json.JSONEncoder(default=_default, ensure_ascii=False)


def json_dumps(value: Any) -> str:
    """The JSON text these inserts send (dates and decimals as PostgreSQL reads them)."""
    return _ENCODER.encode(value)


def next_ids(model: type[models.Model], count: int) -> list[int]:
    """Reserve `count` ids from the table's sequence, so inserted rows are known by id."""
    if not count:
        return []
    table = model._meta.db_table
    with connection.cursor() as cursor:
        # One text value, not a row per id: psycopg loads each row in Python.
        cursor.execute(
            "SELECT string_agg(nextval(pg_get_serial_sequence(%s, 'id'))::text, ',' ORDER BY n) "
            "FROM generate_series(1, %s) AS n",
            [table, count],
        )
        return [int(pk) for pk in cursor.fetchone()[0].split(",")]


def json_insert(
    model: type[models.Model],
    rows: list[dict[str, Any]] | Encoded,
    base: dict[str, Any] | None = None,
) -> None:
    """INSERT every row (dicts keyed by column name) in one statement.

    `base` holds the columns every row shares (defaults, the batch's time and actor): it travels
    once, as the record that `json_populate_recordset` fills a row's missing keys from, so each
    row carries only what is its own. Rows may differ in their keys: every key of any row is
    written (a column none of them names, nor `base`, gets the table's NULL).
    """
    statement = _json_insert_statement(model, rows, base)
    if statement:
        with connection.cursor() as cursor:
            cursor.execute(*statement)


def json_insert_many(
    inserts: list[tuple[type[models.Model], list[dict[str, Any]] | Encoded, dict[str, Any] | None]],
) -> None:
    """Several `json_insert`s, in this order, sent as one round trip (one multi-statement query:
    the connection binds parameters client-side, so psycopg sends it as a simple query)."""
    statements = [s for s in (_json_insert_statement(*i) for i in inserts) if s]
    if not statements:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "; ".join(sql for sql, _params in statements),
            [p for _sql, params in statements for p in params],
        )


def _json_insert_statement(
    model: type[models.Model],
    rows: list[dict[str, Any]] | Encoded,
    base: dict[str, Any] | None,
) -> tuple[str, list[Any]] | None:
    table = model._meta.db_table
    seen = dict.fromkeys(base or ())
    if isinstance(rows, Encoded):
        if not rows.count:
            return None
        seen.update(dict.fromkeys(rows.columns))
        text = rows.json_text
    else:
        if not rows:
            return None
        for row in rows:
            seen.update(dict.fromkeys(row))
        text = json_dumps(rows)
    columns = list(seen)
    names = ", ".join(f'"{c}"' for c in columns)
    params: list[Any] = [text]
    record = f"NULL::{table}"
    if base:
        record = f"json_populate_record(NULL::{table}, %s::json)"
        params.insert(0, json_dumps(base))
    return (
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
# The values travel as one JSON array, not a text[] parameter: psycopg quotes an array element by
# element in Python (28 ms for a batch's 2,000 numbers, a tenth of the import's main thread),
# json.dumps does it in C.
_PHONE_OWNERS = """
SELECT wanted.number, p.customer_id
FROM json_array_elements_text(%s::json) AS wanted(number)
CROSS JOIN LATERAL (
    SELECT customer_id FROM customers_customerphone WHERE number = wanted.number LIMIT 1
) p
"""


def _json_list(values: set[str] | list[str]) -> str:
    return json.dumps(sorted(values), ensure_ascii=False)


def phone_owners(numbers: set[str] | list[str]) -> dict[str, int]:
    """The customer id owning each of these E.164 numbers (the numbers no card has are absent)."""
    if not numbers:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(_PHONE_OWNERS, [_json_list(numbers)])
        return dict(cursor.fetchall())


# Cards by number (an absorbed card's old number resolves to its survivor) and by e-mail, in one
# statement over arrays: an `IN` list of a batch's thousands of values costs more to build and
# split on the client than the look-up does on the server. One index probe per value whatever
# the base's size (see _PHONE_OWNERS). A card number names one card; of the cards sharing an
# e-mail the lowest id is the match.
_CARD_AND_EMAIL_OWNERS = """
SELECT 'card', wanted.card, c.id, 0
FROM json_array_elements_text(%(cards)s::json) AS wanted(card)
CROSS JOIN LATERAL (
    SELECT id FROM customers_customer WHERE card_number = wanted.card LIMIT 1
) c
UNION ALL
SELECT 'card', wanted.card, a.survivor_id, 1
FROM json_array_elements_text(%(cards)s::json) AS wanted(card)
CROSS JOIN LATERAL (
    SELECT survivor_id FROM customers_mergedalias WHERE old_card_number = wanted.card LIMIT 1
) a
UNION ALL
SELECT 'email', wanted.email, c.id, 2
FROM json_array_elements_text(%(emails)s::json) AS wanted(email)
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
        cursor.execute(
            _CARD_AND_EMAIL_OWNERS, {"cards": _json_list(cards), "emails": _json_list(emails)}
        )
        return [(kind, value, cid) for kind, value, cid, _order in cursor.fetchall()]

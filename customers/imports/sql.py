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


def json_insert(model: type[models.Model], rows: list[dict[str, Any]]) -> None:
    """INSERT every row (dicts keyed by column name, all with the same keys) in one statement."""
    if not rows:
        return
    table = model._meta.db_table
    columns = list(rows[0])
    names = ", ".join(f'"{c}"' for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({names}) SELECT {names} "  # noqa: S608 - our own model's columns
            f"FROM json_populate_recordset(NULL::{table}, %s::json)",
            [json.dumps(rows, default=_default, ensure_ascii=False)],
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
# per batch. The join is planned as a hash join or a btree probe. Figures: bench/README.md.
_PHONE_OWNERS = """
SELECT p.number, p.customer_id
FROM unnest(%s::text[]) AS wanted(number)
JOIN customers_customerphone p ON p.number = wanted.number
"""


def phone_owners(numbers: set[str] | list[str]) -> dict[str, int]:
    """The customer id owning each of these E.164 numbers (the numbers no card has are absent)."""
    if not numbers:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(_PHONE_OWNERS, [sorted(numbers)])
        return dict(cursor.fetchall())

"""The nightly duplicate finder: one INSERT ... SELECT per reason, strongest reason first.

Each query pairs cards (lower id first) and inserts them with ON CONFLICT DO NOTHING, so a pair
keeps its first (strongest) reason and a "not a duplicate" decision is never revived. Names are
folded before comparing: upper case, Ё as Е, and Cyrillic transliterated letter by letter to
Latin, so `Иванов`, `ИВАНОВ` and `Ivanov` compare equal and `Пётр`/`Петр` too; similarity is
pg_trgm's.
"""

from __future__ import annotations

from django.db import connection, transaction

CYRILLIC = "АБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ"
LATIN = "ABVGDEEZZIIKLMNOPRSTUFHCCSS_Y_EUA"


def _fold(column: str) -> str:
    return f"replace(translate(upper({column}), '{CYRILLIC}', '{LATIN}'), '_', '')"


def _name(alias: str) -> str:
    return _fold(f"{alias}.surname || ' ' || {alias}.first_name")


_INSERT = """
INSERT INTO customers_duplicatepair (first_id, second_id, reason, confidence, status, found_at)
SELECT DISTINCT a.id, b.id, %(reason)s::text, %(confidence)s::numeric, 'open', now()
FROM customers_customer a
JOIN customers_customer b ON a.id < b.id AND {join}
WHERE a.erased_at IS NULL AND b.erased_at IS NULL AND {where}
ON CONFLICT (first_id, second_id) DO NOTHING
"""

REASONS: list[tuple[str, str, str, str]] = [
    # (reason, confidence, join condition, extra filter)
    ("email", "0.95", "upper(a.email) = upper(b.email)", "a.email <> ''"),
    (
        "card",
        "0.90",
        "regexp_replace(a.card_number, '[^0-9A-Za-z]', '', 'g') = "
        "regexp_replace(b.card_number, '[^0-9A-Za-z]', '', 'g') AND a.card_number <> b.card_number",
        "a.card_number IS NOT NULL",
    ),
    (
        "name_birth",
        "0.85",
        f"a.birth_date = b.birth_date AND {_fold('a.surname')} = {_fold('b.surname')} "
        f"AND {_fold('a.first_name')} = {_fold('b.first_name')}",
        "a.surname <> '' AND a.first_name <> '' AND (a.home_store_id IS NOT DISTINCT FROM "
        "b.home_store_id)",
    ),
    (
        "two_stores",
        "0.80",
        f"a.birth_date = b.birth_date AND {_fold('a.surname')} = {_fold('b.surname')} "
        f"AND {_fold('a.first_name')} = {_fold('b.first_name')}",
        "a.surname <> '' AND a.home_store_id IS DISTINCT FROM b.home_store_id",
    ),
    (
        "similar_birth",
        "0.70",
        f"a.birth_date = b.birth_date AND similarity({_name('a')}, {_name('b')}) > 0.5",
        "a.surname <> ''",
    ),
    (
        "similar_address",
        "0.60",
        f"upper(a.address) = upper(b.address) AND similarity({_name('a')}, {_name('b')}) > 0.5",
        "a.address <> '' AND a.surname <> ''",
    ),
]


@transaction.atomic
def duplicates_find() -> dict[str, int]:
    """Find candidate pairs across the whole base; {reason: pairs added}."""
    added = {}
    with connection.cursor() as cursor:
        for reason, confidence, join, where in REASONS:
            cursor.execute(
                _INSERT.format(join=join, where=where),
                {"reason": reason, "confidence": confidence},
            )
            added[reason] = cursor.rowcount
    return added

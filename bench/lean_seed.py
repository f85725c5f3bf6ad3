"""A lean seed of customer cards for the search and list benchmarks at a million cards.

The demo generator simulates purchases and builds every card in Python (about 12 GB at a million
cards); search and list pages need only cards, phones, stores and managers. This one draws names
from realistic distributions and streams the rows to PostgreSQL with COPY in chunks, so memory
stays flat whatever the size: a few stores and managers (so visibility scoping has something to
scope), tens of thousands of distinct surnames with a Zipf head (Иванов about 1.5% of cards, as
in Russia), masculine and feminine forms, Ё written as Е on some cards, a primary phone each and
a second one on some, a loyalty card on most.
"""

from __future__ import annotations

import datetime as dt
import random
import time

import numpy as np

CHUNK = 50_000
STORES = [
    ("Москва, Тверская", "Москва", 5.0),
    ("Москва, Арбат", "Москва", 3.0),
    ("Санкт-Петербург, Невский", "Санкт-Петербург", 3.0),
    ("Казань, Баумана", "Казань", 1.5),
    ("Екатеринбург, Вайнера", "Екатеринбург", 1.5),
    ("Новосибирск, Красный проспект", "Новосибирск", 1.0),
]
# Syllables of invented surname roots: enough for tens of thousands of distinct, Russian-looking
# surnames behind the real head of the distribution.
_ONSETS = "Б В Г Д Ж З К Л М Н П Р С Т Ф Х Ц Ч Ш Бр Вл Гр Др Кр Пр Ст Тр Хв Шм Зв Сл См Кл".split()
_VOWELS = "а о е и у я ы ё".split()
_CODAS = ["", "", "", "л", "н", "р", "к", "ш", "ст", "м"]
_ENDINGS = [
    ("ов", 30),
    ("ев", 10),
    ("ин", 14),
    ("ский", 5),
    ("цкий", 1),
    ("енко", 3),
    ("ук", 2),
    ("ых", 1),
    ("ёв", 2),
]


def surname_pool(rnd: random.Random, size: int) -> list[str]:
    """`size` distinct masculine surnames: the real frequent ones first, then invented ones."""
    from customers.names import SURNAMES

    pool = list(dict.fromkeys(SURNAMES))
    seen = set(pool)
    endings = [e for e, _ in _ENDINGS]
    weights = [w for _, w in _ENDINGS]
    while len(pool) < size:
        root = "".join(
            rnd.choice(_ONSETS) + rnd.choice(_VOWELS) for _ in range(rnd.choice((1, 2, 2, 3)))
        ) + rnd.choice(_CODAS)
        ending = rnd.choices(endings, weights)[0]
        if root[-1] in "аоеиуяыё" and ending[0] in "аоеиуяыё":
            continue
        name = root + ending
        if name not in seen:
            seen.add(name)
            pool.append(name)
    return pool


def _without_yo(word: str) -> str:
    return word.replace("ё", "е").replace("Ё", "Е")


def _copy(cursor, table: str, columns: list[str], rows) -> None:
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def seed(count: int, *, seed_value: int = 7, surnames: int = 40_000) -> dict[str, float]:
    """Write `count` customers (ids 1..count) into the migrated, empty database Django uses.

    The search indexes are dropped during the load and rebuilt after it (as a bulk load into a
    fresh table should be done); returns the seconds each step took.
    """
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection

    from crm import roles
    from crm.models import StaffProfile, Store
    from customers.names import FEMALE_NAMES, MALE_NAMES, MOBILE_CODES, female_surname

    timings: dict[str, float] = {}
    started = time.monotonic()
    rng = np.random.default_rng(seed_value)
    rnd = random.Random(seed_value)
    stores = [
        Store.objects.create(code=f"bench-{i}", name=name, city=city)
        for i, (name, city, _) in enumerate(STORES)
    ]
    store_weights = np.array([w for *_, w in STORES])
    users = get_user_model()
    managers = []
    for i, store in enumerate(stores):
        manager = users.objects.create_user(f"bench-manager-{i}", password="x" * 20)  # noqa: S106
        manager.groups.add(Group.objects.get(name=roles.STORE_MANAGER))
        StaffProfile.objects.get_or_create(user=manager)[0].stores.add(store)
        managers.append(manager)

    pool = surname_pool(rnd, surnames)
    # Zipf over ranks: the head (Иванов, Смирнов, ...) as frequent as in Russian statistics.
    surname_p = 1.0 / (np.arange(len(pool)) + 8.0)
    surname_p /= surname_p.sum()
    male = list(MALE_NAMES)
    male_p = 1.0 / (np.arange(len(male)) + 5.0)
    male_p /= male_p.sum()
    female_p = 1.0 / (np.arange(len(FEMALE_NAMES)) + 5.0)
    female_p /= female_p.sum()

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN "
            "('customers_customer', 'customers_customerphone') AND indexname NOT IN "
            "(SELECT conname FROM pg_constraint)"
        )
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
    timings["setup"] = time.monotonic() - started

    columns = [
        "id", "surname", "first_name", "patronymic", "gender", "phone", "email", "extra_emails",
        "card_number", "postal_code", "city", "address", "workplace", "position",
        "marital_status", "interests", "preferences", "notes", "custom_fields",
        "lifecycle_stage", "home_store_id", "assigned_manager_id", "consent_email",
        "consent_sms", "consent_messenger", "consent_phone", "do_not_contact", "source",
        "created_at", "updated_at",
    ]  # fmt: skip
    now = dt.datetime.now(dt.UTC)
    phone_space = len(MOBILE_CODES) * 10**7
    # Distinct phones and cards for every card, drawn once (8 bytes a number).
    phone_picks = rng.choice(phone_space, size=int(count * 1.15), replace=False)
    card_picks = rng.choice(10**9, size=count, replace=False)
    codes = np.array(MOBILE_CODES)
    spare = count
    load = time.monotonic()
    with connection.cursor() as django_cursor:
        cursor = django_cursor.cursor  # psycopg's own, for COPY
        for lo in range(0, count, CHUNK):
            n = min(CHUNK, count - lo)
            female = rng.random(n) < 0.6
            surname_ix = rng.choice(len(pool), size=n, p=surname_p)
            male_ix = rng.choice(len(male), size=n, p=male_p)
            female_ix = rng.choice(len(FEMALE_NAMES), size=n, p=female_p)
            father_ix = rng.choice(len(male), size=n, p=male_p)
            store_ix = rng.choice(len(stores), size=n, p=store_weights / store_weights.sum())
            plain_e = rng.random(n) < 0.3  # Ё typed as Е on this card
            extras = rng.random(n)
            customers, phones = [], []
            for j in range(n):
                pk = lo + j + 1
                surname = pool[surname_ix[j]]
                if female[j]:
                    surname = female_surname(surname)
                    first = FEMALE_NAMES[female_ix[j]]
                    patronymic = MALE_NAMES[male[father_ix[j]]][1]
                else:
                    first = male[male_ix[j]]
                    patronymic = MALE_NAMES[male[father_ix[j]]][0]
                if plain_e[j]:
                    surname, first, patronymic = (
                        _without_yo(surname),
                        _without_yo(first),
                        _without_yo(patronymic),
                    )
                pick = int(phone_picks[lo + j])
                phone = f"+7{codes[pick // 10**7]}{pick % 10**7:07d}"
                e = extras[j]
                customers.append(
                    (
                        pk, surname, first, patronymic, "f" if female[j] else "m", phone, "",
                        "[]", f"277{int(card_picks[lo + j]):010d}" if e < 0.88 else None, "",
                        stores[store_ix[j]].city, "", "", "", "", "", "", "", "{}",
                        "lead" if e > 0.92 else "customer",
                        None if e < 0.002 else stores[store_ix[j]].pk,
                        managers[store_ix[j]].pk if e < 0.05 else None,
                        False, e < 0.7, e < 0.3, e < 0.4, False, "demo", now, now,
                    )
                )  # fmt: skip
                phones.append((pk, phone, "mobile", True))
                if e > 0.88 and spare < len(phone_picks):
                    pick = int(phone_picks[spare])
                    spare += 1
                    phones.append(
                        (pk, f"+7{codes[pick // 10**7]}{pick % 10**7:07d}", "work", False)
                    )
            _copy(cursor, "customers_customer", columns, customers)
            _copy(
                cursor,
                "customers_customerphone",
                ["customer_id", "number", "kind", "is_primary"],
                phones,
            )
        django_cursor.execute(
            "SELECT setval(pg_get_serial_sequence('customers_customer', 'id'), %s)", [count]
        )
        django_cursor.execute(
            "SELECT setval(pg_get_serial_sequence('customers_customerphone', 'id'), "
            "(SELECT max(id) FROM customers_customerphone))"
        )
        timings["copy"] = time.monotonic() - load
        build = time.monotonic()
        django_cursor.execute("SET maintenance_work_mem = '256MB'")
        for _, definition in indexes:
            django_cursor.execute(definition)
        timings["indexes"] = time.monotonic() - build
        django_cursor.execute("VACUUM ANALYZE customers_customer")
        django_cursor.execute("VACUUM ANALYZE customers_customerphone")
    timings["total"] = time.monotonic() - started
    return timings

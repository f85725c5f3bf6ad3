"""The import's fast paths give exactly what the slow ones give (issue 17, bench/README.md)."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from customers.imports import parsing
from customers.imports.sql import phone_owners
from customers.models import Customer, CustomerPhone


def _strptime_date(raw: str) -> dt.date | None:
    for fmt in ("%d.%m.%Y", "%d.%m.%y", "%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y"):
        try:
            return dt.datetime.strptime(raw.split(" ")[0], fmt).date()  # noqa: DTZ007
        except ValueError:
            continue
    return None


def _strptime_datetime(raw: str) -> dt.datetime | None:
    for fmt in ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M"):
        try:
            return dt.datetime.strptime(raw, fmt)  # noqa: DTZ007
        except ValueError:
            continue
    return None


def test_day_month_year_without_strptime_agrees_with_strptime():
    rng = random.Random(17)
    samples = ["31.02.2020", "29.02.2024", "29.02.2023", "1.2.1990", "00.01.2000", "12.13.2000"]
    samples += [
        f"{rng.randint(0, 32):0{rng.choice((1, 2))}d}.{rng.randint(0, 13):02d}."
        f"{rng.randint(1900, 2030)}"
        for _ in range(300)
    ]
    for raw in samples:
        expected = _strptime_date(raw)
        if expected is None:
            with pytest.raises(ValueError):
                parsing.parse_date(raw)
        else:
            assert parsing.parse_date(raw) == expected, raw


def test_date_and_time_without_strptime_agrees_with_strptime():
    rng = random.Random(18)
    samples = ["01.02.2024 25:00", "01.02.2024 9:5", "01.02.2024 10:05:61", "1.2.2024 9:5:7"]
    samples += [
        f"{rng.randint(1, 31):02d}.{rng.randint(1, 12):02d}.{rng.randint(2000, 2030)} "
        f"{rng.randint(0, 24)}:{rng.randint(0, 60):02d}"
        + (f":{rng.randint(0, 60):02d}" * rng.randint(0, 1))
        for _ in range(300)
    ]
    for raw in samples:
        expected = _strptime_datetime(raw)
        if expected is not None:
            assert parsing.parse_datetime(raw) == expected, raw
        else:
            # Not a date and time: the date alone, at midnight, as before (or an error).
            try:
                got = parsing.parse_datetime(raw)
            except ValueError:
                continue
            assert got.time() == dt.time() and got.date() == _strptime_date(raw), raw


@pytest.mark.django_db
def test_phone_owners_finds_exactly_the_numbers_given():
    people = [Customer.objects.create(surname=f"Тест{i}", first_name="Анна") for i in range(3)]
    for i, person in enumerate(people):
        CustomerPhone.objects.create(customer=person, number=f"+7916100000{i}", is_primary=True)
    # A number sharing every trigram but one with stored ones matches nothing.
    found = phone_owners({"+79161000000", "+79161000002", "+79161000009"})
    assert found == {"+79161000000": people[0].pk, "+79161000002": people[2].pk}
    assert phone_owners(set()) == {}


@pytest.mark.django_db
def test_card_and_email_owners_match_cards_old_cards_and_emails_case_blind(admin_user):
    from customers.duplicates.merge import customer_merge
    from customers.imports.sql import card_and_email_owners

    first = Customer.objects.create(surname="Ан", card_number="C-1", email="Ann@Example.ru")
    second = Customer.objects.create(surname="Ан", card_number="C-2", email="ann@example.ru")
    third = Customer.objects.create(surname="Бо", card_number="C-3")
    customer_merge(actor=admin_user, survivor_id=first.pk, absorbed_ids=[third.pk])

    found = card_and_email_owners({"C-1", "C-3", "C-9"}, {"ANN@EXAMPLE.RU", "NOBODY@X.RU"})

    # Both card numbers (one kept, one now an alias) resolve to the survivor; of the cards
    # sharing an e-mail the lowest id is the match.
    cards = [row for row in found if row[0] == "card"]
    assert sorted(cards) == [("card", "C-1", first.pk), ("card", "C-3", first.pk)]
    assert second.pk > first.pk
    assert [row for row in found if row[0] == "email"] == [("email", "ANN@EXAMPLE.RU", first.pk)]
    assert card_and_email_owners(set(), set()) == []


def test_a_new_cards_json_built_ahead_is_the_plain_encoding_of_its_row():
    # The reading thread encodes each card without its id; the writer prepends the id. Awkward
    # text (quotes, backslashes, control characters, Ё), a date, lists, nested custom fields.
    import json
    from types import SimpleNamespace

    from customers.imports.customers import Record, _encode_new

    store = SimpleNamespace(pk=7)
    record = Record(
        row_no=2,
        fields={
            "surname": 'О"Нил\\Ёж\n',
            "first_name": "Анна\t",
            "birth_date": dt.date(1990, 2, 1),
            "email": "a@b.ru",
            "extra_emails": ["c@d.ru"],
            "home_store": store,
            "acquisition_channel": None,
        },
        phones=["+79161110001", "+79161110002"],
        consents={"sms": True, "email": False, "unknown": True},
        custom={"size": "42", "tags": ["a", "b"], "note": {"x": 'y"'}},
    )
    _encode_new(record)

    card = json.loads('{"id":5,' + record.new_card)
    assert card == {
        "id": 5,
        "custom_fields": {"size": "42", "tags": ["a", "b"], "note": {"x": 'y"'}},
        "surname": 'О"Нил\\Ёж\n',
        "first_name": "Анна\t",
        "birth_date": "1990-02-01",
        "email": "a@b.ru",
        "extra_emails": ["c@d.ru"],
        "home_store_id": 7,
        "acquisition_channel_id": None,
        "consent_sms": True,
        "consent_email": False,
        "consent_unknown": True,
        "phone": "+79161110001",
    }
    assert list(card)[1:] == list(record.new_card_columns)
    assert [json.loads('{"customer_id":5,' + p) for p in record.new_phones] == [
        {"customer_id": 5, "number": "+79161110001", "is_primary": True},
        {"customer_id": 5, "number": "+79161110002", "is_primary": False},
    ]
    # Only the channels the history knows get a consent row.
    assert [json.loads('{"customer_id":5,' + c) for c in record.new_consents] == [
        {"customer_id": 5, "channel": "sms", "granted": True},
        {"customer_id": 5, "channel": "email", "granted": False},
    ]


@pytest.mark.django_db
def test_a_new_name_is_searchable_at_once_through_the_bounded_pending_list():
    # Migration 0014: the dictionary's trigram index collects new names in a pending list of
    # at most 256 kB (merged by the statement that passes it); a probe reads the list too.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'name_token_trgm'")
        assert sorted(cursor.fetchone()[0]) == ["fastupdate=on", "gin_pending_list_limit=256"]
        cursor.execute("SELECT gin_clean_pending_list('name_token_trgm')")
    Customer.objects.create(surname="Квакшина", first_name="Зоя")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.token FROM customers_nametoken t "
            "WHERE t.id IN (SELECT customers_name_token_ids(%s, %s))",
            [["КВАКШИНО"], ["КВАКШ%"]],
        )
        assert cursor.fetchall() == [("КВАКШИНА",)]


def _analyze_counts() -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        # Statistics are read through a per-transaction snapshot: drop it to see new counts.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT relname, analyze_count FROM pg_stat_user_tables WHERE relname = ANY(%s)",
            [["customers_customer", "customers_customerphone", "customers_importrow"]],
        )
        return dict(cursor.fetchall())


@pytest.mark.django_db
def test_a_large_import_refreshes_the_statistics_of_the_tables_it_grows(
    admin_user, settings, monkeypatch, caplog
):
    """At ANALYZE_FIRST rows and each doubling after, not at every batch (bench/README.md,
    session 9: without it a first import into empty tables ran 4x slower on embedded PG 18)."""
    from customers.imports import engine

    from .conftest import make_csv, run, upload

    settings.CLIENTELE_IMPORT_BATCH = 2
    monkeypatch.setattr(engine, "ANALYZE_FIRST", 3)
    rows = [["Фамилия", "Имя", "Телефон"]]
    rows += [["Статова", f"Анна{i}", f"+7916555{i:04d}"] for i in range(10)]
    before = _analyze_counts()
    with caplog.at_level("INFO", logger=engine.logger.name):
        job = run(upload(admin_user, "big.csv", make_csv(rows)), admin_user, dry_run=False)
    assert job.counts == {"created": 10}
    refreshed = [r.getMessage() for r in caplog.records if "statistics refreshed" in r.getMessage()]
    assert [m.split(" rows")[0].rsplit(" ", 1)[1] for m in refreshed] == ["4", "8"]
    after = _analyze_counts()
    for table in ("customers_customer", "customers_customerphone", "customers_importrow"):
        assert after[table] == before.get(table, 0) + 2, table

"""Cell parsers and file detection on their own."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from customers.imports import parsing
from customers.imports.mapping import guess_mapping, normalise_header
from customers.imports.reader import FileShape, detect_delimiter, detect_encoding, iter_rows
from customers.phones import normalize_phone


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("05.03.1985", dt.date(1985, 3, 5)),
        ("1985-03-05", dt.date(1985, 3, 5)),
        ("05.03.85", dt.date(1985, 3, 5)),
        (31111, dt.date(1985, 3, 5)),
        (dt.datetime(1985, 3, 5, 0, 0), dt.date(1985, 3, 5)),  # noqa: DTZ001 - an Excel cell
    ],
)
def test_dates(raw, expected):
    assert parsing.parse_date(raw) == expected


def test_bad_dates_say_what_to_type():
    with pytest.raises(ValueError, match="дд.мм.гггг"):
        parsing.parse_date("31.02.2020")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1 234,50", Decimal("1234.50")),
        ("1\u00a0234,5", Decimal("1234.5")),
        ("-3", Decimal(-3)),
        (2.5, Decimal("2.5")),
        (7, Decimal(7)),
    ],
)
def test_decimal_commas(raw, expected):
    assert parsing.parse_decimal(raw) == expected


@pytest.mark.parametrize("raw", ["abc", "NaN", "1e400", True])
def test_not_numbers(raw):
    with pytest.raises(ValueError):
        parsing.parse_decimal(raw)


def test_repeated_number_spellings_parse_the_same_and_bad_ones_fail_every_time():
    """Spellings are cached (a file repeats them): a cached result is the same number, an
    error is never cached into a value."""
    for _ in range(3):
        assert parsing.parse_decimal("100,50") == Decimal("100.50")
        assert str(parsing.parse_decimal("1 000,0")) == "1000.0"
        with pytest.raises(ValueError):
            parsing.parse_decimal("12,5 руб")


def test_full_name_in_one_cell():
    assert parsing.split_full_name("Иванова Мария Петровна") == ("Иванова", "Мария", "Петровна")
    assert parsing.split_full_name("Оглы Мамед Али оглы") == ("Оглы", "Мамед", "Али оглы")
    assert parsing.split_full_name("Иванова") == ("Иванова", "", "")


def test_phone_fast_path_agrees_with_normalize_phone():
    rng = random.Random(17)
    samples = [
        "8 (916) 123-45-67",
        "+7 916 123 45 68",
        "79161234569",
        "9161234570",
        "8-916-123-45-71",
        "+7 (495) 123-45-67",
        "8 800 555 35 35",
        "+7 930 000 0000",
        "+1 202 555 0143",
        "12345",
    ]
    samples += [f"8{rng.choice('9')}{rng.randrange(10**9):09d}" for _ in range(3000)]
    for raw in samples:
        try:
            expected = normalize_phone(raw)
        except ValidationError:
            expected = None
        try:
            got = parsing.phone_e164(raw)
        except ValidationError:
            got = None
        assert got == expected, raw


def test_encoding_and_separator_detection():
    assert detect_encoding("Фамилия;Имя".encode("cp1251")) == "cp1251"
    assert detect_encoding("Фамилия;Имя".encode()) == "utf-8-sig"
    assert detect_encoding(b"\xef\xbb\xbfA;B") == "utf-8-sig"
    assert detect_delimiter("a;b;c\n1;2,5;3\n") == ";"
    assert detect_delimiter("a,b,c\n1,2,3\n") == ","
    assert detect_delimiter("a\tb\n1\t2\n") == "\t"


def test_csv_rows_drop_nul_keep_quoted_newlines_and_skip_blank_rows(tmp_path):
    """The CSV fast path (NUL dropped per line, cells only stripped) reads as the per-cell one."""
    path = tmp_path / "rows.csv"
    path.write_text(
        'A;B;C\n Ива\x00нова ;"улица,\nдом 1";\n ; ;\n\x00;x\x00\x00;  \n',
        encoding="utf-8",
        newline="",
    )
    rows = list(iter_rows(path, FileShape("csv", encoding="utf-8", delimiter=";")))
    assert rows == [["A", "B", "C"], ["Иванова", "улица,\nдом 1", ""], ["", "x", ""]]


@pytest.mark.django_db
def test_headers_in_russian_and_english():
    assert normalise_header(" Моб. Телефон ") == "моб телефон"
    headers = [
        "Фамилия",
        "Имя",
        "Отчество",
        "Моб. телефон",
        "Телефон 2",
        "E-mail",
        "Дата рождения",
        "Пол",
        "Номер карты",
        "Город",
        "Адрес",
        "Магазин",
        "Источник",
        "Согласие на рассылку SMS",
        "Согласие на рассылку e-mail",
        "Что-то ещё",
    ]
    assert list(guess_mapping("customers", headers).values()) == [
        "surname",
        "first_name",
        "patronymic",
        "phone",
        "phone",
        "email",
        "birth_date",
        "gender",
        "card_number",
        "city",
        "address",
        "home_store",
        "acquisition_channel",
        "consent_sms",
        "consent_email",
        "",
    ]
    assert guess_mapping("customers", ["Surname", "First name", "E-mail", "Birthday"]) == {
        "0": "surname",
        "1": "first_name",
        "2": "email",
        "3": "birth_date",
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "/admin/customers/sourcepriority/",
        "/admin/customers/importjob/",
        "/admin/customers/duplicatepair/",
        "/admin/customers/customermerge/",
    ],
)
def test_admin_pages_open(client, url):
    from tests.factories import UserFactory

    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    assert client.get(url).status_code == 200

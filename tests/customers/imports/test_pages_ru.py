"""The import and merge pages speak Russian completely."""

from __future__ import annotations

import re

import pytest

from customers.duplicates.finder import duplicates_find
from tests.factories import CustomerFactory

from .conftest import make_xlsx, outcomes, run, upload

pytestmark = pytest.mark.django_db

# English words of our own templates and messages that must not survive translation.
ENGLISH = re.compile(
    r"\b(Import|Imports|Upload|Duplicates|Merge|Rows|Columns|Check|Download|Revert|Created|"
    r"Error|Skipped|Outcome|Details|Confidence|Reason|Possible|Email:|ignore)\b"
)


def russian(client, url: str) -> str:
    response = client.get(url, HTTP_ACCEPT_LANGUAGE="ru")
    assert response.status_code == 200
    text = re.sub(r"<[^>]+>", " ", response.content.decode())
    text = re.sub(r"<script.*?</script>", " ", text, flags=re.S)
    return text


def test_import_and_merge_pages_in_russian(client, admin_user, store_a):
    client.force_login(admin_user)
    client.cookies["django_language"] = "ru"
    rows = [
        ["ФИО", "Телефон", "E-mail"],
        ["Орлова Вера", "89161112203", "bad@"],
        ["Орлов Игорь", "89161112204", ""],
    ]
    job = run(upload(admin_user, "a.xlsx", make_xlsx(rows)), admin_user, dry_run=True)
    assert outcomes(job, "dry")[2][0] == "error"
    for url in (
        "/customers/imports/",
        job.get_absolute_url(),
        "/customers/duplicates/",
        "/customers/merges/",
    ):
        text = russian(client, url)
        found = ENGLISH.findall(text)
        assert not found, (url, found)
    detail = russian(client, job.get_absolute_url())
    assert "Пробный прогон" in detail
    # A dry run says what the run would do; counts read as counts of rows, in one form.
    assert re.search(r"Будет создано:\s*1", detail) and re.search(r"Ошибка:\s*1", detail), detail
    assert "Создан:" not in detail and "Обновлена" not in detail
    one = CustomerFactory(email="same@mail.ru", birth_date=None)
    two = CustomerFactory(email="same@mail.ru", birth_date=None)
    duplicates_find()
    assert "Одинаковый e-mail" in russian(client, "/customers/duplicates/")
    text = russian(client, f"/customers/merge/?ids={one.pk},{two.pk}")
    assert "Объединение карточек" in text and not ENGLISH.findall(text)


@pytest.mark.parametrize(("language", "says"), [("ru", "Эл. почта"), ("en", "Email")])
def test_report_lines_speak_the_language_of_who_started_the_run(admin_user, language, says):
    """The worker has no request: the run is started in the importer's language, and its report
    lines are written in it whatever language the worker itself runs in."""
    from django.utils import translation

    from customers.imports.engine import import_execute
    from customers.imports.services import import_start

    job = upload(admin_user, "a.csv", "ФИО;E-mail\r\nОрлова Вера;bad@\r\n".encode())
    with translation.override(language):
        import_start(actor=admin_user, job=job, dry_run=True)
    worker = "en" if language == "ru" else "ru"
    with translation.override(worker):
        assert import_execute(job_id=job.pk)
    outcome, message = outcomes(job, "dry")[2]
    assert outcome == "error" and message.startswith(says), message


def test_preview_shows_excel_dates_and_numbers_in_the_readers_format(client, admin_user):
    import datetime as dt

    client.force_login(admin_user)
    client.cookies["django_language"] = "ru"
    rows = [
        ["ФИО", "Дата рождения", "Визит", "Сумма", "Телефон"],
        ["Орлова Вера", dt.date(1990, 1, 1), dt.datetime(2024, 5, 6, 14, 30), 1234.5, 79161112203],  # noqa: DTZ001
    ]
    job = upload(admin_user, "a.xlsx", make_xlsx(rows))
    text = russian(client, job.get_absolute_url())
    assert "01.01.1990" in text and "06.05.2024 14:30" in text, text
    assert "1234,5" in text and "79161112203" in text
    assert "полночь" not in text and "1990 г." not in text


def test_match_order_is_chosen_by_name_and_a_forged_one_is_a_form_error(client, admin_user):
    client.force_login(admin_user)
    client.cookies["django_language"] = "ru"
    job = upload(admin_user, "a.csv", "ФИО;Телефон\r\nОрлова Вера;89161112203\r\n".encode())
    text = russian(client, job.get_absolute_url())
    assert "Телефон → Карта лояльности → Эл. почта" in text
    assert "phone,card" not in text.replace('value="phone,card', "")
    response = client.post(
        job.get_absolute_url(),
        {"col_0": "full_name", "col_1": "phone", "match_order": "phone;drop", "action": "dry_run"},
        HTTP_ACCEPT_LANGUAGE="ru",
    )
    assert response.status_code == 400
    assert "Выберите корректный вариант" in response.content.decode()


def test_the_files_encoding_and_separator_read_as_an_office_names_them(client, admin_user):
    client.force_login(admin_user)
    client.cookies["django_language"] = "ru"
    content = "Фамилия\tТелефон\r\nОрлова\t89161112203\r\n".encode("cp1251")
    job = upload(admin_user, "a.csv", content)
    text = russian(client, job.get_absolute_url())
    assert "Windows-1251" in text and "«табуляция»" in text, text
    assert "cp1251" not in text and "TAB" not in text

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

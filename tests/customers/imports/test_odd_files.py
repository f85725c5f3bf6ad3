"""Files a clumsy office sends: each is a form error or a report line, never a 500 or a half-run."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from customers.imports.engine import import_execute
from customers.imports.models import ImportJob
from customers.models import Customer

from .conftest import make_csv

pytestmark = pytest.mark.django_db


def _xlsx_odd() -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["ФИО", "Телефон", "Город", "Дата рождения"])
    sheet.append(["Козлова Анна", "89161112201", "Москва", "05.03.1985"])
    sheet.append(["Козлов Борис", "89161112202", '=B2&"x"', "=1+1"])
    sheet.merge_cells("C3:D3")
    sheet.append(["Лебедев Ёжик", "89161112203", "2020-01-01", "ерунда"])
    other = book.create_sheet("Второй")
    other.append(["Фамилия"])
    other.append(["Не отсюда"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


ODD = {
    "empty.csv": b"",
    "header.csv": "Фамилия;Телефон\r\n".encode(),
    "binary.csv": bytes(range(256)) * 40,
    "png.csv": b"\x89PNG\r\n\x1a\n" + b"\x00" * 200,
    "yo1251.csv": make_csv([["Фамилия", "Имя"], ["Ёлкина", "Алёна"]], encoding="cp1251"),
    "bomtab.csv": make_csv(
        [["Фамилия", "Телефон"], ["Бомова", "+7 916 111 22 09"]],
        encoding="utf-8-sig",
        delimiter="\t",
    ),
    "huge_cell.csv": make_csv([["Фамилия", "Город"], ["Длинный", "М" * 200_000]]),
    "one_col.csv": ("Фамилия\r\n" + "Иванов\r\n" * 20_000).encode(),
    "odd.xlsx": _xlsx_odd(),
    "empty.xlsx": b"",
    "text.xlsx": b"just text, not a workbook",
    "quotes.csv": 'Фамилия;x\r\n"unterminated;1\r\n'.encode(),
    "nul.csv": "Фамилия;Имя\r\nИва\x00нов;Иван\r\n".encode(),
}


@pytest.mark.parametrize("name", sorted(ODD))
def test_odd_file_is_a_form_error_or_a_clean_dry_run(client, admin_user, name, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    client.force_login(admin_user)
    response = client.post(
        "/customers/imports/",
        {"kind": "customers", "file": SimpleUploadedFile(name, ODD[name])},
    )
    assert response.status_code in (302, 400), response.status_code
    if response.status_code == 400:
        assert 'data-error-for="file"' in response.content.decode()
        assert not ImportJob.objects.exists()
        return
    url = response["Location"]
    assert client.get(url).status_code == 200
    job = ImportJob.objects.get()
    data = {f"col_{k}": v for k, v in job.mapping.items()}
    data.update(policy="both", match_order="phone,card,email", action="dry_run")
    answer = client.post(url, data)
    assert answer.status_code in (302, 400), answer.status_code
    if answer.status_code == 302:
        import_execute(job_id=job.pk)
    assert client.get(url).status_code == 200
    assert client.get(f"{url}report.xlsx?phase=dry").status_code in (200, 404)
    assert not Customer.objects.exists()

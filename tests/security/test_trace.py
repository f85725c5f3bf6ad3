"""Point 5: a leaked file, or a fragment of it, names the export, user and time it came from."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from openpyxl import Workbook, load_workbook

from crm.models import AuditAction, AuditEvent

from .test_ways_out import csv_rows, export

pytestmark = pytest.mark.django_db


def trace(path) -> str:
    out = io.StringIO()
    call_command("trace_export", str(path), stdout=out)
    return out.getvalue()


def write_csv(path, rows, delimiter=","):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, delimiter=delimiter).writerows(rows)


def test_whole_csv_export_is_traced(client, admin_user, base_a, tmp_path):
    client.force_login(admin_user)
    export(client)  # another export, so the right one must be told apart
    _, body = export(client, q="Иванова")
    event = AuditEvent.objects.filter(action=AuditAction.EXPORT).latest("id")
    (tmp_path / "leak.csv").write_bytes(body)
    output = trace(tmp_path / "leak.csv")
    assert output.startswith(f"export #{event.pk} by alice")
    assert output.count("export #") == 1


def test_resorted_fragment_without_contact_columns_is_traced(client, admin_user, base_a, tmp_path):
    client.force_login(admin_user)
    _, body = export(client)
    event = AuditEvent.objects.get(action=AuditAction.EXPORT)
    rows = csv_rows(body)[1:]
    # Keep id, names, gender, birth date, city; drop phone, email, card, address; shuffle.
    keep = [0, 1, 2, 3, 4, 5, 9]
    fragment = sorted(([row[i] for i in keep] for row in rows), key=lambda r: r[1])[::-1]
    write_csv(tmp_path / "fragment.csv", fragment)
    output = trace(tmp_path / "fragment.csv")
    assert output.startswith(f"export #{event.pk} by alice")


def test_xlsx_fragment_is_traced(client, admin_user, base_a, tmp_path):
    client.force_login(admin_user)
    _, body = export(client, "xlsx")
    event = AuditEvent.objects.get(action=AuditAction.EXPORT)
    sheet = load_workbook(io.BytesIO(body)).active
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    book = Workbook()
    for row in reversed(rows[1:]):
        book.active.append([row[6], row[8], row[1]])  # phone, card, surname only
    book.save(tmp_path / "part.xlsx")
    assert trace(tmp_path / "part.xlsx").startswith(f"export #{event.pk} by alice")


def test_file_without_trap_is_an_error(base_a, tmp_path):
    write_csv(tmp_path / "plain.csv", [[c.pk, c.surname, c.phone] for c in base_a])
    with pytest.raises(CommandError, match="no export"):
        trace(tmp_path / "plain.csv")


def test_admin_traces_on_the_audit_page_and_others_cannot(client, admin_user, manager_a, base_a):
    client.force_login(admin_user)
    assert 'data-testid="trace-form"' in client.get("/audit/").content.decode()
    _, body = export(client)
    event = AuditEvent.objects.get(action=AuditAction.EXPORT)
    upload = SimpleUploadedFile("leak.csv", body, content_type="text/csv")
    response = client.post("/customers/export/trace/", {"file": upload})
    assert response.status_code == 200
    text = response.content.decode()
    assert 'data-testid="trace-match"' in text
    assert f"#{event.pk}" in text and "alice" in text
    client.force_login(manager_a)
    upload = SimpleUploadedFile("leak.csv", body, content_type="text/csv")
    assert client.post("/customers/export/trace/", {"file": upload}).status_code == 404


def test_masked_export_is_traced_by_its_card_number(client, marketer, base_a, tmp_path):
    from tests.security.conftest import grant

    grant(marketer, "export_customers")
    client.force_login(marketer)
    _, body = export(client)
    event = AuditEvent.objects.get(action=AuditAction.EXPORT)
    assert event.details["masked"] is True
    rows = csv_rows(body)
    assert "***" in rows[event.details["trap"]["row"] - 1][6]
    write_csv(tmp_path / "cards.csv", [[row[8]] for row in rows[1:]])
    assert trace(tmp_path / "cards.csv").startswith(f"export #{event.pk} by maria")

"""Guarded export: permission, audit, daily cap, trap record, masking, CSV and XLSX."""

import csv
import hashlib
import io

import pytest
from django.contrib.auth.models import Permission
from openpyxl import load_workbook

from crm.models import AuditAction, AuditEvent, StaffProfile
from customers.exports import trap_find

pytestmark = pytest.mark.django_db


def download(client, fmt="csv", **params):
    response = client.post(f"/customers/export.{fmt}", params)
    body = b"".join(response.streaming_content) if response.status_code == 200 else b""
    return response, body


def csv_rows(body):
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))


def test_admin_exports_csv_with_one_trap_row_recorded_in_audit(client, admin_user, anna, boris):
    client.force_login(admin_user)
    response, body = download(client)
    assert response.status_code == 200
    rows = csv_rows(body)
    assert len(rows) == 1 + 2 + 1  # header, two customers, the trap
    event = AuditEvent.objects.get(action=AuditAction.EXPORT)
    assert event.details["rows"] == 2
    assert event.details["sha256"] == hashlib.sha256(body).hexdigest()
    trap = event.details["trap"]
    assert rows[trap["row"] - 1][6] == "'" + trap["full_phone"]  # formula guard on "+"
    assert trap_find(value=trap["full_phone"]) == event


def test_each_export_has_its_own_trap(client, admin_user, anna):
    client.force_login(admin_user)
    download(client)
    download(client)
    traps = [e.details["trap"]["full_phone"] for e in AuditEvent.objects.filter(action="export")]
    assert len(set(traps)) == 2


def test_export_follows_the_list_filter(client, admin_user, anna, boris):
    client.force_login(admin_user)
    _, body = download(client, q="Петров")
    event = AuditEvent.objects.get(action="export")
    trap_line = event.details["trap"]["row"]
    rows = csv_rows(body)
    surnames = [row[1] for number, row in enumerate(rows, 1) if number not in (1, trap_line)]
    assert surnames == ["Петров"]
    assert event.details["filters"] == {"query": "Петров"}


def test_xlsx_export(client, admin_user, anna):
    client.force_login(admin_user)
    response, body = download(client, "xlsx")
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(body)).active
    values = [row[1] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert "Иванова" in values
    assert len(values) == 2


def test_export_without_permission_is_refused_and_audited(client, manager_a, anna):
    client.force_login(manager_a)
    response, _ = download(client)
    assert response.status_code == 403
    assert 'data-testid="export-refused"' in response.content.decode()
    event = AuditEvent.objects.get(action=AuditAction.EXPORT_REFUSED)
    assert event.actor == manager_a
    assert event.details["reason"] == "permission"
    assert not AuditEvent.objects.filter(action=AuditAction.EXPORT).exists()


def test_outsider_export_is_refused_and_audited(client, outsider, anna):
    client.force_login(outsider)
    response, _ = download(client)
    assert response.status_code == 403
    assert AuditEvent.objects.filter(action=AuditAction.EXPORT_REFUSED, actor=outsider).exists()


def test_daily_cap_set_by_admin_refuses_a_too_big_export(client, admin_user, anna, boris):
    StaffProfile.objects.update_or_create(user=admin_user, defaults={"export_daily_cap": 2})
    client.force_login(admin_user)
    first, _ = download(client, q="Иванова")  # 1 row
    assert first.status_code == 200
    second, _ = download(client)  # 1 + 2 > 2
    assert second.status_code == 429
    refusal = AuditEvent.objects.get(action=AuditAction.EXPORT_REFUSED)
    assert refusal.details["reason"] == "cap"
    assert refusal.details["cap"] == 2


def test_default_cap_comes_from_settings(client, admin_user, anna, settings):
    settings.CLIENTELE_EXPORT_DAILY_CAP = 0
    client.force_login(admin_user)
    response, _ = download(client)
    assert response.status_code == 429


def test_granted_marketer_export_keeps_contacts_masked(client, marketer, anna):
    marketer.user_permissions.add(
        Permission.objects.get(codename="export_customers", content_type__app_label="customers")
    )
    client.force_login(marketer)
    response, body = download(client)
    assert response.status_code == 200
    text = body.decode("utf-8-sig")
    assert "+79161234567" not in text
    assert "anna.ivanova@mail.ru" not in text
    assert "'+7 916 ***-**-67" in text
    event = AuditEvent.objects.get(action=AuditAction.EXPORT)
    assert event.details["masked"] is True
    assert "***" in csv_rows(body)[event.details["trap"]["row"] - 1][6]


def test_unknown_format_is_404(client, admin_user):
    client.force_login(admin_user)
    assert client.post("/customers/export.pdf").status_code == 404


def test_export_by_get_is_not_allowed(client, admin_user, anna):
    client.force_login(admin_user)
    assert client.get("/customers/export.csv").status_code == 405
    assert not AuditEvent.objects.filter(action=AuditAction.EXPORT).exists()

"""The subject-access file: everything about the person, nothing about anyone else; deadlines."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from decimal import Decimal

from django.utils import timezone
from openpyxl import load_workbook

from analytics.services import metrics_recompute_all
from campaigns.models import Message
from crm.models import AuditEvent
from customers.models import CustomField, CustomFieldCategory, SubjectAccessRequest
from customers.privacy.selectors import working_days_after
from customers.privacy.services import processing_consent_record, subject_access_request_record
from customers.services import consent_set, contact_record
from sales.services import return_record
from tests.campaigns.conftest import make_campaign
from tests.factories import CustomerFactory

from .conftest import buy


def cells(content: bytes) -> dict[str, list[str]]:
    book = load_workbook(io.BytesIO(content), read_only=True)
    return {
        sheet.title: [str(v) for row in sheet.iter_rows(values_only=True) for v in row if v]
        for sheet in book.worksheets
    }


def text_of(sheets: dict[str, list[str]]) -> str:
    return "\n".join(v for values in sheets.values() for v in values)


def test_subject_access_file_holds_every_kind_of_record_and_nothing_of_others(
    client, admin_user, marketer, store_a, product, document
):
    CustomField.objects.create(
        key="shoe_size",
        name="Размер обуви",
        type="text",
        category=CustomFieldCategory.objects.create(name="Размеры"),
    )
    anna = CustomerFactory(
        surname="Звягинцева",
        first_name="Анна",
        home_store=store_a,
        phone_number="+79161234567",
        custom_fields={"shoe_size": "38"},
        notes="Любит лён",
    )
    # Another customer whose old card carries the same phone in the old format, with receipts.
    other = CustomerFactory(
        surname="Посторонний", home_store=store_a, notes="старый телефон 8 (916) 123-45-67"
    )
    buy(other, store_a, product, "OTHER-1")
    processing_consent_record(customer=anna, actor=admin_user, method="paper", paper_number="17")
    consent_set(customer=anna, channel="email", granted=True, source="web", actor=admin_user)
    receipt = buy(anna, store_a, product, "ANNA-1", qty="2")
    return_record(
        store=store_a,
        receipt=receipt,
        pos_return_id="RET-ANNA",
        returned_at=timezone.now(),
        lines=[(receipt.lines.get().line_no, Decimal("1"))],
    )
    contact_record(
        actor=admin_user,
        customer=anna,
        channel="phone",
        direction="out",
        topic="Примерка платья",
        agreement="Отложить размер 38",
    )
    campaign = make_campaign(marketer, name="Весенняя распродажа")
    Message.objects.create(
        campaign=campaign,
        customer=anna,
        occasion="once",
        channel="email",
        state="sent",
        sent_at=timezone.now(),
        created_at=timezone.now(),
    )
    metrics_recompute_all()

    client.force_login(admin_user)
    response = client.post(f"/customers/{anna.pk}/subject-access/")
    assert response.status_code == 200
    assert response["Content-Disposition"].endswith('.xlsx"')
    sheets = cells(response.content)
    everything = text_of(sheets)
    # In Russian, whatever the reader's language, with the processing categories and terms.
    assert "Что мы храним о вас" in everything
    assert "Категория данных" in everything
    for expected in (
        "Звягинцева",  # card
        "+79161234567",
        anna.email,
        "Любит лён",
        "Размер обуви",  # custom field
        "38",
        "17",  # paper consent number
        "2025-09",  # the document version
        "ANNA-1",  # receipt
        "Платье льняное",
        "RET-ANNA",  # return
        "Примерка платья",  # contact log
        "Отложить размер 38",
        "Весенняя распродажа",  # campaign message
    ):
        assert expected in everything, expected
    metric_sheet = next(v for k, v in sheets.items() if k.startswith("Метрики"))
    assert len(metric_sheet) > 10
    # Nobody else's records: not the other card, not its receipts.
    assert "Посторонний" not in everything
    assert "OTHER-1" not in everything
    assert "старый телефон" not in everything
    # Answered and audited, with the file's hash.
    sar = SubjectAccessRequest.objects.get(customer=anna)
    assert sar.answered_at is not None and sar.answered_by == admin_user
    digest = hashlib.sha256(response.content).hexdigest()
    assert sar.file_sha256 == digest
    event = AuditEvent.objects.get(action="subject_access")
    assert (event.object_id, event.details["sha256"]) == (str(anna.pk), digest)


def test_subject_access_needs_the_permission(client, manager_a, marketer, store_a):
    anna = CustomerFactory(home_store=store_a)
    for user in (manager_a, marketer):
        client.force_login(user)
        assert client.post(f"/customers/{anna.pk}/subject-access/").status_code == 404
    assert not AuditEvent.objects.filter(action="subject_access").exists()


def test_deadline_is_ten_working_days_and_overdue_requests_show_on_the_admins_today(
    client, admin_user, manager_a, store_a
):
    assert working_days_after(dt.date(2026, 12, 4), 10) == dt.date(2026, 12, 18)  # a Friday
    anna = CustomerFactory(surname="Просрочкина", home_store=store_a)
    fresh = CustomerFactory(surname="Своевременная", home_store=store_a)
    today = timezone.localdate()
    subject_access_request_record(
        customer=anna, actor=admin_user, received_on=today - dt.timedelta(days=30)
    )
    subject_access_request_record(customer=fresh, actor=admin_user, received_on=today)
    client.force_login(admin_user)
    page = client.get("/").content.decode()
    assert 'data-testid="sar-overdue"' in page
    assert "Просрочкина" in page
    assert "Своевременная" not in page
    # Answering clears it.
    client.post(f"/customers/{anna.pk}/subject-access/")
    assert "Просрочкина" not in client.get("/").content.decode()
    # A manager (no such right) never sees the list.
    client.force_login(manager_a)
    assert 'data-testid="sar-overdue"' not in client.get("/").content.decode()


def test_registering_a_request_from_the_card(client, admin_user, store_a):
    anna = CustomerFactory(home_store=store_a)
    client.force_login(admin_user)
    response = client.post(
        f"/customers/{anna.pk}/subject-access/request/", {"received_on": "2026-11-02"}
    )
    assert response.status_code == 302
    sar = SubjectAccessRequest.objects.get(customer=anna)
    assert sar.due_on == dt.date(2026, 11, 16)
    card = client.get(anna.get_absolute_url()).content.decode()
    assert 'data-testid="sar-list"' in card
    bad = client.post(f"/customers/{anna.pk}/subject-access/request/", {"received_on": "x"})
    assert bad.status_code == 302
    assert SubjectAccessRequest.objects.count() == 1

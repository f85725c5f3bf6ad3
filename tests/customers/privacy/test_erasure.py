"""Erasure: irreversible, audited, permissioned; receipts and totals stay, the person does not —
in any text column of the database."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from analytics.models import CustomerMetrics
from analytics.services import metrics_recompute_all
from campaigns.models import Message
from crm.models import AuditEvent
from customers.models import (
    Contact,
    Customer,
    CustomerPhone,
    ImportantDate,
    ProcessingConsent,
    Tag,
)
from customers.privacy.services import (
    ErasureBasis,
    customer_erase,
    erase_due,
    processing_consent_record,
    processing_consent_withdraw,
)
from customers.services import consent_set, contact_record, customer_update
from sales.models import Receipt
from sales.services import return_record
from tests.campaigns.conftest import make_campaign
from tests.factories import CustomerFactory

from .conftest import buy

SURNAME = "Чрезвычайнова"
FIRST = "Аполлинария"
PHONE = "+79169998877"
PHONE2 = "+79031112233"
EMAIL = "apollinaria.unique@mail.ru"
CARD = "7700123456789"


def text_columns() -> list[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.table_name, c.column_name
              FROM information_schema.columns c
              JOIN information_schema.tables t
                ON t.table_schema = c.table_schema AND t.table_name = c.table_name
             WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
               AND c.data_type IN ('text', 'character varying', 'character', 'jsonb', 'json')
            """
        )
        return cursor.fetchall()


def columns_holding(values: list[str]) -> list[tuple[str, str, str]]:
    """Every (table, column, value) where a text column anywhere still contains a value."""
    found = []
    patterns = [f"%{v}%" for v in values]
    with connection.cursor() as cursor:
        for table, column in text_columns():
            cursor.execute(
                f'SELECT "{column}"::text FROM "{table}" WHERE "{column}"::text ILIKE ANY(%s)',  # noqa: S608
                [patterns],
            )
            for (text,) in cursor.fetchall():
                found.append((table, column, text[:120]))
    return found


@pytest.fixture
def person(admin_user, marketer, store_a, product, document):
    """A customer with a trace in every table that can hold one."""
    customer = CustomerFactory(
        surname=SURNAME,
        first_name=FIRST,
        patronymic="Феоктистовна",
        email=EMAIL,
        extra_emails=["apollinaria.work@mail.ru"],
        card_number=CARD,
        home_store=store_a,
        phone_number=PHONE,
        address="ул. Чрезвычайная, 5",
        notes=f"{SURNAME} любит лён",
        interests="Вышивка",
        custom_fields={},
    )
    CustomerPhone.objects.create(customer=customer, number=PHONE2, kind="work")
    customer.tags.add(Tag.objects.create(name="Постоянные"))
    ImportantDate.objects.create(
        customer=customer, kind="child_birthday", label="Дочь", date=dt.date(2015, 5, 1)
    )
    processing_consent_record(
        customer=customer,
        actor=admin_user,
        method="paper",
        paper_number="П-555",
        scan=SimpleUploadedFile("scan.pdf", f"{SURNAME} подпись".encode(), "application/pdf"),
    )
    consent_set(
        customer=customer,
        channel="email",
        granted=True,
        source="web",
        actor=admin_user,
        note=f"просила {FIRST}",
    )
    customer_update(actor=admin_user, customer=customer, data={"city": "Тула", "position": "Врач"})
    contact_record(
        actor=admin_user,
        customer=customer,
        channel="phone",
        direction="out",
        topic=f"Звонок {SURNAME}",
        outcome=f"Перезвонить на {PHONE2}",
        next_step="Перезвонить",
        due_date=timezone.localdate() + dt.timedelta(days=2),
    )
    receipt = buy(customer, store_a, product, "P-1", qty="3")
    buy(customer, store_a, product, "P-2", days_ago=40)
    return_record(
        store=store_a,
        receipt=receipt,
        pos_return_id="RET-P",
        returned_at=timezone.now(),
        lines=[(receipt.lines.get().line_no, Decimal("1"))],
    )
    campaign = make_campaign(marketer, name="Весна")
    Message.objects.create(
        campaign=campaign,
        customer=customer,
        occasion="once",
        channel="email",
        state="failed",
        last_error=f"550 5.1.1 <{EMAIL}>: Recipient address rejected",
        created_at=timezone.now(),
    )
    LogEntry.objects.create(
        user=admin_user,
        content_type=ContentType.objects.get_for_model(Customer),
        object_id=str(customer.pk),
        object_repr=str(customer),
        action_flag=CHANGE,
        change_message=f'[{{"changed": {{"fields": ["{SURNAME}"]}}}}]',
    )
    return customer


def test_erasure_keeps_receipts_and_totals_and_no_text_column_holds_the_person(
    client, admin_user, person, store_a, product
):
    other = CustomerFactory(surname="Соседова", home_store=store_a)
    buy(other, store_a, product, "O-1")
    client.force_login(admin_user)
    # Traces through the pages too: a card view, an export searched by the phone, an answer.
    client.get(person.get_absolute_url())
    assert client.post("/customers/export.csv", {"q": PHONE}).status_code == 200
    assert client.post("/customers/export.csv", {"q": SURNAME}).status_code == 200
    assert client.post(f"/customers/{person.pk}/subject-access/").status_code == 200
    metrics_recompute_all()
    before_totals = CustomerMetrics.objects.aggregate(r=Sum("revenue"), m=Sum("margin"))
    before_mine = CustomerMetrics.objects.values_list("revenue", "receipts").get(customer=person)
    receipt_ids = set(Receipt.objects.filter(customer=person).values_list("pk", flat=True))
    identifiers = [SURNAME, FIRST, PHONE, PHONE.lstrip("+"), PHONE2[2:], EMAIL, CARD]
    assert columns_holding(identifiers)  # the scan sees them before

    response = client.post(
        f"/customers/{person.pk}/erase/", {"basis": "withdrawal", "confirm": "on"}
    )
    assert response.status_code == 302

    leftovers = columns_holding(identifiers)
    assert leftovers == []
    person.refresh_from_db()
    assert person.erased_at is not None and person.pseudonym.startswith("ANON-")
    assert person.card_number is None and person.birth_date is None
    assert not person.phones.exists() and not person.tags.exists()
    assert not person.important_dates.exists()
    assert set(Receipt.objects.filter(customer=person).values_list("pk", flat=True)) == receipt_ids
    assert person.receipts.get(pos_receipt_id="P-1").returns.count() == 1
    assert Contact.objects.get(customer=person).due_date is None
    assert not ProcessingConsent.objects.filter(customer=person).exclude(scan="").exists()
    metrics_recompute_all()
    assert CustomerMetrics.objects.aggregate(r=Sum("revenue"), m=Sum("margin")) == before_totals
    after_mine = CustomerMetrics.objects.values_list("revenue", "receipts").get(customer=person)
    assert after_mine == before_mine
    # Audited: who, when, on what basis, under the pseudonym only.
    event = AuditEvent.objects.get(action="customer_erase")
    assert event.actor == admin_user
    assert event.details == {"pseudonym": person.pseudonym, "basis": "withdrawal"}
    # Exports made afterwards do not contain the person; the card shows the pseudonym.
    export = client.post("/customers/export.csv")
    body = b"".join(export.streaming_content).decode("utf-8-sig")
    assert "Соседова" in body
    assert person.pseudonym not in body
    assert not any(line.split(";")[0] == str(person.pk) for line in body.splitlines())
    card = client.get(person.get_absolute_url()).content.decode()
    assert person.pseudonym in card and 'data-state="erased"' in card
    # Irreversible: a second erasure is refused, the admin cannot edit the row back.
    with pytest.raises(ValidationError):
        customer_erase(customer=person, actor=admin_user, basis=ErasureBasis.REQUEST)
    assert client.get(f"/admin/customers/customer/{person.pk}/change/").status_code in (200, 403)
    assert (
        client.post(
            f"/admin/customers/customer/{person.pk}/change/", {"surname": SURNAME}
        ).status_code
        == 403
    )


def test_erasure_refused_without_the_permission(client, manager_a, marketer, person):
    client.force_login(manager_a)
    assert client.get(f"/customers/{person.pk}/erase/").status_code == 404
    response = client.post(
        f"/customers/{person.pk}/erase/", {"basis": "withdrawal", "confirm": "on"}
    )
    assert response.status_code == 404
    with pytest.raises(PermissionDenied):
        customer_erase(customer=person, actor=marketer, basis=ErasureBasis.REQUEST)
    person.refresh_from_db()
    assert person.erased_at is None and person.surname == SURNAME
    assert not AuditEvent.objects.filter(action="customer_erase").exists()


def test_erasure_without_confirmation_is_a_form_error(client, admin_user, person):
    client.force_login(admin_user)
    response = client.post(f"/customers/{person.pk}/erase/", {"basis": "withdrawal"})
    assert response.status_code == 400
    response = client.post(f"/customers/{person.pk}/erase/", {"basis": "whim", "confirm": "on"})
    assert response.status_code == 400
    person.refresh_from_db()
    assert person.erased_at is None


def test_admin_delete_of_a_customer_with_metrics_becomes_an_audited_erasure(
    client, admin_user, person
):
    metrics_recompute_all()
    assert CustomerMetrics.objects.filter(customer=person).exists()
    client.force_login(admin_user)
    url = f"/admin/customers/customer/{person.pk}/delete/"
    page = client.get(url)
    assert page.status_code == 200
    assert "не будет удалён" in page.content.decode()  # the admin speaks Russian by default
    response = client.post(url, {"post": "yes"})
    assert response.status_code == 302
    person.refresh_from_db()
    assert person.erased_at is not None and person.surname == ""
    assert person.receipts.count() == 2
    assert CustomerMetrics.objects.filter(customer=person).exists()
    event = AuditEvent.objects.get(action="customer_erase")
    assert event.details["basis"] == "admin_delete"
    # The admin list offers no bulk delete, and an erased card cannot be deleted again.
    changelist = client.get("/admin/customers/customer/").content.decode()
    assert "delete_selected" not in changelist
    assert client.post(url, {"post": "yes"}).status_code == 403


def test_scheduled_erasure_runs_after_the_grace_period(settings, person):
    settings.CLIENTELE_ERASURE_GRACE_DAYS = 14
    processing_consent_withdraw(customer=person, actor=None, method="link")
    person.refresh_from_db()
    assert person.erasure_due_at - person.processing_withdrawn_at == dt.timedelta(days=14)
    assert erase_due() == 0
    assert erase_due(now=timezone.now() + dt.timedelta(days=15)) == 1
    person.refresh_from_db()
    assert person.erased_at is not None
    event = AuditEvent.objects.get(action="customer_erase")
    assert event.actor is None and event.actor_name == "celery"
    assert event.details["basis"] == "withdrawal"


def test_consent_again_before_the_grace_period_ends_cancels_the_erasure(admin_user, person):
    processing_consent_withdraw(customer=person, actor=admin_user, method="paper")
    processing_consent_record(customer=person, actor=admin_user, method="paper", paper_number="2")
    person.refresh_from_db()
    assert person.erasure_due_at is None and person.processing_withdrawn_at is None
    assert erase_due(now=timezone.now() + dt.timedelta(days=400)) == 0


def test_beat_schedule_has_the_erasure_task(db):
    from django_celery_beat.models import PeriodicTask

    assert PeriodicTask.objects.filter(task="customers.tasks.erase_due", enabled=True).exists()


def test_nothing_is_written_back_onto_an_erased_card(client, admin_user, person):
    customer_erase(customer=person, actor=admin_user, basis=ErasureBasis.REQUEST)
    client.force_login(admin_user)
    response = client.post(f"/customers/{person.pk}/edit/", {"surname": SURNAME})
    assert response.status_code == 400
    response = client.post(
        f"/customers/{person.pk}/contacts/",
        {"channel": "phone", "direction": "in", "topic": SURNAME},
    )
    assert response.status_code == 400
    person.refresh_from_db()
    assert person.surname == ""
    assert not Contact.objects.filter(topic=SURNAME).exists()

"""The subject-access file (152-FZ art. 14): everything held about one person, as one XLSX.

Every section reads by the customer's own key (never by a phone, email or name match), so a
record of another person with a similar phone or name cannot slip in. The file is written in
Russian whatever the staff member's language, because it goes to the customer.
"""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.styles import Font

from ..extensions import access_sheets
from ..models import Customer
from ..services import CARD_FIELDS as EDITABLE_FIELDS
from .selectors import ProcessingState, processing_state

# What the card says about the person, in the order a reader expects (identity, contacts, ...):
# the fields a service may set, then the consents and where the card came from.
CARD_FIELDS = [
    *(name for name in EDITABLE_FIELDS if name != "do_not_contact"),
    "consent_email",
    "consent_sms",
    "consent_messenger",
    "consent_phone",
    "do_not_contact",
    "source",
    "created_at",
]


def processing_purposes() -> list[tuple[str, str, str]]:
    """Categories of data, why they are processed and for how long (shown to the customer)."""
    lead = settings.CLIENTELE_RETENTION_LEAD_YEARS
    inactive = settings.CLIENTELE_RETENTION_INACTIVE_YEARS
    receipts = settings.CLIENTELE_RETENTION_RECEIPT_YEARS
    until = _("until consent is withdrawn, at most %(years)s years after the last purchase") % {
        "years": inactive
    }
    return [
        (
            _("Identity: surname, name, patronymic, gender, birth date"),
            _("Loyalty programme, greetings, identifying the customer at the till"),
            until,
        ),
        (
            _("Contact details: phones, emails, postal address"),
            _("Reaching the customer about purchases; mailings only with a separate consent"),
            until,
        ),
        (
            _("Loyalty card number"),
            _("Discounts and bonuses"),
            until,
        ),
        (
            _("Purchases and returns"),
            _("Accounting, warranty and returns, purchase analysis"),
            _("%(years)s years as accounting records; after erasure under a pseudonymous id only")
            % {"years": receipts},
        ),
        (
            _("Contact log, preferences and notes"),
            _("Customer service"),
            until,
        ),
        (
            _("Derived metrics and value class"),
            _("Analysis of purchasing behaviour, offers"),
            until,
        ),
        (
            _("Leads (never bought)"),
            _("Customer service"),
            _("%(years)s years without a purchase or a contact, then reviewed and anonymised")
            % {"years": lead},
        ),
    ]


def _value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).strftime("%d.%m.%Y %H:%M")
    if isinstance(value, dt.date):
        return value.strftime("%d.%m.%Y")
    if isinstance(value, Decimal | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def _field_value(obj: models.Model, name: str) -> Any:
    field = obj._meta.get_field(name)
    if getattr(field, "choices", None):
        return getattr(obj, f"get_{name}_display")()
    value = getattr(obj, name)
    if name == "assigned_manager" and value is not None:
        return value.get_full_name() or value.get_username()
    return _value(value)


def _sheet(book: Workbook, title: str, header: list[str], rows: list[list[Any]]) -> None:
    sheet = book.create_sheet(title[:31])
    sheet.append(header)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append([_value(v) for v in row])
    if not rows:
        sheet.append([_("No records.")])
    for column, _label in enumerate(header, start=1):
        sheet.column_dimensions[sheet.cell(1, column).column_letter].width = 28


def _card_rows(customer: Customer) -> list[list[Any]]:
    rows = [
        [str(customer._meta.get_field(n).verbose_name), _field_value(customer, n)]
        for n in CARD_FIELDS
    ]
    rows.insert(0, [_("Customer id"), customer.pk])
    for phone in customer.phones.all():
        rows.append([_("Phone") + f" ({phone.get_kind_display()})", phone.number])
    for date in customer.important_dates.all():
        rows.append([date.get_kind_display(), f"{date.label} {date.date:%d.%m.%Y}".strip()])
    tags = ", ".join(customer.tags.values_list("name", flat=True))
    if tags:
        rows.append([_("Tags"), tags])
    state = dict(ProcessingState.CHOICES)[processing_state(customer)]
    rows.append([_("Consent to processing"), state])
    return rows


def _custom_rows(customer: Customer) -> list[list[Any]]:
    from ..models import CustomField

    names = dict(CustomField.objects.values_list("key", "name"))
    return [
        [names.get(key, key), value if not isinstance(value, list) else ", ".join(value)]
        for key, value in sorted((customer.custom_fields or {}).items())
    ]


def _consent_rows(customer: Customer) -> list[list[Any]]:
    rows = []
    for consent in customer.processing_consents.select_related("document", "taken_by"):
        rows.append(
            [
                _("Processing of personal data"),
                _("given") if consent.granted else _("withdrawn"),
                consent.at,
                consent.get_method_display(),
                consent.document.version,
                consent.paper_number,
                (consent.taken_by.get_full_name() or consent.taken_by.get_username())
                if consent.taken_by
                else "",
            ]
        )
    for event in customer.consents.select_related("actor"):
        rows.append(
            [
                _("Mailings: %(channel)s") % {"channel": event.get_channel_display()},
                _("given") if event.granted else _("withdrawn"),
                event.at,
                event.get_source_display(),
                "",
                event.note,
                (event.actor.get_full_name() or event.actor.get_username()) if event.actor else "",
            ]
        )
    return rows


def _contact_rows(customer: Customer) -> list[list[Any]]:
    return [
        [
            c.at,
            c.get_channel_display(),
            c.get_direction_display(),
            c.topic,
            c.outcome,
            c.agreement,
            c.next_step,
            c.due_date,
        ]
        for c in customer.contacts.order_by("at", "id")
    ]


def _message_rows(customer: Customer) -> list[list[Any]]:
    # Campaigns sit above customers: read through the reverse relation, no import.
    messages = customer.campaign_messages.select_related("campaign").order_by("created_at", "id")
    return [
        [m.created_at, m.campaign.name, m.get_channel_display(), m.get_state_display(), m.sent_at]
        for m in messages
    ]


def _metric_rows(customer: Customer) -> list[list[Any]]:
    try:
        metrics = customer.metrics
    except models.ObjectDoesNotExist:
        return []
    rows = []
    for field in metrics._meta.concrete_fields:
        if field.name in {"id", "customer"} or field.is_relation:
            continue
        rows.append([str(field.verbose_name), _field_value(metrics, field.name)])
    return rows


def subject_access_xlsx(*, customer: Customer) -> bytes:
    """Everything held about `customer` as XLSX bytes, in Russian."""
    customer = (
        Customer.objects.select_related(
            "home_store", "assigned_manager", "acquisition_channel", "processing_document"
        )
        .prefetch_related("phones", "important_dates")
        .get(pk=customer.pk)
    )
    with translation.override("ru"):
        book = Workbook()
        intro = book.active
        intro.title = _("About this file")[:31]
        intro.append([_("What we hold about you")])
        intro["A1"].font = Font(bold=True, size=14)
        intro.append([_("Prepared on"), _value(timezone.now())])
        intro.append([_("Customer id"), customer.pk])
        intro.append([])
        intro.append([_("Category of data"), _("Purpose"), _("Kept for")])
        for row in processing_purposes():
            intro.append(list(row))
        intro.column_dimensions["A"].width = 50
        intro.column_dimensions["B"].width = 60
        intro.column_dimensions["C"].width = 60
        _sheet(book, _("Card"), [_("Field"), _("Value")], _card_rows(customer))
        _sheet(book, _("Custom fields"), [_("Field"), _("Value")], _custom_rows(customer))
        _sheet(
            book,
            _("Consents"),
            [_("Consent"), _("State"), _("When"), _("How"), _("Version"), _("Note"), _("Taken by")],
            _consent_rows(customer),
        )
        # Sheets of the apps above customers (sales: purchases, returns), in their place.
        for sheet in access_sheets():
            _sheet(book, sheet.title(), sheet.header(), sheet.rows(customer))
        _sheet(
            book,
            _("Contacts"),
            [
                _("Date"),
                _("Channel"),
                _("Direction"),
                _("Topic"),
                _("Outcome"),
                _("Agreement"),
                _("Next step"),
                _("Due"),
            ],
            _contact_rows(customer),
        )
        _sheet(
            book,
            _("Messages"),
            [_("Created"), _("Campaign"), _("Channel"), _("State"), _("Sent")],
            _message_rows(customer),
        )
        _sheet(book, _("Metrics and class"), [_("Metric"), _("Value")], _metric_rows(customer))
        out = io.BytesIO()
        book.save(out)
    return out.getvalue()

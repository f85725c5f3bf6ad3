"""Guarded export of the filtered customer list to CSV or XLSX.

An export is a permission, a per-user daily row cap, and an audit event naming the filter, the
row count, the file's SHA-256 and a trap record: one made-up customer, unique to this export and
placed at a random row, so a leaked file names the export it came from. The file is written to a
temporary file in chunks (openpyxl in write-only mode), so memory stays bounded whatever the size.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import secrets
import tempfile
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import IntegerField, Sum
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.access import can_export, can_see_contact_details, mask_email, mask_phone, mask_text
from crm.audit import audit_record
from crm.models import AuditAction, AuditEvent, StaffProfile

from .selectors import ListFilters, customer_filter

FORMATS = ("csv", "xlsx")
CHUNK = 2000

COLUMNS = [
    ("id", "ID"),
    ("surname", gettext_lazy("surname")),
    ("first_name", gettext_lazy("first name")),
    ("patronymic", gettext_lazy("patronymic")),
    ("gender", gettext_lazy("gender")),
    ("birth_date", gettext_lazy("birth date")),
    ("phone", gettext_lazy("phone")),
    ("email", gettext_lazy("email")),
    ("card_number", gettext_lazy("loyalty card")),
    ("city", gettext_lazy("city")),
    ("postal_code", gettext_lazy("postal code")),
    ("address", gettext_lazy("address")),
    ("home_store__name", gettext_lazy("store")),
    ("lifecycle_stage", gettext_lazy("lifecycle stage")),
    ("consent_email", gettext_lazy("email consent")),
    ("consent_sms", gettext_lazy("SMS consent")),
    ("consent_messenger", gettext_lazy("messenger consent")),
    ("consent_phone", gettext_lazy("phone call consent")),
    ("created_at", gettext_lazy("created at")),
]
_MASKERS = {
    "phone": mask_phone,
    "email": mask_email,
    "postal_code": mask_text,
    "address": mask_text,
}

_TRAP_SURNAMES = ["Лаптева", "Гончаров", "Мельникова", "Журавлёв", "Данилова", "Зуев", "Киселёва"]
_TRAP_NAMES = ["Вера", "Глеб", "Полина", "Тимофей", "Алиса", "Роман", "Ульяна"]
_TRAP_CITIES = ["Тверь", "Калуга", "Ярославль", "Рязань", "Владимир"]


class ExportRefused(PermissionDenied):
    """The user may not export this now; `reason` is `permission` or `cap`."""

    def __init__(self, message: str, *, reason: str):
        super().__init__(message)
        self.reason = reason


@dataclass
class ExportFile:
    file: IO[bytes]
    filename: str
    content_type: str
    rows: int
    sha256: str
    event: AuditEvent


def export_daily_cap(user) -> int:
    """Rows `user` may export per day: the admin's cap on the staff profile, else the default."""
    cap = StaffProfile.objects.filter(user=user).values_list("export_daily_cap", flat=True).first()
    return cap if cap is not None else settings.CLIENTELE_EXPORT_DAILY_CAP


def exported_today(user) -> int:
    """Rows `user` has exported since local midnight, from the audit log."""
    midnight = timezone.make_aware(dt.datetime.combine(timezone.localdate(), dt.time.min))
    total = (
        AuditEvent.objects.filter(actor=user, action=AuditAction.EXPORT, at__gte=midnight)
        .annotate(rows=Cast(KeyTextTransform("rows", "details"), IntegerField()))
        .aggregate(total=Sum("rows"))["total"]
    )
    return total or 0


def filters_for_audit(filters: ListFilters) -> dict[str, Any]:
    return {
        name: value.isoformat() if isinstance(value, dt.date) else value
        for name, value in vars(filters).items()
        if value not in (None, "")
    }


def _trap_record(masked: bool) -> dict[str, str]:
    # Random enough that two exports never share a trap; the phone sits in a real mobile range
    # and the card looks like any other, so a leaker cannot spot and drop it.
    token = secrets.randbelow(10**7)
    surname_index = secrets.randbelow(len(_TRAP_SURNAMES))
    phone = f"+7999{token:07d}"
    email = f"{secrets.token_hex(3)}{token % 1000:03d}@mail.ru"
    return {
        "surname": _TRAP_SURNAMES[surname_index],
        "first_name": _TRAP_NAMES[secrets.randbelow(len(_TRAP_NAMES))],
        "phone": mask_phone(phone) if masked else phone,
        "email": mask_email(email) if masked else email,
        "card_number": f"77{secrets.randbelow(10**10):010d}",
        "city": _TRAP_CITIES[secrets.randbelow(len(_TRAP_CITIES))],
        "full_phone": phone,
        "full_email": email,
    }


def _trap_row(trap: dict[str, str]) -> list[Any]:
    row = []
    for name, _label in COLUMNS:
        if name == "id":
            row.append("")
        elif name == "lifecycle_stage":
            row.append("customer")
        elif name.startswith("consent_"):
            row.append(False)
        else:
            row.append(trap.get(name, ""))
    return row


def _rows(user, filters: ListFilters, masked: bool):
    customers = customer_filter(user=user, filters=filters).order_by("id")
    names = [name for name, _label in COLUMNS]
    for values in customers.values_list(*names).iterator(chunk_size=CHUNK):
        row = list(values)
        if masked:
            for index, name in enumerate(names):
                masker = _MASKERS.get(name)
                if masker:
                    row[index] = masker(row[index] or "")
        yield row


def _labels() -> dict[str, dict[Any, str]]:
    """Readable labels of the coded columns, in the reader's language."""
    from .models import Gender, LifecycleStage

    return {
        "gender": {k: str(v) for k, v in Gender.choices},
        "lifecycle_stage": {k: str(v) for k, v in LifecycleStage.choices},
    }


def _readable(row: list[Any], labels: dict[str, dict[Any, str]]) -> list[Any]:
    """Codes as their labels and yes/no for flags: a file people read, not a database dump."""
    out = []
    for (name, _label), value in zip(COLUMNS, row, strict=True):
        if name in labels:
            value = labels[name].get(value, value) if value else ""
        elif isinstance(value, bool):
            value = _("yes") if value else _("no")
        out.append(value)
    return out


def _cell(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).replace(tzinfo=None)
    return value


def _csv_value(value: Any) -> Any:
    # Local time and the reader's date format (дд.мм.гггг in Russian), as spreadsheets expect.
    if isinstance(value, dt.datetime):
        return formats.date_format(timezone.localtime(value), "SHORT_DATETIME_FORMAT")
    if isinstance(value, dt.date):
        return formats.date_format(value, "SHORT_DATE_FORMAT")
    return value


def _write_csv(out: IO[bytes], header: list[str], rows) -> None:
    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="", write_through=True)
    writer = csv.writer(text, delimiter=";")
    writer.writerow(header)
    labels = _labels()
    for row in rows:
        writer.writerow([_csv_value(v) for v in _readable(row, labels)])
    text.flush()
    text.detach()


def _write_xlsx(out: IO[bytes], header: list[str], rows) -> None:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(_("Customers"))
    sheet.append(header)
    labels = _labels()
    for row in rows:
        sheet.append([_cell(v) for v in _readable(row, labels)])
    book.save(out)


def customer_export(*, actor, filters: ListFilters, fmt: str, request=None) -> ExportFile:
    """Write the filtered list to a file with one trap row, audited; ExportRefused if not allowed.

    A refusal (no permission, or over the daily cap) is itself an audit event, so this service is
    deliberately not one transaction: the refusal must stay recorded although an error follows.
    """
    if fmt not in FORMATS:
        raise ValueError(fmt)
    audit_filters = filters_for_audit(filters)
    if not can_export(actor):
        _refuse(actor, request, audit_filters, fmt, "permission")
        raise ExportRefused(_("You are not allowed to export customers."), reason="permission")
    rows = customer_filter(user=actor, filters=filters).count()
    cap = export_daily_cap(actor)
    used = exported_today(actor)
    # The cap counts customers' rows; the trap row is ours, not the user's.
    if used + rows > cap:
        _refuse(actor, request, audit_filters, fmt, "cap", rows=rows, cap=cap, used=used)
        raise ExportRefused(
            _(
                "This export has %(rows)s rows, but only %(left)s of your daily %(cap)s remain. "
                "Narrow the filter or ask an administrator."
            )
            % {"rows": rows, "left": max(cap - used, 0), "cap": cap},
            reason="cap",
        )
    masked = not can_see_contact_details(actor)
    trap = _trap_record(masked)
    trap_position = secrets.randbelow(rows + 1)

    written = [0]

    def with_trap():
        for index, row in enumerate(_rows(actor, filters, masked)):
            if index == trap_position:
                yield _trap_row(trap)
            written[0] += 1
            yield row
        if trap_position >= written[0]:
            yield _trap_row(trap)

    header = [str(label) for _name, label in COLUMNS]
    out = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the response, which closes it
    if fmt == "csv":
        _write_csv(out, header, with_trap())
        content_type = "text/csv; charset=utf-8"
    else:
        _write_xlsx(out, header, with_trap())
        content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    digest = hashlib.sha256()
    out.seek(0)
    for chunk in iter(lambda: out.read(1 << 16), b""):
        digest.update(chunk)
    out.seek(0)
    event = audit_record(
        actor=actor,
        action=AuditAction.EXPORT,
        request=request,
        format=fmt,
        filters=audit_filters,
        rows=written[0],
        cap=cap,
        masked=masked,
        sha256=digest.hexdigest(),
        trap={k: trap[k] for k in ("surname", "first_name", "full_phone", "full_email")}
        | {"card_number": trap["card_number"], "city": trap["city"], "row": trap_position + 2},
    )
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    return ExportFile(
        file=out,
        filename=f"customers-{stamp}.{fmt}",
        content_type=content_type,
        rows=written[0],
        sha256=digest.hexdigest(),
        event=event,
    )


def _refuse(actor, request, filters: dict[str, Any], fmt: str, reason: str, **extra) -> None:
    audit_record(
        actor=actor,
        action=AuditAction.EXPORT_REFUSED,
        request=request,
        format=fmt,
        filters=filters,
        reason=reason,
        **extra,
    )


def trap_find(*, value: str) -> AuditEvent | None:
    """The export whose trap record carries `value` (a phone, email or card seen in a leak)."""
    value = value.strip()
    for key in ("full_phone", "full_email", "card_number"):
        event = (
            AuditEvent.objects.filter(action=AuditAction.EXPORT, **{f"details__trap__{key}": value})
            .order_by("-at")
            .first()
        )
        if event is not None:
            return event
    return None

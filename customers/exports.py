"""Guarded export of the filtered customer list to CSV or XLSX.

An export is a permission, rows counted against the user's daily allowance (`customers.disclosure`,
serialised per user in the database), and an audit event naming the filter, the row count, the
file's SHA-256 and a trap record (`customers.traps`): one made-up customer, unique to this
export and indistinguishable from its real rows, so a leaked file names the export it came from.
Cells are written as text: in CSV a cell that a spreadsheet would read as a formula (it starts
with =, +, -, @, a tab or a carriage return) gets a leading apostrophe; XLSX cells are strings.
The file is written to a temporary file in chunks (openpyxl in write-only mode), so memory stays
bounded whatever the size.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import tempfile
from dataclasses import dataclass
from typing import IO, Any

from django.core.exceptions import PermissionDenied
from django.db.models import Max, Min
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.audit import audit_record
from crm.models import AuditAction, AuditEvent
from customers.access import can_export, can_see_contact_details, mask_email, mask_phone, mask_text
from customers.disclosure import ContactsCapReached, rows_take, taken_today

from . import traps
from .selectors.listing import ListFilters, customer_filter

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


def exported_today(user) -> int:
    """Unmasked rows `user` has taken today through every door (exports included)."""
    return taken_today(user)


def filters_for_audit(filters: ListFilters) -> dict[str, Any]:
    return {
        name: value.isoformat() if isinstance(value, dt.date) else value
        for name, value in vars(filters).items()
        if value not in (None, "")
    }


def _rows(queryset, masked: bool, limit: int):
    names = [name for name, _label in COLUMNS]
    # Exactly the rows counted against the cap, even if cards were added meanwhile.
    for values in queryset.values_list(*names)[:limit].iterator(chunk_size=CHUNK):
        row = list(values)
        if masked:
            for index, name in enumerate(names):
                masker = _MASKERS.get(name)
                if masker:
                    row[index] = masker(row[index] or "")
        yield row


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_text(value: Any) -> str:
    """A cell as text a spreadsheet will not run: a formula-like start gets an apostrophe."""
    text = traps.cell_text(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


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
    writer.writerow([safe_text(h) for h in header])
    labels = _labels()
    for row in rows:
        writer.writerow([safe_text(_csv_value(v)) for v in _readable(row, labels)])
    text.flush()
    text.detach()


def _write_xlsx(out: IO[bytes], header: list[str], rows) -> None:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    book = Workbook(write_only=True)
    sheet = book.create_sheet(_("Customers"))

    def cells(values):
        for value in values:
            cell = WriteOnlyCell(sheet, value=traps.cell_text(value))
            # openpyxl turns a string starting with "=" into a formula; force plain text.
            cell.data_type = "s"
            yield cell

    sheet.append(list(cells(header)))
    labels = _labels()
    for row in rows:
        sheet.append(list(cells(_csv_value(v) for v in _readable(row, labels))))
    book.save(out)


def customer_export(*, actor, filters: ListFilters, fmt: str, request=None) -> ExportFile:
    """Write the filtered list to a file with one trap row, audited; ExportRefused if not allowed.

    A refusal (no permission, or over the daily cap) is itself an audit event, so this service is
    deliberately not one transaction: the refusal must stay recorded although an error follows.
    The rows are counted against the cap before the file is written, in one statement that
    serialises the user's concurrent exports.
    """
    if fmt not in FORMATS:
        raise ValueError(fmt)
    audit_filters = filters_for_audit(filters)
    if not can_export(actor):
        _refuse(actor, request, audit_filters, fmt, "permission")
        raise ExportRefused(_("You are not allowed to export customers."), reason="permission")
    queryset = customer_filter(user=actor, filters=filters).order_by("id")
    rows = queryset.count()
    # The cap counts customers' rows; the trap row is ours, not the user's.
    try:
        cap = rows_take(user=actor, rows=rows)
    except ContactsCapReached as refused:
        _refuse(
            actor, request, audit_filters, fmt, "cap", rows=rows, cap=refused.cap, used=refused.used
        )
        raise ExportRefused(
            _(
                "This export has %(rows)s rows, but only %(left)s of your daily %(cap)s remain. "
                "Narrow the filter or ask an administrator."
            )
            % {"rows": rows, "left": max(refused.cap - refused.used, 0), "cap": refused.cap},
            reason="cap",
        ) from refused
    masked = not can_see_contact_details(actor)
    names = [name for name, _label in COLUMNS]
    sample = list(queryset.order_by("?").values(*names)[: traps.SAMPLE])
    bounds = queryset.aggregate(low=Min("id"), high=Max("id"))
    ids = [bounds["low"], bounds["high"]] if rows else []
    trap = traps.trap_make(sample=sample, ids=ids)
    shown = traps.trap_masked(trap) if masked else trap
    trap_row = [shown.get(name, "") for name in names]
    written = [0]
    trap_line = [0]

    def with_trap():
        # The trap sits where its id sorts, as a real card with that id would.
        placed = False
        for row in _rows(queryset, masked, rows):
            if not placed and row[0] > trap["id"]:
                placed = True
                trap_line[0] = written[0] + 2
                yield trap_row
            written[0] += 1
            yield row
        if not placed:
            trap_line[0] = written[0] + 2
            yield trap_row

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
        trap=traps.trap_audit(trap, row=trap_line[0]),
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

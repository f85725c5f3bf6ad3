"""The trap record of an export, and tracing a leaked file back to the export it came from.

Every export carries one made-up customer that no one can tell from the real rows:

- its **id** is a free id inside the range of real ids (a gap the sequence has skipped, so no
  card ever gets it), and the row sits where that id sorts, so a random position in an export
  ordered by id; only when the table has no gap at all is a fresh id drawn from the sequence
  (the sequence never hands it out again);
- every other column is drawn from **the rows of the same export**: first name and patronymic
  from one real row and the surname from another of the same gender, the store, city and postal
  district from one row, the phone's operator code, the card number's prefix, length and check
  digit, the email domain, the lifecycle stage and consents from others; dates are moved a
  little, numbers in the address are redrawn. A column the export's rows mostly leave empty is
  left empty too;
- phone, email and card are checked to be unused in the base, and the whole record is new in
  every export.

`export_trace` reads a CSV or XLSX file (or a fragment: rows re-sorted, columns removed) and
finds the exports whose trap it contains, by the trap's values rather than column positions.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
import re
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from crm.models import AuditAction, AuditEvent
from customers import names as name_tables
from customers.access import mask_email, mask_phone, mask_text

from .duplicates.models import MergedAlias
from .models import Customer, CustomerPhone

_rng = random.SystemRandom()
SAMPLE = 60
# Trap values that name an export on their own: random, and checked unused in the base.
_DISTINCTIVE = ("full_phone", "full_email", "card_number")
# Values compared when tracing a fragment whose distinctive columns were removed.
_TRACED = ("id", "surname", "first_name", "patronymic", "birth_date", "city", "created_at")


def _ean13_ok(code: str) -> bool:
    if len(code) != 13 or not code.isdigit():
        return False
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(code[:12]))
    return (10 - total % 10) % 10 == int(code[12])


def _ean13_fix(body: str) -> str:
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body[:12]))
    return body[:12] + str((10 - total % 10) % 10)


def _luhn_ok(code: str) -> bool:
    if len(code) < 8 or not code.isdigit():
        return False
    total = 0
    for i, d in enumerate(reversed(code)):
        n = int(d) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def _luhn_fix(body: str) -> str:
    for last in "0123456789":
        if _luhn_ok(body[:-1] + last):
            return body[:-1] + last
    return body


def _redraw_digits(text: str, keep: int) -> str:
    """`text` with every digit after the first `keep` characters drawn again."""
    return text[:keep] + "".join(
        str(_rng.randrange(10)) if ch.isdigit() else ch for ch in text[keep:]
    )


def _pick(sample: list[dict], name: str, *, where=None) -> Any:
    """A value of column `name` from a random row, empty as often as the rows leave it empty."""
    rows = [r for r in sample if where is None or where(r)] or sample
    return _rng.choice(rows)[name] if rows else None


def _trap_id(ids: list[int]) -> int:
    """A free id inside the export's id range (a gap), else a fresh one from the sequence."""
    table = Customer._meta.db_table
    low, high = (min(ids), max(ids)) if ids else (1, 0)
    gaps: list[tuple[int, int]] = []
    if low < high:
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT gap, next - 1 FROM (
                    SELECT id + 1 AS gap, lead(id) OVER (ORDER BY id) AS next
                    FROM customers_customer WHERE id BETWEEN %s AND %s
                ) g WHERE next > gap LIMIT 1000
                """,
                [low, high],
            )
            gaps = cursor.fetchall()
    # An absorbed card's id still resolves to its survivor (and an undone merge brings it back),
    # so it is not free: a trap there would open a real card.
    used = set(
        MergedAlias.objects.filter(old_id__range=(low, high)).values_list("old_id", flat=True)
    )
    used |= set(
        AuditEvent.objects.filter(action=AuditAction.EXPORT, details__trap__id__isnull=False)
        .order_by("-at")
        .values_list("details__trap__id", flat=True)[:1000]
    )
    if gaps:
        for _attempt in range(20):
            first, last = _rng.choice(gaps)
            candidate = _rng.randint(first, last)
            if candidate not in used:
                return candidate
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id'))", [table])
        return cursor.fetchone()[0]


def _created_at(trap_id: int) -> dt.datetime:
    """A creation time between the real cards just before and after the id."""
    before = (
        Customer.objects.filter(pk__lt=trap_id).order_by("-pk").values_list("created_at").first()
    )
    after = Customer.objects.filter(pk__gt=trap_id).order_by("pk").values_list("created_at").first()
    now = timezone.now()
    start = before[0] if before else now - dt.timedelta(days=365)
    end = after[0] if after else now
    if end <= start:
        return start
    return start + (end - start) * _rng.random()


def _unused_phone(template: str) -> str:
    if not template:
        return ""
    keep = 5 if template.startswith("+7") else max(len(template) - 7, 1)
    for _attempt in range(50):
        phone = _redraw_digits(template, keep)
        if not CustomerPhone.objects.filter(number=phone).exists() and not _trap_used(
            "full_phone", phone
        ):
            return phone
    return ""


def _unused_card(template: str | None) -> str:
    if not template:
        return ""
    keep = max(len(template) // 4, 1)
    for _attempt in range(50):
        card = _redraw_digits(template, keep)
        if _ean13_ok(template):
            card = _ean13_fix(card)
        elif _luhn_ok(template):
            card = _luhn_fix(card)
        if not Customer.objects.filter(card_number=card).exists() and not _trap_used(
            "card_number", card
        ):
            return card
    return ""


def _email_like(template: str, first: str, surname: str, birth: dt.date | None) -> str:
    if not template or "@" not in template:
        return ""
    domain = template.rsplit("@", 1)[1]
    first_l = name_tables.translit(first) or "user"
    last_l = name_tables.translit(surname) or "mail"
    for _attempt in range(50):
        style = _rng.randrange(4)
        if style == 0:
            local = f"{first_l}.{last_l}"
        elif style == 1:
            year = birth.year % 100 if birth else _rng.randrange(100)
            local = f"{last_l}{year:02d}"
        elif style == 2:
            local = f"{first_l[0]}{last_l}{_rng.randrange(1, 999)}"
        else:
            local = f"{first_l}_{last_l[:4]}{_rng.randrange(10, 99)}"
        email = f"{local}@{domain}"
        if not Customer.objects.filter(email__iexact=email).exists() and not _trap_used(
            "full_email", email
        ):
            return email
    return ""


def _trap_used(key: str, value: str) -> bool:
    """Whether an earlier export's trap already carried `value`: each trap names one export."""
    return AuditEvent.objects.filter(
        action=AuditAction.EXPORT, **{f"details__trap__{key}": value}
    ).exists()


def _names(sample: list[dict]) -> dict[str, str]:
    """Gender, first name, patronymic and surname that agree with each other."""
    gender = _pick(sample, "gender") or ""
    same = [r for r in sample if r["gender"] == gender and r["first_name"]] if gender else []
    if len(same) >= 2:
        first_row, surname_row = _rng.sample(same, 2)
        return {
            "gender": gender,
            "first_name": first_row["first_name"],
            "patronymic": first_row["patronymic"],
            "surname": surname_row["surname"],
        }
    # Too few rows of that gender to mix: draw from the chain's name tables instead (the gender
    # column stays empty if the export's rows mostly leave it empty).
    female = gender == "f" if gender else _rng.random() < 0.6
    father = _rng.choice(list(name_tables.MALE_NAMES))
    surname = _rng.choice(name_tables.SURNAMES)
    if female:
        first = _rng.choice(name_tables.FEMALE_NAMES)
        patronymic = name_tables.MALE_NAMES[father][1]
        surname = name_tables.female_surname(surname)
    else:
        first = _rng.choice(list(name_tables.MALE_NAMES))
        patronymic = name_tables.MALE_NAMES[father][0]
    return {"gender": gender, "first_name": first, "patronymic": patronymic, "surname": surname}


def trap_make(*, sample: list[dict], ids: list[int]) -> dict[str, Any]:
    """A made-up customer shaped like the `sample` rows of the export, with a free id.

    `sample` holds random rows of the export as `values()` dicts of the export's columns,
    unmasked; the result maps the same column names to the trap's values.
    """
    trap: dict[str, Any] = {"id": _trap_id(ids)}
    trap.update(_names(sample))
    birth = _pick(sample, "birth_date")
    if birth:
        birth = birth + dt.timedelta(days=_rng.randint(-200, 200))
    trap["birth_date"] = birth
    trap["phone"] = _unused_phone(_pick(sample, "phone") or "+79160000000")
    trap["email"] = _email_like(
        _pick(sample, "email") or "", trap["first_name"], trap["surname"], birth
    )
    trap["card_number"] = _unused_card(_pick(sample, "card_number"))
    place = _rng.choice(sample) if sample else {}
    trap["city"] = place.get("city", "")
    trap["home_store__name"] = place.get("home_store__name", "")
    postal = place.get("postal_code") or ""
    trap["postal_code"] = _redraw_digits(postal, 3) if postal else ""
    address = _pick(sample, "address") or ""
    trap["address"] = re.sub(
        r"\d+", lambda m: str(_rng.randint(1, max(9, int(m.group()) * 2))), address
    )
    status = _rng.choice(sample) if sample else {}
    for name in ("lifecycle_stage", "consent_email", "consent_sms", "consent_messenger"):
        trap[name] = status.get(name, False if name.startswith("consent_") else "customer")
    trap["consent_phone"] = status.get("consent_phone", False)
    trap["created_at"] = _created_at(trap["id"])
    return trap


def trap_masked(trap: dict[str, Any]) -> dict[str, Any]:
    """The trap as a masked export shows it (like every other row of that export)."""
    return trap | {
        "phone": mask_phone(trap["phone"]),
        "email": mask_email(trap["email"]),
        "postal_code": mask_text(trap["postal_code"]),
        "address": mask_text(trap["address"]),
    }


def trap_audit(trap: dict[str, Any], *, row: int) -> dict[str, Any]:
    """What the audit event keeps of the trap, JSON-ready: enough to recognise a fragment."""
    return {
        "id": trap["id"],
        "surname": trap["surname"],
        "first_name": trap["first_name"],
        "patronymic": trap["patronymic"],
        "gender": trap["gender"],
        "birth_date": trap["birth_date"].isoformat() if trap["birth_date"] else "",
        "full_phone": trap["phone"],
        "full_email": trap["email"],
        "card_number": trap["card_number"],
        "city": trap["city"],
        "store": trap["home_store__name"],
        "created_at": cell_text(trap["created_at"]),
        "row": row,
    }


def cell_text(value: Any) -> str:
    """How an export writes a value: dates in ISO form, local time without seconds' fraction."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).replace(tzinfo=None, microsecond=0).isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


# --- Tracing a leaked file -----------------------------------------------------------------------


@dataclass
class TraceMatch:
    event: AuditEvent
    line: int  # the file's line (1-based, header included) that holds the trap
    matched: list[str]  # the trap's fields found in that line


def _norm(value: Any) -> str:
    text = cell_text(value).strip()
    # Undo the export's formula guard and a spreadsheet's number formatting of ids.
    text = text.lstrip("'")
    if re.fullmatch(r"\d+\.0", text):
        text = text[:-2]
    # A Russian export writes dates as дд.мм.гггг; the trap keeps them in ISO form.
    if found := re.fullmatch(r"(\d{2})\.(\d{2})\.(\d{4})(.*)", text):
        day, month, year, rest = found.groups()
        text = f"{year}-{month}-{day}{rest}"
    return text.casefold()


def file_rows(data: bytes, filename: str = "") -> list[list[str]]:
    """The cells of a CSV (any common delimiter, UTF-8 or Windows-1251) or XLSX file."""
    if data[:2] == b"PK" or filename.lower().endswith(".xlsx"):
        from openpyxl import load_workbook

        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        rows = []
        for sheet in book.worksheets:
            rows.extend([_norm(v) for v in row] for row in sheet.iter_rows(values_only=True))
        book.close()
        return rows
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1251", errors="replace")
    sample = text[:4096]
    delimiter = max(";,\t|", key=sample.count) if sample else ";"
    return [[_norm(v) for v in row] for row in csv.reader(io.StringIO(text), delimiter=delimiter)]


def _trap_values(trap: dict[str, Any]) -> dict[str, str]:
    values = {name: _norm(trap.get(name, "")) for name in (*_DISTINCTIVE, *_TRACED)}
    return {name: value for name, value in values.items() if value}


def export_trace(*, data: bytes, filename: str = "") -> list[TraceMatch]:
    """The exports whose trap record is in this file, best match first.

    A trap is recognised by one of its random values (phone, email, card number) or, when those
    columns were removed, by its id together with at least two of its names and dates.
    """
    rows = file_rows(data, filename)
    cells: set[str] = {cell for row in rows for cell in row if cell}
    ids = [int(c) for c in cells if c.isdigit() and len(c) < 19]
    condition = Q(details__trap__id__in=ids) if ids else Q(pk__in=[])
    for name in _DISTINCTIVE:
        condition |= Q(**{f"details__trap__{name}__in": list(cells)})
    candidates = AuditEvent.objects.filter(action=AuditAction.EXPORT).filter(condition)
    matches: list[TraceMatch] = []
    for event in candidates.select_related("actor")[:200]:
        trap = _trap_values(event.details.get("trap") or {})
        best: TraceMatch | None = None
        for number, row in enumerate(rows, start=1):
            present = set(row)
            matched = [name for name, value in trap.items() if value in present]
            distinctive = any(name in _DISTINCTIVE for name in matched)
            if not (distinctive or ("id" in matched and len(matched) >= 3)):
                continue
            if best is None or len(matched) > len(best.matched):
                best = TraceMatch(event=event, line=number, matched=matched)
        if best is not None:
            matches.append(best)
    matches.sort(key=lambda m: (-len(m.matched), -m.event.pk))
    return matches

"""Cell values as offices type them: dates `дд.мм.гггг`, ISO or Excel serials, decimal commas,
ФИО in one cell, gender and yes/no in Russian or English. Each parser returns the clean value or
raises ValueError with a message for the report."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.translation import gettext as _

EXCEL_EPOCH = dt.date(1899, 12, 30)
_DATE_FORMATS = ("%d.%m.%Y", "%d.%m.%y", "%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y")
_DATETIME_FORMATS = (
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
)

# The office's own spelling, parsed without strptime: strptime looks the locale up on every
# call, which was a fifth of a customer row's time. Same results as the formats above.
_DMY = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})")
_DMY_TIME = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4}) (\d{1,2}):(\d{1,2})(?::(\d{1,2}))?")


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.strftime("%d.%m.%Y %H:%M:%S")
    if isinstance(value, dt.date):
        return value.strftime("%d.%m.%Y")
    return str(value).strip()


def parse_date(value: Any) -> dt.date:
    """A date from a date cell, an Excel serial number, `дд.мм.гггг` or ISO text."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if 1 <= value < 2958466:
            return EXCEL_EPOCH + dt.timedelta(days=int(value))
        raise ValueError(_("%(value)s is not a date.") % {"value": value})
    raw = str(value).strip()
    if raw.isdigit() and 4 < len(raw) < 6:
        return EXCEL_EPOCH + dt.timedelta(days=int(raw))
    head = raw.split(" ")[0]
    found = _DMY.fullmatch(head)
    if found:
        with contextlib.suppress(ValueError):  # 31.02.2020: the formats below decide
            return dt.date(int(found[3]), int(found[2]), int(found[1]))
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(raw.split(" ")[0], fmt).date()  # noqa: DTZ007 - a date
        except ValueError:
            continue
    raise ValueError(_("%(value)s is not a date (use дд.мм.гггг).") % {"value": raw[:40]})


def parse_birth_date(value: Any) -> dt.date:
    parsed = parse_date(value)
    if not dt.date(1900, 1, 1) <= parsed <= dt.date.today():  # noqa: DTZ011 - a calendar date
        raise ValueError(_("%(value)s is not a plausible birth date.") % {"value": text(value)})
    return parsed


def parse_datetime(value: Any) -> dt.datetime:
    """A naive date and time (the caller applies the store's time zone)."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    if isinstance(value, int | float) and not isinstance(value, bool):
        return dt.datetime.combine(EXCEL_EPOCH, dt.time()) + dt.timedelta(days=float(value))
    raw = str(value).strip()
    found = _DMY_TIME.fullmatch(raw)
    if found:
        day, month, year, hour, minute, second = (int(g or 0) for g in found.groups())
        with contextlib.suppress(ValueError):  # 25:00: the formats below decide
            return dt.datetime(year, month, day, hour, minute, second)  # noqa: DTZ001
    for fmt in _DATETIME_FORMATS:
        try:
            return dt.datetime.strptime(raw, fmt)  # noqa: DTZ007 - the store's zone comes later
        except ValueError:
            continue
    return dt.datetime.combine(parse_date(raw), dt.time())


def parse_decimal(value: Any) -> Decimal:
    """`1 234,50`, `1234.5`, `-3` -> Decimal; the space and NBSP group separators are dropped."""
    if isinstance(value, bool):
        raise ValueError(_("%(value)s is not a number.") % {"value": value})
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    return _decimal_text(str(value))


_NUMBER_SPACES = re.compile(r"[\s\u00a0\u202f]")


# A file repeats a few spellings (quantity `1`, a shop's few prices, `0` discount) across a
# million lines: each spelling is parsed once. Decimal is immutable, so sharing is safe, and a
# bad spelling raises every time (lru_cache keeps results only).
@functools.lru_cache(maxsize=4096)
def _decimal_text(value: str) -> Decimal:
    raw = _NUMBER_SPACES.sub("", value).replace(",", ".")
    try:
        number = Decimal(raw)
    except InvalidOperation:
        raise ValueError(_("%(value)s is not a number.") % {"value": str(value)[:40]}) from None
    if not number.is_finite() or abs(number) >= Decimal("1e12"):
        raise ValueError(_("%(value)s is not a number.") % {"value": str(value)[:40]})
    return number


_YES = {"да", "yes", "y", "true", "1", "д", "+", "согласен", "согласна", "x", "v"}
_NO = {"нет", "no", "n", "false", "0", "н", "-", "не согласен", "не согласна"}


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raw = text(value).lower()
    if raw in _YES:
        return True
    if raw in _NO:
        return False
    raise ValueError(_("%(value)s is neither yes nor no.") % {"value": raw[:40]})


_FEMALE = {"ж", "жен", "женский", "f", "female", "w", "woman"}
_MALE = {"м", "муж", "мужской", "m", "male", "man"}


def parse_gender(value: Any) -> str:
    raw = text(value).lower().rstrip(".")
    if raw in _FEMALE:
        return "f"
    if raw in _MALE:
        return "m"
    raise ValueError(_("%(value)s is not a gender (М/Ж).") % {"value": raw[:40]})


def split_full_name(value: Any) -> tuple[str, str, str]:
    """ФИО in one cell, in the Russian order: surname, first name, patronymic."""
    parts = text(value).split()
    if not parts:
        return "", "", ""
    if len(parts) == 1:
        return parts[0], "", ""
    if len(parts) == 2:
        return parts[0], parts[1], ""
    return parts[0], parts[1], " ".join(parts[2:])


def split_emails(value: Any) -> list[str]:
    return [e.strip().lower() for e in re.split(r"[;,\s]+", text(value)) if e.strip()]


def split_phones(value: Any) -> list[str]:
    """Several phones in one cell, separated by `;` or `,`; an XLSX number cell is one phone."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [text(value)]
    return [p.strip() for p in re.split(r"[;,]", text(value)) if p.strip()]


_PHONE_CHARS = re.compile(r"[\s()\-.\u00a0]")
_RU_MOBILE: re.Pattern | None = None


def phone_e164(raw: str) -> str:
    """`normalize_phone`, with a fast path for the common case of a file: a Russian mobile.

    The fast path accepts exactly what phonenumbers' RU mobile pattern accepts (read from its
    metadata), so the result is the same; anything else goes through `normalize_phone`.
    """
    global _RU_MOBILE
    from django.conf import settings

    from customers.phones import normalize_phone

    if settings.CLIENTELE_DEFAULT_REGION == "RU":
        if _RU_MOBILE is None:
            import phonenumbers

            pattern = phonenumbers.PhoneMetadata.metadata_for_region("RU").mobile
            _RU_MOBILE = re.compile(pattern.national_number_pattern)
        digits = _PHONE_CHARS.sub("", raw)
        if digits.startswith("+7"):
            national = digits[2:]
        elif len(digits) == 11 and digits[0] in "78":
            national = digits[1:]
        else:
            national = digits
        if len(national) == 10 and national.isdigit() and _RU_MOBILE.fullmatch(national):
            return "+7" + national
    return normalize_phone(raw)

"""Template helpers of the web app: phones, money, and query strings for sortable links."""

import re
from decimal import Decimal

from django import template
from django.conf import settings
from django.utils.dateparse import parse_date
from django.utils.formats import date_format, number_format

from customers.phones import format_phone

register = template.Library()
_RUSSIAN = re.compile(r"^\+7\d{10}$")

CURRENCY_SIGNS = {"RUB": "₽", "EUR": "€", "USD": "$", "KZT": "₸", "BYN": "Br"}


@register.filter
def phone(value: str) -> str:
    """E.164 in the human form; a masked number is shown as it is."""
    if not value or "*" in value:
        return value or ""
    if _RUSSIAN.match(value):
        # Most of the base; formatting by hand spares a phonenumbers parse per list row.
        return f"+7 {value[2:5]} {value[5:8]}-{value[8:10]}-{value[10:12]}"
    return format_phone(value)


@register.filter
def money(value, currency: str = "") -> str:
    if value is None or value == "":
        return "—"
    sign = CURRENCY_SIGNS.get(currency or settings.CLIENTELE_DEFAULT_CURRENCY, currency)
    amount = number_format(Decimal(value), decimal_pos=2, use_l10n=True, force_grouping=True)
    return f"{amount}\u00a0{sign}"


@register.simple_tag
def sort_link(query_string: str, current: str, descending: bool, column: str) -> str:
    """Query string that sorts by `column`, flipping the direction when it is already sorted."""
    flip = current == column and not descending
    value = f"-{column}" if flip else column
    prefix = f"{query_string}&" if query_string else ""
    return f"?{prefix}sort={value}"


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if mapping else None


@register.filter
def consent_value(customer, channel: str) -> bool:
    return bool(getattr(customer, f"consent_{channel}", False))


@register.filter
def join_if_list(value) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return value


@register.filter
def metrics_of(customer):
    """The customer's analytics row, or None until analytics has computed it."""
    return getattr(customer, "metrics", None)


@register.filter
def can_close(contact, user) -> bool:
    """Whether `user` may mark this contact's follow-up done (see selectors.can_close_followup)."""
    from customers.selectors.today import can_close_followup

    return can_close_followup(user, contact)


@register.filter
def percent(value, mode: str = "") -> str:
    """A share (0.123) as a percentage in the reader's format: "12,3 %"; "signed" adds a +."""
    if value is None or value == "":
        return "—"
    amount = Decimal(str(value)) * 100
    text = number_format(amount, decimal_pos=1, use_l10n=True)
    if mode == "signed" and amount > 0:
        text = f"+{text}"
    return f"{text}\u00a0%"


@register.filter
def points(value, mode: str = "") -> str:
    """Bonus points (1 point = 1 ₽, to the kopeck) grouped in the reader's format: "1 234,50";
    none yet reads as 0; "signed" marks a ledger movement "+120,00" or "−50,00"."""
    amount = Decimal(str(value)) if value not in (None, "") else Decimal(0)
    text = number_format(abs(amount), decimal_pos=2, use_l10n=True, force_grouping=True)
    minus = "\u2212"
    if mode == "signed" and amount:
        return f"{'+' if amount > 0 else minus}{text}"
    return f"{minus}{text}" if amount < 0 else text


@register.filter
def iso_date(value) -> str:
    """A date kept as ISO text (a JSON figure) in the reader's short format: "05.06.2026"."""
    day = parse_date(value) if isinstance(value, str) else value
    return date_format(day, "SHORT_DATE_FORMAT") if day else "—"


@register.filter
def contact_channel_label(code: str) -> str:
    """The readable name of a contact-log channel code."""
    from customers.models import ContactChannel

    return dict(ContactChannel.choices).get(code, code)


@register.filter
def count(value: int) -> str:
    """A whole number grouped as the reader's language groups it ("1 000", "1,000")."""
    return number_format(value, use_l10n=True, force_grouping=True)

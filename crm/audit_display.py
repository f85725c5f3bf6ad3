"""The audit log's details in the reader's language: labels for the keys, before → after.

Details are stored as JSON with stable English keys and raw values (codes, permission names),
so the log stays evidence; this module turns them into text when the page is read, in the
reader's language: a key is labelled from the list below or from the audited model's field,
a value from the field's choices (or from the labels an app above registers for its own codes,
`register_value_labels`), a permission by its model and action, a stored ISO date or time in the
reader's format and time zone, a model's label by its plural name.

Every key any `audit_record` call writes has a label here: `tests/crm/test_audit_display.py`
reads the calls in the source and fails on a key without one.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

from django.apps import apps
from django.utils import formats, timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from . import roles

KEY_LABELS = {
    # The customer list's filters, as exports record them.
    "query": _("search query"),
    "tag": _("tag"),
    "stage": _("stage"),
    "birthday_days": _("birthday within, days"),
    "consent": _("consents to"),
    "purchased_after": _("last purchase after"),
    "purchased_before": _("last purchase before"),
    "value_class": _("value class"),
    "rfm_segment": _("RFM segment"),
    # Exports.
    "sha256": _("file hash (SHA-256)"),
    "used": _("already exported today"),
    "row": _("row in the file"),
    "full_phone": _("phone"),
    "full_email": _("email"),
    "card_number": _("loyalty card"),
    "city": _("city"),
    "surname": _("surname"),
    "first_name": _("first name"),
    "active": _("active"),
    "after": _("after"),
    "before": _("before"),
    "cap": _("daily cap"),
    "channel": _("channel"),
    "created": _("new products"),
    "created_count": _("products added"),
    "event": _("event"),
    "fields": _("fields"),
    "filters": _("filters"),
    "format": _("format"),
    "granted": _("granted"),
    "group": _("role"),
    "kind": _("kind"),
    "masked": _("contact details masked"),
    "messages": _("messages"),
    "name": _("name"),
    "note": _("note"),
    "permissions": _("permissions"),
    "reason": _("reason"),
    "roles": _("roles"),
    "rows": _("rows"),
    "source": _("source"),
    "staff": _("staff"),
    "status": _("status"),
    "store": _("store"),
    "stores": _("stores"),
    "superuser": _("superuser"),
    "trap": _("trap record"),
    "updated_count": _("products changed"),
    "user": _("user"),
    "via": _("through"),
    # Contact data read (customers/disclosure.py).
    "unmasked": _("contact details shown"),
    "wanted": _("rows asked for"),
    "capped": _("daily cap reached"),
    "ids": _("customers (ids)"),
    "customers": _("customers"),
    "customer": _("customer"),
    # Bulk actions on the list.
    "bulk": _("bulk action"),
    "target": _("applied to"),
    "changed": _("changed"),
    # Imports.
    "counts": _("rows by outcome"),
    "file_hash": _("file hash (SHA-256)"),
    "file_name": _("file"),
    "deleted": _("cards removed"),
    "kept": _("cards kept (changed since)"),
    "left": _("cards left as they are"),
    "restored": _("restored"),
    # Merges.
    "merge": _("merge no."),
    "absorbed": _("merged cards (ids)"),
    "moved": _("moved to the surviving card"),
    "dropped": _("dropped as duplicates"),
    "created_by": _("created by"),
    # Consent to processing, erasure, subject access.
    "method": _("how"),
    "basis": _("basis"),
    "version": _("document version"),
    "erasure_due": _("data to be erased on"),
    "pseudonym": _("pseudonym"),
    "request_id": _("request no."),
    # Loyalty adjustments; campaign test sends.
    "amount": _("points"),
    "entry": _("ledger entry no."),
    "to": _("to"),
}

# Codes of apps above crm, labelled by those apps (AppConfig.ready): key -> {code: label}.
_APP_VALUE_LABELS: dict[str, dict[str, Any]] = {}


def register_value_labels(key: str, choices: Iterable[tuple[str, Any]]) -> None:
    """Label the codes an app writes under `key` (its choices, or its own closed list)."""
    _APP_VALUE_LABELS.setdefault(key, {}).update(dict(choices))


VALUE_LABELS = {
    "admin": _("the admin"),
    "api": _("the API"),
    "catalogue": _("catalogue key"),
    "issued": _("issued"),
    "revoked": _("revoked"),
    "till": _("till key"),
    "web": _("the web app"),
}

ROLE_LABELS = {
    roles.ADMINISTRATOR: _("Administrator"),
    roles.MARKETER: _("Marketer"),
    roles.STORE_MANAGER: _("Store manager"),
    roles.SALES_ASSOCIATE: _("Sales associate"),
}

ACTION_LABELS = {"add": _("add"), "change": _("change"), "delete": _("delete"), "view": _("view")}


@functools.cache
def _permission_models() -> dict[str, Any]:
    """`app_label.codename` -> (model class or None, codename, stored name), read once."""
    from django.contrib.auth.models import Permission

    found = {}
    for perm in Permission.objects.select_related("content_type"):
        key = f"{perm.content_type.app_label}.{perm.codename}"
        found[key] = (perm.content_type.model_class(), perm.codename, perm.name)
    return found


def permission_label(name: str) -> str:
    model, codename, stored = _permission_models().get(name, (None, "", name))
    if model is None:
        return name
    for action, label in ACTION_LABELS.items():
        if codename == f"{action}_{model._meta.model_name}":
            return f"{model._meta.verbose_name}: {label}"
    for code, text in model._meta.permissions:
        if code == codename:
            return str(text)
    return gettext(stored)


def model_of(object_type: str):
    try:
        return apps.get_model(object_type) if object_type else None
    except (LookupError, ValueError):
        return None


def _field(model, key: str):
    if model is None:
        return None
    try:
        return model._meta.get_field(key)
    except Exception:  # FieldDoesNotExist, or a reverse relation without verbose_name
        return None


def key_label(key: str, model=None) -> str:
    if key in KEY_LABELS:
        return str(KEY_LABELS[key])
    if key.endswith("_id") and key[:-3] in KEY_LABELS:
        # A snapshot's foreign key under its column name ("created_by_id").
        return str(KEY_LABELS[key[:-3]])
    field = _field(model, key)
    if field is not None and hasattr(field, "verbose_name"):
        return str(field.verbose_name)
    labelled = model_of(key) if "." in key else None
    if labelled is not None:
        # Merges count what moved per table ("sales.receipt": 5).
        return str(labelled._meta.verbose_name_plural)
    return key.replace("_", " ")


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _when_text(text: str) -> str | None:
    """A stored ISO date or time as the reader writes it (local time), None if it is neither."""
    try:
        if _ISO_DATE.match(text):
            day = parse_date(text)
            return formats.date_format(day, "SHORT_DATE_FORMAT") if day else None
        if _ISO_TIME.match(text):
            moment = parse_datetime(text)
            if moment is None:
                return None
            if timezone.is_aware(moment):
                moment = timezone.localtime(moment)
            return formats.date_format(moment, "SHORT_DATETIME_FORMAT")
    except (ValueError, OverflowError):
        # Looked like a date but is not one (2026-02-31): shown as stored.
        return None
    return None


def value_text(value: Any, key: str = "", model=None) -> str:
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return gettext("yes") if value else gettext("no")
    if isinstance(value, list):
        return ", ".join(value_text(item, key, model) for item in value)
    if isinstance(value, dict):
        # A dict's keys may be the key's own codes (an import's counts by outcome).
        own = _APP_VALUE_LABELS.get(key, {})
        return "; ".join(
            f"{own[k] if k in own else key_label(k, model)}: {value_text(v, k, model)}"
            for k, v in value.items()
        )
    text = str(value)
    if key == "permissions":
        return permission_label(text)
    if key in ("roles", "group"):
        return str(ROLE_LABELS.get(text, text))
    field = _field(model, key)
    choices = dict(field.flatchoices) if field is not None and field.choices else {}
    if text in choices:
        return str(choices[text])
    if text in _APP_VALUE_LABELS.get(key, {}):
        return str(_APP_VALUE_LABELS[key][text])
    if text in VALUE_LABELS:
        return str(VALUE_LABELS[text])
    return _when_text(text) or text


def _per_card(value: Any) -> bool:
    """A merge's "before": each merged card's fields under its id."""
    return (
        isinstance(value, dict)
        and bool(value)
        and all(str(k).isdigit() and isinstance(v, dict) for k, v in value.items())
    )


def _merged_lines(
    cards: dict, survivor: dict, model, *, undone: bool = False
) -> list[tuple[str, str]]:
    """One line per field the merge decided (the cards did not all agree with the survivor):
    each card's value and the survivor's, in the order of the event (a merge: the cards, then
    the survivor; its undo: the survivor, then the cards given back)."""
    lines = []
    for key in survivor:
        values = {card: fields.get(key) for card, fields in cards.items()}
        merged = survivor.get(key)
        if all(value == merged for value in values.values()):
            continue
        each = "; ".join(f"#{card} {value_text(v, key, model)}" for card, v in values.items())
        one = value_text(merged, key, model)
        lines.append((key_label(key, model), f"{one} → {each}" if undone else f"{each} → {one}"))
    return lines


def describe(details: dict, object_type: str = "") -> list[tuple[str, str]]:
    """(label, text) lines for an event's details; before/after become "old → new" per field."""
    if not isinstance(details, dict):
        return [("", str(details))]
    model = model_of(object_type)
    lines: list[tuple[str, str]] = []
    before, after = details.get("before"), details.get("after")
    if _per_card(before) and isinstance(after, dict) and not _per_card(after):
        lines += _merged_lines(before, after, model)
    elif _per_card(after) and isinstance(before, dict) and not _per_card(before):
        lines += _merged_lines(after, before, model, undone=True)
    elif isinstance(before, dict) and isinstance(after, dict):
        for key in [*before, *(k for k in after if k not in before)]:
            old, new = before.get(key), after.get(key)
            if isinstance(old, dict) or isinstance(new, dict):
                # One level deeper: the catalogue's changes per SKU.
                old, new = old or {}, new or {}
                for sub in [*old, *(k for k in new if k not in old)]:
                    lines.append(
                        (
                            f"{key} · {key_label(sub, model)}",
                            f"{value_text(old.get(sub), sub, model)} → "
                            f"{value_text(new.get(sub), sub, model)}",
                        )
                    )
                continue
            lines.append(
                (
                    key_label(key, model),
                    f"{value_text(old, key, model)} → {value_text(new, key, model)}",
                )
            )
    for key, value in details.items():
        if key in ("before", "after") and isinstance(before, dict) and isinstance(after, dict):
            continue
        lines.append((key_label(key, model), value_text(value, key, model)))
    return lines

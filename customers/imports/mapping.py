"""Column targets and the headers that name them, in Russian and English.

A target is a card field, `custom:<key>` for an admin-defined field, or "" for a column to
ignore. Purchase history registers its own targets from `sales` (see `register_kind`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from .models import ImportKind


@dataclass(frozen=True)
class Target:
    key: str
    label: str | Promise
    headers: tuple[str, ...]  # normalised spellings (see `normalise_header`)
    repeatable: bool = False  # phones may come in several columns


def normalise_header(header: str) -> str:
    """`Моб. телефон` -> `моб телефон`, `E-mail` -> `email`: case, ё, punctuation and spaces."""
    value = str(header).lower().replace("ё", "е").replace("-", "").replace("_", " ")
    value = re.sub(r"[^\w ]+", " ", value)
    return re.sub(r"\s+", " ", value).strip()


def _t(key: str, label, *headers: str, repeatable: bool = False) -> Target:
    return Target(key, label, tuple(normalise_header(h) for h in headers), repeatable)


CUSTOMER_TARGETS: tuple[Target, ...] = (
    _t(
        "full_name",
        _("Full name (ФИО in one column)"),
        "фио",
        "ф и о",
        "full name",
        "name",
        "клиент",
        "покупатель",
        "customer",
    ),
    _t("surname", _("Surname"), "фамилия", "surname", "last name", "lastname", "family name"),
    _t("first_name", _("First name"), "имя", "first name", "firstname", "given name"),
    _t("patronymic", _("Patronymic"), "отчество", "patronymic", "middle name", "middlename"),
    _t(
        "phone",
        _("Phone"),
        "телефон",
        "тел",
        "моб телефон",
        "мобильный телефон",
        "мобильный",
        "сотовый",
        "phone",
        "mobile",
        "mobile phone",
        "телефон 2",
        "доп телефон",
        "phone 2",
        repeatable=True,
    ),
    _t("email", _("Email"), "email", "e mail", "эл почта", "электронная почта", "почта", "mail"),
    _t(
        "birth_date",
        _("Birth date"),
        "дата рождения",
        "др",
        "день рождения",
        "birth date",
        "birthday",
        "date of birth",
        "dob",
    ),
    _t("gender", _("Gender"), "пол", "gender", "sex"),
    _t(
        "card_number",
        _("Loyalty card"),
        "карта",
        "номер карты",
        "карта лояльности",
        "дисконтная карта",
        "card",
        "card number",
        "loyalty card",
    ),
    _t("postal_code", _("Postal code"), "индекс", "почтовый индекс", "postal code", "zip"),
    _t("city", _("City"), "город", "city", "населенный пункт"),
    _t("address", _("Address"), "адрес", "address"),
    _t("workplace", _("Workplace"), "место работы", "организация", "workplace", "company"),
    _t("position", _("Position"), "должность", "position", "job title"),
    _t("interests", _("Interests"), "интересы", "interests", "хобби"),
    _t("notes", _("Notes"), "примечание", "комментарий", "заметки", "notes", "comment"),
    _t("home_store", _("Store (code or name)"), "магазин", "store", "точка", "торговая точка"),
    _t(
        "acquisition_channel",
        _("Source (acquisition channel)"),
        "источник",
        "канал",
        "откуда узнал",
        "source",
        "acquisition channel",
    ),
    _t(
        "consent_sms",
        _("Consent to SMS"),
        "согласие на рассылку sms",
        "согласие sms",
        "согласие на sms",
        "sms рассылка",
        "sms consent",
        "consent sms",
    ),
    _t(
        "consent_email",
        _("Consent to email"),
        "согласие на рассылку e mail",
        "согласие на рассылку email",
        "согласие email",
        "согласие на email",
        "email рассылка",
        "email consent",
        "consent email",
    ),
    _t(
        "consent_messenger",
        _("Consent to messengers"),
        "согласие на мессенджеры",
        "согласие мессенджер",
        "messenger consent",
        "consent messenger",
    ),
    _t(
        "consent_phone",
        _("Consent to phone calls"),
        "согласие на звонки",
        "согласие звонки",
        "phone call consent",
        "consent phone",
    ),
)

_KINDS: dict[str, Callable[[], Iterable[Target]]] = {}


def register_kind(kind: str, targets: Callable[[], Iterable[Target]]) -> None:
    """Let a higher app (sales: purchase history) declare the columns of its kind of import."""
    _KINDS[kind] = targets


def _customer_targets() -> list[Target]:
    from customers.models import CustomField

    custom = [
        Target(f"custom:{f.key}", f.name, (normalise_header(f.name), normalise_header(f.key)))
        for f in CustomField.objects.filter(is_active=True)
    ]
    return [*CUSTOMER_TARGETS, *custom]


register_kind(ImportKind.CUSTOMERS, _customer_targets)


def targets_for(kind: str) -> list[Target]:
    return list(_KINDS[kind]())


def guess_mapping(kind: str, headers: list[str]) -> dict[str, str]:
    """{column index: target} from the header texts; each non-repeatable target used once."""
    by_header: dict[str, Target] = {}
    for target in targets_for(kind):
        for header in target.headers:
            by_header.setdefault(header, target)
    used: set[str] = set()
    mapping: dict[str, str] = {}
    for index, header in enumerate(headers):
        target = by_header.get(normalise_header(header))
        if target is None or (target.key in used and not target.repeatable):
            mapping[str(index)] = ""
            continue
        used.add(target.key)
        mapping[str(index)] = target.key
    return mapping


def mapping_from_saved(headers: list[str], columns: dict[str, str]) -> dict[str, str]:
    """Apply a saved {header: target} mapping to this file's columns."""
    saved = {normalise_header(h): t for h, t in columns.items()}
    return {str(i): saved.get(normalise_header(h), "") for i, h in enumerate(headers)}

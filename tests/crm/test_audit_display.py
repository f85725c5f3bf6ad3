"""The audit log reads in the reader's language: every key written has a label, codes become
their labels, dates the reader's format, a merge and its undo one line per decided field."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import translation

from crm.audit_display import KEY_LABELS, describe
from crm.models import AuditAction, AuditEvent
from customers.duplicates.merge import customer_merge, customer_merge_undo
from customers.models import Source
from tests.factories import CustomerFactory, ReceiptFactory

APPS = ("crm", "customers", "sales", "campaigns", "analytics", "loyalty")
# Arguments of `audit_record` that are not details.
NOT_DETAILS = {"actor", "action", "obj", "request", "actor_name"}


def _audited_keys() -> dict[str, str]:
    """Every detail key an `audit_record(...)` call in the apps writes -> one file writing it."""
    keys: dict[str, str] = {}
    root = Path(settings.BASE_DIR)
    for app in APPS:
        for path in (root / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call):
                    continue
                name = getattr(node.func, "id", getattr(node.func, "attr", ""))
                if name != "audit_record":
                    continue
                for keyword in node.keywords:
                    if keyword.arg and keyword.arg not in NOT_DETAILS:
                        keys.setdefault(keyword.arg, str(path.relative_to(root)))
                    # `**{"capped": True}` and the like: the literal dict's keys.
                    if keyword.arg is None:
                        for inner in ast.walk(keyword.value):
                            if isinstance(inner, ast.Dict):
                                for key in inner.keys:
                                    if isinstance(key, ast.Constant):
                                        keys.setdefault(key.value, str(path.relative_to(root)))
    return keys


def test_every_key_the_code_audits_has_a_russian_label():
    keys = _audited_keys()
    # The scan itself must find what we know is written, or it would pass on nothing.
    assert {"unmasked", "merge", "bulk", "method", "capped", "via"} <= set(keys)
    unlabelled = {
        k: where for k, where in keys.items() if k not in {"before", "after"} | set(KEY_LABELS)
    }
    assert unlabelled == {}
    untranslated = []
    for key in keys.keys() - {"before", "after"}:
        with translation.override("en"):
            english = str(KEY_LABELS[key])
        with translation.override("ru"):
            russian = str(KEY_LABELS[key])
        if russian == english or re.search(r"[A-Za-z]{3,}", russian.replace("SHA-256", "")):
            untranslated.append(f"{key}: {russian}")
    assert untranslated == []


def test_codes_of_the_apps_read_as_their_labels():
    details = {
        "method": "paper",
        "basis": "withdrawal",
        "bulk": "add_tag",
        "channel": "sms",
        "counts": {"created": 2, "error": 1},
        "moved": {"3": {"sales.receipt": 5}},
        "unmasked": True,
        "via": "web",
    }
    with translation.override("ru"):
        text = "\n".join(f"{label}: {value}" for label, value in describe(details))
    for code in ("paper", "withdrawal", "add_tag", "created", "error", "sales.receipt", "unmasked"):
        assert not re.search(rf"(?<![\w.]){re.escape(code)}(?![\w.])", text), (code, text)
    assert "Добавить тег" in text
    assert "контакты показаны: да" in text
    assert "чеки: 5" in text


def test_stored_dates_and_times_read_in_the_readers_format_and_zone(settings):
    settings.TIME_ZONE = "Europe/Moscow"
    with translation.override("ru"):
        lines = dict(describe({"erasure_due": "2027-01-18"}))
        stamp = describe({"before": {"at": None}, "after": {"at": "2026-03-02T07:33:13+00:00"}})
        broken = dict(describe({"note": "2026-02-31"}))
    assert lines["данные будут удалены"] == "18.01.2027"
    assert stamp[0][1] == "— → 02.03.2026 10:33"
    # Not a date after all: shown as stored, never an error.
    assert list(broken.values()) == ["2026-02-31"]


@pytest.mark.django_db
def test_a_merge_and_its_undo_read_one_line_per_decided_field(admin_user, store_a):
    pos = CustomerFactory(
        surname="Иванова",
        first_name="Мария",
        city="",
        source=Source.POS,
        home_store=store_a,
        birth_date="1981-01-18",
    )
    web = CustomerFactory(
        surname="Иванова",
        first_name="Маша",
        city="Москва",
        source=Source.WEB,
        home_store=store_a,
        birth_date=None,
    )
    ReceiptFactory(customer=pos, store=store_a)
    merge = customer_merge(actor=admin_user, survivor_id=web.pk, absorbed_ids=[pos.pk])
    customer_merge_undo(actor=admin_user, merge=merge)
    merged, undone = (
        AuditEvent.objects.get(action=action)
        for action in (AuditAction.CUSTOMER_MERGE, AuditAction.MERGE_UNDO)
    )
    with translation.override("ru"):
        merged_lines = dict(describe(merged.details, merged.object_type))
        undone_lines = dict(describe(undone.details, undone.object_type))
    # The first name differed: each card's value, then the survivor's (POS outranks the web).
    assert merged_lines["имя"] == f"#{pos.pk} Мария; #{web.pk} Маша → Мария"
    assert merged_lines["дата рождения"] == f"#{pos.pk} 18.01.1981; #{web.pk} — → 18.01.1981"
    # The surname was the same on both cards: nothing to read.
    assert "фамилия" not in merged_lines
    assert "чеки: 1" in merged_lines["перенесено в основную карточку"]
    assert merged_lines["объединение №"] == str(merge.pk)
    # The undo: the survivor's value, then what each card got back.
    assert undone_lines["имя"] == f"Мария → #{pos.pk} Мария; #{web.pk} Маша"
    text = "\n".join(f"{k}: {v}" for k, v in [*merged_lines.items(), *undone_lines.items()])
    assert not re.search(r"\d{4}-\d{2}-\d{2}", text)
    assert not re.search(r"(?<![\w.])(merge|moved|absorbed|restored|sales\.receipt)(?![\w.])", text)

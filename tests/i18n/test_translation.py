"""Every screen in plain Russian (issue 15): each page and htmx fragment, for each role, on
demo data, is free of the app's own English strings and of raw codes; every model choice has a
Russian label; the catalogue has no message left untranslated."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse
from django.utils import translation
from django.utils.functional import Promise

from campaigns.models import Campaign, Segment
from customers.duplicates.merge import customer_merge
from customers.list_services import customers_bulk_change
from customers.models import Contact, Customer, Tag

pytestmark = pytest.mark.django_db

PO = Path(settings.BASE_DIR) / "locale" / "ru" / "LC_MESSAGES" / "django.po"
OUR_APPS = ("customers", "sales", "campaigns", "analytics", "crm")
# Names and abbreviations that read the same in Russian.
# "English" is named in its own language, as language pickers do.
SAME_IN_RUSSIAN = {
    "SMS",
    "VIP",
    "API",
    "RFM",
    "CLV",
    "LCV",
    "POS",
    "CSV",
    "XLSX",
    "HTML",
    "English",
}


def _catalogue(po: Path = PO) -> list[tuple[str, str, bool]]:
    """(msgid, msgstr, fuzzy) of every singular entry of a catalogue (the Russian one)."""
    text = po.read_text(encoding="utf-8")
    entries = []
    for block in text.split("\n\n"):
        if 'msgid "' not in block or "msgid_plural" in block:
            continue
        msgid = _joined(block, "msgid")
        if not msgid:
            continue
        entries.append((msgid, _joined(block, "msgstr"), "#, fuzzy" in block))
    return entries


def _joined(block: str, key: str) -> str:
    match = re.search(rf'^{key} "(.*)"\n?((?:".*"\n?)*)', block, re.M)
    if not match:
        return ""
    parts = [match.group(1), *re.findall(r'^"(.*)"$', match.group(2), re.M)]
    return "".join(parts).replace('\\"', '"').replace("\\n", "\n")


class _Visible(HTMLParser):
    """Text a person sees: text outside scripts and styles, and the readable attributes."""

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        # Code samples (placeholders) and the user's own login name are not prose.
        if tag in ("script", "style", "code") or ("data-testid", "username") in attrs:
            self.skip += 1
        for name, value in attrs:
            if name in ("title", "placeholder", "aria-label", "alt") and value:
                self.parts.append(value)

    def handle_endtag(self, tag):
        if tag in ("script", "style", "code", "span") and self.skip:
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip and data.strip():
            self.parts.append(data.strip())


def visible_text(html: str) -> str:
    parser = _Visible()
    parser.feed(html)
    return "\n".join(parser.parts)


def _english_strings() -> list[str]:
    """The app's own English strings that must not show in Russian: translated ones, of at
    least two words or one long word, without placeholders."""
    strings = []
    for msgid, msgstr, _fuzzy in _catalogue():
        if not msgstr or msgstr == msgid or "%" in msgid or "{" in msgid:
            continue
        words = re.findall(r"[A-Za-z]+", msgid)
        if len(words) >= 2 or (len(words) == 1 and len(words[0]) >= 6):
            strings.append(msgid)
    return strings


def _choice_codes() -> set[str]:
    codes = set()
    for app in OUR_APPS:
        for model in apps.get_app_config(app).get_models():
            for field in model._meta.get_fields():
                for value, _label in getattr(field, "choices", None) or []:
                    # Short codes ("new", "in") are also ordinary words in product names.
                    if isinstance(value, str) and len(value) >= 4 and value.upper() != value:
                        codes.add(value)
    return codes


def find_english(text: str, strings: list[str], codes: set[str]) -> list[str]:
    found = []
    for msgid in strings:
        if re.search(rf"(?<![A-Za-z]){re.escape(msgid)}(?![A-Za-z])", text):
            found.append(f"English: {msgid!r}")
    for code in codes:
        if re.search(rf"(?<![\w@.\-/]){re.escape(code)}(?![\w@.\-/])", text):
            found.append(f"raw code: {code!r}")
    return found


def test_catalogue_has_no_message_left_untranslated():
    missing = [m for m, s, fuzzy in _catalogue() if not s or fuzzy]
    assert missing == []


def test_every_model_choice_has_a_russian_label():
    untranslated = []
    with translation.override("ru"):
        for app in OUR_APPS:
            for model in apps.get_app_config(app).get_models():
                for field in model._meta.get_fields():
                    for value, label in getattr(field, "choices", None) or []:
                        # Only labels meant to be read (lazy gettext); time zones and the
                        # like are data.
                        if not value or not isinstance(label, Promise):
                            continue
                        shown = str(label)
                        with translation.override("en"):
                            english = str(label)
                        if shown == english and shown not in SAME_IN_RUSSIAN:
                            untranslated.append(f"{model.__name__}.{field.name}={value}: {shown}")
    assert untranslated == []


@pytest.fixture
def demo(db):
    call_command(
        "seed_demo",
        "--customers",
        "150",
        "--stores",
        "2",
        "--years",
        "2",
        "--seed",
        "3",
        "--quiet",
    )
    from django.contrib.auth import get_user_model

    users = {u.username: u for u in get_user_model().objects.all()}
    customer = Customer.objects.filter(home_store__staff__user=users["manager"]).first()
    segment = Segment.objects.create(
        name="Сегмент",
        rules={
            "op": "and",
            "rules": [
                {"field": "rfm_segment", "op": "in", "value": ["about_to_sleep"]},
                {"field": "consent", "op": "granted", "value": "sms"},
            ],
        },
        owner=users["marketer"],
    )
    campaign = Campaign.objects.create(
        name="Рассылка",
        subject="Тема",
        body_html="<p>Текст</p>",
        segment=segment,
        created_by=users["marketer"],
    )
    # A merge and a bulk change, so that the audit log and the merges page have them to show.
    first, second = Customer.objects.exclude(pk=customer.pk).order_by("pk")[:2]
    customer_merge(actor=users["admin"], survivor_id=first.pk, absorbed_ids=[second.pk])
    tag = Tag.objects.first() or Tag.objects.create(name="Постоянный")
    customers_bulk_change(
        actor=users["admin"],
        customers=Customer.objects.filter(pk=customer.pk),
        action="add_tag",
        value=tag.pk,
    )
    return {"users": users, "customer": customer, "segment": segment, "campaign": campaign}


def _pages(demo) -> list[tuple[str, dict]]:
    c, s, k = demo["customer"], demo["segment"], demo["campaign"]
    hx = {"HTTP_HX_REQUEST": "true"}
    contact = Contact.objects.filter(customer=c).first()
    pages = [
        ("/", {}),
        ("/?page=2", {}),
        ("/", {**hx, "HTTP_HX_TARGET": "followups"}),
        (reverse("customers:list"), {}),
        (reverse("customers:list") + "?q=Иван", {**hx, "HTTP_HX_TARGET": "results"}),
        (reverse("customers:list") + "?stage=lead&consent=sms", {}),
        (reverse("customers:create"), {}),
        (reverse("customers:leads"), {}),
        (c.get_absolute_url(), {}),
        (c.get_absolute_url() + "?page=2", {**hx, "HTTP_HX_TARGET": "purchases"}),
        (reverse("customers:edit", args=[c.pk]), hx),
        (reverse("campaigns:list"), {}),
        (reverse("campaigns:create"), {}),
        (reverse("campaigns:detail", args=[k.pk]), {}),
        (reverse("campaigns:start", args=[k.pk]), {}),
        (reverse("campaigns:progress", args=[k.pk]), hx),
        (reverse("campaigns:results", args=[k.pk]), {}),
        (reverse("campaigns:segments"), {}),
        (reverse("campaigns:segment_edit", args=[s.pk]), {}),
        (reverse("campaigns:segment_members", args=[s.pk]), hx),
        (reverse("campaigns:pick_customer", args=[k.pk]) + "?q=Ива", hx),
        ("/analytics/", {}),
        (reverse("analytics:loyalty"), hx),
        (reverse("loyalty:card", args=[c.pk]), hx),
        (reverse("customers:imports"), {}),
        (reverse("customers:duplicates_list"), {}),
        (reverse("customers:merges"), {}),
        (reverse("audit_log"), {}),
        (reverse("password_change"), {}),
        (reverse("profile"), {}),
        ("/no-such-page/", {}),
    ]
    if contact is not None:
        pages.append((c.get_absolute_url() + "#contacts", {}))
    return pages


@pytest.mark.parametrize("username", ["admin", "marketer", "manager", "associate"])
def test_every_page_and_fragment_is_in_russian(client, demo, username):
    strings = _english_strings()
    # A login name such as "admin" is data, even where it equals a code.
    codes = _choice_codes() - set(demo["users"])
    client.force_login(demo["users"][username])
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ru"
    problems = []
    opened = 0
    for url, headers in _pages(demo):
        response = client.get(url, **headers)
        if response.status_code in (301, 302, 403) or (
            response.status_code == 404 and url != "/no-such-page/"
        ):
            continue
        assert response.status_code in (200, 404), (url, response.status_code)
        opened += 1
        for problem in find_english(visible_text(response.content.decode()), strings, codes):
            problems.append(f"{url}: {problem}")
    assert opened >= 6
    assert problems == [], "\n".join(problems)


def test_every_message_in_the_source_is_in_the_catalogue(tmp_path):
    """`makemessages` over a copy of the source finds no message the catalogue lacks: a string
    marked for translation but never added to django.po would show in English."""
    root = Path(settings.BASE_DIR)
    for name in (*OUR_APPS, "loyalty", "templates", "locale"):
        shutil.copytree(root / name, tmp_path / name, ignore=shutil.ignore_patterns("*.mo"))
    subprocess.run(
        [sys.executable, "-m", "django", "makemessages", "-l", "ru", "--no-location"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(root), "DJANGO_SETTINGS_MODULE": "crm.settings"},
        check=True,
        capture_output=True,
    )
    ours = {m for m, s, _fuzzy in _catalogue() if s}
    fresh = {
        m for m, _s, _f in _catalogue(tmp_path / "locale" / "ru" / "LC_MESSAGES" / "django.po")
    }
    # makemessages writes a template's literal "%" as "%%" (it runs templates through Python's
    # format rules); the template tag looks the message up as written.
    missing = sorted(m for m in fresh if m not in ours and m.replace("%%", "%") not in ours)
    assert missing == []

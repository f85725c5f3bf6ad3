"""Sending hostile requests and judging the answers.

`Probe.send` makes one request through Django's test client and checks the three properties
every answer must have: not a 5xx, no SQL or driver text in the body, and nothing logged at
ERROR (an unhandled exception, or the API's last-resort handler firing). For writes, a
checksum of the app's tables taken before and after must match whenever the answer is an
error: nothing half-written.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import quote

from django.apps import apps
from django.db import connection

# Words only a database, a driver or a traceback would put in a response.
LEAK = re.compile(
    r"psycopg|ProgrammingError|DataError|IntegrityError|OperationalError|InternalError"
    r"|Traceback \(most recent|syntax error at or near|numeric field overflow"
    r"|violates (?:check|foreign key|unique|not-null) constraint|invalid input syntax"
    r"|out of range for type|DETAIL:\s|HINT:\s|NUL \(0x00\)|unsupported Unicode escape"
    r"|invalid byte sequence|current transaction is aborted|UnicodeEncodeError"
    r"|value too long for type|date/time field value out of range"
)

# Tables an error answer may still write to, by design: the audit log records refusals and
# reads, sessions and django-axes record logins, a POS key notes when it was last used.
VOLATILE = {
    "crm_auditevent",
    # The one rule's per-user counters of unmasked cards (customers/disclosure.py): a refused form
    # still shows the card it was posted from, and that read is counted.
    "crm_disclosureday",
    "crm_disclosedcard",
    "django_session",
    "axes_accessattempt",
    "axes_accesslog",
    "axes_accessfailurelog",
    "sales_posapikey",
    "auth_user",  # last_login
}


def app_tables() -> list[str]:
    names = []
    for model in apps.get_models(include_auto_created=True):
        table = model._meta.db_table
        if model._meta.managed and not model._meta.proxy and table not in VOLATILE:
            names.append(table)
    return sorted(set(names) & set(connection.introspection.table_names()))


class Checksum:
    """One md5 over every row of every app table (a few milliseconds on the fuzz data set)."""

    def __init__(self):
        tables = app_tables()
        parts = ", ".join(
            f"(SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
            f'FROM "{name}" t)'
            for name in tables
        )
        self.tables = tables
        self.sql = f"SELECT md5(concat_ws(',', {parts}))"  # noqa: S608 - table names only

    def __call__(self) -> str:
        with connection.cursor() as cursor:
            cursor.execute(self.sql)
            return cursor.fetchone()[0]


class ErrorLog(logging.Handler):
    """Collects every record at ERROR or above, from any logger."""

    def __init__(self):
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def encode_pairs(data: dict) -> str:
    """urlencode that survives lone surrogates, sending them as the bytes a client would."""
    pairs = []
    for key, value in data.items():
        for item in value if isinstance(value, list | tuple) else [value]:
            pairs.append(
                quote(str(key).encode("utf-8", "surrogatepass"), safe="")
                + "="
                + quote(str(item).encode("utf-8", "surrogatepass"), safe="")
            )
    return "&".join(pairs)


@dataclass
class Probe:
    """Sends requests as one client and records every broken property."""

    client: object
    checksum: Checksum = field(default_factory=Checksum)
    failures: list[str] = field(default_factory=list)
    sent: int = 0

    def send(self, method: str, path: str, *, query=None, form=None, json_body=None, label=""):
        handler = ErrorLog()
        root = logging.getLogger()
        root.addHandler(handler)
        write = method != "GET"
        before = self.checksum() if write else None
        extra = {}
        if query:
            extra["QUERY_STRING"] = encode_pairs(query)
        try:
            if method == "GET":
                response = self.client.get(path, **extra)
            elif json_body is not None:
                response = self.client.generic(
                    method, path, data=json_body, content_type="application/json", **extra
                )
            else:
                response = self.client.generic(
                    method,
                    path,
                    data=encode_pairs(form or {}),
                    content_type="application/x-www-form-urlencoded",
                    **extra,
                )
        finally:
            root.removeHandler(handler)
        self.sent += 1
        where = f"{label} {method} {path} {_short(query)} {_short(form or json_body)}"
        if response.status_code >= 500:
            self.failures.append(f"{response.status_code}: {where}")
        body = b"" if response.streaming else response.content
        text = body.decode("utf-8", "replace")
        found = LEAK.search(text)
        if found:
            self.failures.append(f"leak {found.group(0)!r}: {where}")
        for record in handler.records:
            if record.name.startswith("django.security.") and response.status_code == 400:
                # Django's own refusal of a suspicious request (an over-long redirect, a bad
                # Host), answered with a 400 and logged by design.
                continue
            self.failures.append(f"logged {record.name}: {record.getMessage()[:200]}: {where}")
        if write and response.status_code >= 400 and self.checksum() != before:
            self.failures.append(f"changed data on {response.status_code}: {where}")
        return response


def _short(value) -> str:
    text = "" if value is None else repr(value)
    return text if len(text) < 300 else text[:300] + "…"


# --- Reading forms out of pages ---------------------------------------------------------------


@dataclass
class FoundForm:
    method: str
    action: str
    fields: dict[str, list[str]]  # name -> values as the page would post them unchanged
    page: str


class FormParser(HTMLParser):
    """Every <form> of a page with the names and current values of its controls."""

    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.page = page
        self.forms: list[FoundForm] = []
        self.links: list[str] = []
        self._form: FoundForm | None = None
        self._select: str | None = None
        self._select_first: str | None = None
        self._select_chosen = False
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag == "form":
            method = (a.get("method") or "get").upper()
            action = a.get("action") or a.get("hx-post") or a.get("hx-get") or self.page
            self._form = FoundForm(method, action, {}, self.page)
            self.forms.append(self._form)
            return
        form = self._form
        if form is None or not a.get("name"):
            return
        name = a["name"]
        if tag == "button" and a.get("value") is not None:
            form.fields.setdefault(name, []).append(a["value"])
            return
        if tag == "input":
            kind = (a.get("type") or "text").lower()
            if kind in {"submit", "button", "image", "reset", "file"}:
                return
            if kind in {"checkbox", "radio"}:
                form.fields.setdefault(name, [])
                if "checked" in a:
                    form.fields[name].append(a.get("value", "on"))
                return
            form.fields.setdefault(name, []).append(a.get("value", ""))
        elif tag == "select":
            self._select, self._select_first, self._select_chosen = name, None, False
            form.fields.setdefault(name, [])
        elif tag == "option" and self._select:
            value = a.get("value", "")
            if self._select_first is None:
                self._select_first = value
            if "selected" in a:
                form.fields[self._select].append(value)
                self._select_chosen = True
        elif tag == "textarea":
            self._textarea, self._text = name, []

    def handle_data(self, data):
        if self._textarea:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select" and self._select and self._form is not None:
            if not self._select_chosen and self._select_first is not None:
                self._form.fields[self._select].append(self._select_first)
            self._select = None
        elif tag == "textarea" and self._textarea and self._form is not None:
            text = "".join(self._text)
            self._form.fields.setdefault(self._textarea, []).append(text.lstrip("\n"))
            self._textarea = None


def forms_of(page: str, html: str) -> tuple[list[FoundForm], list[str]]:
    parser = FormParser(page)
    parser.feed(html)
    return parser.forms, parser.links

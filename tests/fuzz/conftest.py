"""A small chain with one of everything, its personas, and the doors found from the URLconf.

Every URL pattern of the project is listed by walking the resolver; a pattern's parameters are
filled with ids of the objects seeded here. Each page is fetched as an administrator and its
<form>s are read from the HTML, so the fuzz tests post exactly the fields a browser would, and
a page or field added later is fuzzed without anyone listing it.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from hypothesis import HealthCheck, settings

from crm import roles
from tests.factories import (
    ContactFactory,
    CustomerFactory,
    ProductFactory,
    StoreFactory,
    UserFactory,
)

from .harness import forms_of

# A fixed seed and bounded examples, so a CI run takes the same few minutes every time;
# FUZZ_EXAMPLES scales every budget for a longer local hunt.
SCALE = float(os.getenv("FUZZ_EXAMPLES_SCALE", "1"))
settings.register_profile(
    "fuzz",
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=list(HealthCheck),
)


def examples(n: int) -> int:
    return max(1, int(n * SCALE))


ROLES = ("admin", "manager", "marketer", "associate", "outsider", "anonymous")

# Not fuzzed here: the Django admin (Django's own forms, for administrators only), the API
# (tests/fuzz/test_api.py and test_openapi.py), and /healthz, whose 503 reports a missing
# worker, not a bad input.
SKIPPED_PREFIXES = ("/admin/", "/api/", "/healthz")
# Doors that end the session or would change the persona's own password: fuzzed, but the
# persona logs in again before every request anyway.


@dataclass
class World:
    store_a: object
    store_b: object
    users: dict
    customer: object
    other_customer: object
    contact: object
    segment: object
    campaign: object
    message_token: str
    pos_key: object

    def client(self, role: str) -> Client:
        # An exception in a view becomes the 500 a real client would get, and is judged.
        client = Client(raise_request_exception=False, HTTP_ACCEPT_LANGUAGE="en")
        user = self.users.get(role)
        if user is not None:
            client.force_login(user)
        return client


@pytest.fixture
def world(db):
    from campaigns.models import Campaign, Message, Segment
    from campaigns.services.render import unsubscribe_token
    from customers.models import CustomField, CustomFieldCategory, Tag
    from sales.apikeys import pos_key_issue
    from sales.services import LineInput, receipt_record

    store_a = StoreFactory(code="msk-1", name="Тверская", city="Москва")
    store_b = StoreFactory(code="spb-1", name="Невский", city="Санкт-Петербург")
    users = {
        "admin": UserFactory(username="alice", role=roles.ADMINISTRATOR, is_staff=True),
        "manager": UserFactory(username="bob", role=roles.STORE_MANAGER, stores=[store_a]),
        "marketer": UserFactory(username="maria", role=roles.MARKETER),
        "associate": UserFactory(username="sasha", role=roles.SALES_ASSOCIATE, stores=[store_a]),
        "outsider": UserFactory(username="oscar"),
    }
    category = CustomFieldCategory.objects.create(name="Анкета")
    for key, kind, choices in (
        ("size", "choice", ["S", "M", "L"]),
        ("sizes", "multi", ["S", "M", "L"]),
        ("shoe", "number", []),
        ("since", "date", []),
        ("vip", "bool", []),
        ("pet", "text", []),
    ):
        CustomField.objects.create(
            key=key, name=key.title(), type=kind, choices=choices, category=category
        )
    tag = Tag.objects.create(name="Постоянный")
    customer = CustomerFactory(
        surname="Иванова",
        first_name="Анна",
        email="anna@mail.ru",
        card_number="2000123",
        home_store=store_a,
        phone_number="+79161234567",
        birth_date=dt.date(1990, 5, 17),
        lifecycle_stage="customer",
        custom_fields={"size": "M", "shoe": "38", "pet": "кот"},
        consent_email=True,
    )
    customer.tags.add(tag)
    other = CustomerFactory(
        surname="Петров", first_name="Борис", home_store=store_b, phone_number="+79169876543"
    )
    product = ProductFactory(sku="DRESS-001", price=Decimal("4990.00"), cost=Decimal("2000.00"))
    receipt_record(
        store=store_a,
        pos_receipt_id="R-1",
        purchased_at=timezone.now() - dt.timedelta(days=3),
        lines=[LineInput(product=product, quantity=Decimal("1"), unit_price=product.price)],
        customer=customer,
    )
    contact = ContactFactory(
        customer=customer,
        staff=users["manager"],
        next_step="Позвонить",
        due_date=timezone.localdate(),
    )
    segment = Segment.objects.create(
        name="Москва",
        rules={"op": "and", "rules": [{"field": "city", "op": "eq", "value": "Москва"}]},
        owner=users["marketer"],
    )
    campaign = Campaign.objects.create(
        name="Весна",
        segment=segment,
        subject="Скидки",
        body_html="<p>Здравствуйте, {{ first_name }}</p>",
        body_text="Скидки",
        created_by=users["marketer"],
    )
    message = Message.objects.create(
        campaign=campaign,
        customer=customer,
        occasion="once",
        channel="email",
        state="sent",
        created_at=timezone.now(),
    )
    return World(
        store_a=store_a,
        store_b=store_b,
        users=users,
        customer=customer,
        other_customer=other,
        contact=contact,
        segment=segment,
        campaign=campaign,
        message_token=unsubscribe_token(message.pk),
        pos_key=pos_key_issue(store=store_a, name="till"),
    )


# --- Doors from the URLconf --------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    pattern: str  # "customers/<int:pk>/edit/"
    name: str
    callback: object


def all_routes() -> list[Route]:
    """Every URL pattern of the project, with its full route text."""
    found: list[Route] = []

    def walk(patterns, prefix: str) -> None:
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                found.append(Route(prefix + str(entry.pattern), entry.name or "", entry.callback))

    walk(get_resolver().url_patterns, "")
    return found


_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")


def concrete_paths(route: Route, world: World) -> list[str]:
    """The route with its parameters filled from the world (several fillings when useful)."""
    text = route.pattern.lstrip("^").rstrip("$")
    if ("/" + text).startswith(SKIPPED_PREFIXES) or "(?P" in text or text.startswith("static"):
        return []
    values = {
        "pk": _pk_for(route.pattern, world),
        "contact_id": world.contact.pk,
        "token": world.message_token,
        "fmt": "csv",
        "name": "kpis",
        "uidb64": "MQ",
        "path": "x",
    }
    path = _PARAM.sub(lambda m: str(values.get(m.group(2), "1")), text)
    if "password/reset/<uidb64>" in route.pattern:
        path = path.replace("/1/", "/set-password/")
    paths = ["/" + path]
    if "<fmt>" in text or ":fmt>" in text:
        paths.append("/" + path.replace("export.csv", "export.xlsx"))
    if "<slug:name>" in text:
        for chart in ("classes", "pareto", "rfm", "cohorts", "sales", "stores", "nope"):
            paths.append("/" + path.replace("/kpis/", f"/{chart}/"))
    if "<int:pk>" in text and route.pattern.startswith("customers/"):
        # Someone else's card: the manager of store A must get a 404 there, never a 5xx.
        paths.append("/" + _PARAM.sub(lambda m: _other(m, world, values), text))
    return paths


def _other(match, world, values) -> str:
    if match.group(2) == "pk":
        return str(world.other_customer.pk)
    return str(values.get(match.group(2), "1"))


def _pk_for(pattern: str, world: World) -> int:
    if pattern.startswith("customers/"):
        return world.customer.pk
    if "segments/" in pattern:
        return world.segment.pk
    if pattern.startswith("campaigns/"):
        return world.campaign.pk
    return 1


def web_doors(world: World) -> list[tuple[str, Route]]:
    """(path, route) for every page of the web app."""
    doors = []
    for route in all_routes():
        for path in concrete_paths(route, world):
            doors.append((path, route))
    return doors


# Query parameters the views read straight from request.GET, found in their source.
_GET_READ = re.compile(r"""GET\.get\(\s*["'](\w+)["']|GET\[\s*["'](\w+)["']\]""")


def view_query_params(route: Route) -> set[str]:
    import inspect

    callback = route.callback
    for _ in range(10):  # unwrap decorators (login_required, require_GET, ...)
        callback = getattr(callback, "__wrapped__", callback)
    view_class = getattr(callback, "view_class", None)
    try:
        source = inspect.getsource(view_class or callback)
    except (OSError, TypeError):
        return set()
    names = {a or b for a, b in _GET_READ.findall(source)}
    return names


def discover(world: World):
    """Pages (GET) with their query parameters, and forms (any method) with their fields."""
    admin = world.client("admin")
    pages: dict[str, set[str]] = {}
    forms: dict[tuple[str, str], dict[str, list[str]]] = {}
    for path, route in web_doors(world):
        params = view_query_params(route)
        response = admin.get(path)
        if response.status_code == 200 and "html" in response.get("Content-Type", ""):
            found, links = forms_of(path, response.content.decode())
            for form in found:
                action = form.action.split("?")[0] or path
                if form.method == "GET":
                    params |= set(form.fields)
                else:
                    forms.setdefault((form.method, action), {}).update(form.fields)
            for link in links:
                if link.startswith(path.split("?")[0] + "?"):
                    params |= {part.split("=")[0] for part in link.split("?", 1)[1].split("&")}
        pages.setdefault(path, set()).update(p for p in params if p)
    return pages, forms


# Анна of store A with every card field filled (the bad-input and card-edit suites).
@pytest.fixture
def anna(store_a):
    return CustomerFactory(
        surname="Иванова",
        first_name="Анна",
        patronymic="Сергеевна",
        email="anna.ivanova@mail.ru",
        card_number="2000123",
        city="Москва",
        home_store=store_a,
        phone_number="+79161234567",
        lifecycle_stage="customer",
    )

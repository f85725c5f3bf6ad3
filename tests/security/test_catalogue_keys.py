"""Way out 7: a store's till key may add the products it sells, never rewrite the catalogue.

Price, cost and status of an existing product change only through a catalogue key or an
administrator, and every upsert is audited with what changed.
"""

import io
from decimal import Decimal

import pytest
from django.core.management import call_command

from crm.models import AuditAction, AuditEvent
from sales.apikeys import pos_key_issue
from sales.models import PosApiKey, Product
from tests.conftest import key_client
from tests.factories import CustomerFactory, ProductFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/products/bulk/"


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def till(store_a):
    return key_client(pos_key_issue(store=store_a, name="till 1").raw)


@pytest.fixture
def catalogue(store_a):
    return key_client(pos_key_issue(store=store_a, name="ERP", kind="catalogue").raw)


@pytest.fixture
def dress(db):
    return ProductFactory(sku="DRESS-1", name="Платье", price=Decimal("4990.00"), cost="2000.00")


def _item(**overrides):
    return {"sku": "DRESS-1", "name": "Платье", "price": "4990.00", "cost": "2000.00", **overrides}


@pytest.mark.parametrize(
    "change",
    [{"price": "1.00"}, {"cost": "1000000000.00"}, {"is_active": False}],
    ids=["price", "cost", "status"],
)
def test_till_key_may_not_change_an_existing_product(till, dress, change):
    response = till.put(URL, {"products": [_item(**change)]}, format="json")

    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "catalogue_key_required"
    assert list(error["fields"]) == [f"products[0].{next(iter(change))}"]
    dress.refresh_from_db()
    assert (dress.price, dress.cost, dress.is_active) == (Decimal("4990.00"), 2000, True)


def test_till_key_refusal_writes_nothing_of_the_request(till, dress):
    payload = {"products": [{"sku": "NEW-1", "name": "Шарф", "price": "990.00"}, _item(price="1")]}
    assert till.put(URL, payload, format="json").status_code == 403
    assert not Product.objects.filter(sku="NEW-1").exists()


def test_till_key_adds_products_it_sells_and_leaves_known_ones(till, dress):
    payload = {
        "products": [
            {"sku": "NEW-1", "name": "Шарф", "price": "990.00"},
            _item(name="Платье (касса 3)"),
        ]
    }

    response = till.put(URL, payload, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["created"], body["updated"], body["unchanged"]) == (1, 0, 1)
    assert Product.objects.get(sku="NEW-1").price == Decimal("990.00")
    dress.refresh_from_db()
    assert dress.name == "Платье"
    event = AuditEvent.objects.get(action=AuditAction.CATALOGUE_CHANGE)
    assert event.details["created"] == ["NEW-1"] and event.actor_name.startswith("pos:")


def test_catalogue_key_changes_prices_and_the_change_is_audited(catalogue, dress):
    response = catalogue.put(URL, {"products": [_item(price="5490.00")]}, format="json")

    assert response.status_code == 200
    assert response.json()["updated"] == 1
    dress.refresh_from_db()
    assert dress.price == Decimal("5490.00")
    event = AuditEvent.objects.get(action=AuditAction.CATALOGUE_CHANGE)
    assert event.details["before"] == {"DRESS-1": {"price": "4990.00"}}
    assert event.details["after"] == {"DRESS-1": {"price": "5490.00"}}


def test_administrator_user_may_change_the_catalogue(api_client, admin_user, dress):
    api_client.force_authenticate(admin_user)
    response = api_client.put(URL, {"products": [_item(cost="2100.00")]}, format="json")
    assert response.status_code == 200
    event = AuditEvent.objects.get(action=AuditAction.CATALOGUE_CHANGE)
    assert event.actor == admin_user


def test_catalogue_key_sees_no_customer_and_sends_no_receipt(catalogue, store_a):
    customer = CustomerFactory(home_store=store_a, phone_number="+79161234567", card_number="77")
    assert catalogue.get("/api/v1/customers/lookup/", {"card": "77"}).status_code == 404
    # A key of the tills' kind is refused a card by id whoever it names (customers/disclosure.py).
    by_id = catalogue.get(f"/api/v1/customers/{customer.pk}/")
    assert by_id.status_code == 403
    assert customer.surname not in by_id.content.decode()
    listed = catalogue.get("/api/v1/customers/")
    assert listed.status_code in (200, 403)
    if listed.status_code == 200:
        assert listed.json()["results"] == []
    assert catalogue.post("/api/v1/receipts/", {}, format="json").status_code == 403


def test_create_pos_key_issues_a_catalogue_key(store_a):
    out = io.StringIO()
    call_command(
        "create_pos_key", "--store", store_a.code, "--catalogue", stdout=out, stderr=io.StringIO()
    )
    raw = out.getvalue().strip()
    key = PosApiKey.objects.get()
    assert key.kind == "catalogue"
    response = key_client(raw).put(
        URL, {"products": [{"sku": "X-1", "name": "X", "price": "1.00"}]}, format="json"
    )
    assert response.status_code == 200

"""PUT /api/v1/products/bulk/: catalogue upsert by SKU, all or nothing."""

from decimal import Decimal

import pytest

from sales.models import Product
from tests.factories import ProductFactory

URL = "/api/v1/products/bulk/"

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue(store_a):
    from sales.apikeys import pos_key_issue
    from tests.conftest import key_client

    return key_client(pos_key_issue(store=store_a, name="ERP", kind="catalogue").raw)


def test_upsert_creates_new_and_updates_known_skus(catalogue):
    # Changing a known SKU takes a catalogue key (tests/security/test_catalogue_keys.py).
    ProductFactory(sku="OLD-1", name="Old", price=Decimal("10.00"))

    response = catalogue.put(
        URL,
        {
            "products": [
                {"sku": "OLD-1", "name": "Renamed", "price": "12.50", "cost": "7.00"},
                {"sku": "NEW-1", "name": "Новый", "category": "Обувь/Туфли", "price": "99.90"},
            ]
        },
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["created"], body["updated"]) == (1, 1)
    old = Product.objects.get(sku="OLD-1")
    assert (old.name, old.price, old.cost) == ("Renamed", Decimal("12.50"), Decimal("7.00"))
    assert Product.objects.get(sku="NEW-1").category.path == "Обувь/Туфли"


def test_one_bad_product_rejects_the_whole_request(pos_a):
    response = pos_a.put(
        URL,
        {
            "products": [
                {"sku": "A", "name": "A", "price": "1.00"},
                {"sku": "B", "name": "B", "price": "-1.00"},
            ]
        },
        format="json",
    )

    assert response.status_code == 400
    assert "products[1].price" in response.json()["error"]["fields"]
    assert not Product.objects.exists()


def test_duplicate_sku_in_request_is_400(pos_a):
    item = {"sku": "A", "name": "A", "price": "1.00"}
    assert pos_a.put(URL, {"products": [item, item]}, format="json").status_code == 400


def test_marketer_may_not_change_catalogue_but_admin_may(api_client, marketer, admin_user):
    payload = {"products": [{"sku": "A", "name": "A", "price": "1.00"}]}
    api_client.force_authenticate(marketer)
    assert api_client.put(URL, payload, format="json").status_code == 403
    api_client.force_authenticate(admin_user)
    assert api_client.put(URL, payload, format="json").status_code == 200

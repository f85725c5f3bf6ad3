"""POS API fixtures: a key per store, clients that present it, and receipt payloads."""

import datetime as dt

import pytest
from rest_framework.test import APIClient

from sales.apikeys import pos_key_issue


@pytest.fixture
def pos_key_a(store_a):
    return pos_key_issue(store=store_a, name="till 1")


@pytest.fixture
def pos_key_b(store_b):
    return pos_key_issue(store=store_b, name="till 1")


def key_client(raw_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    return client


@pytest.fixture
def pos_a(pos_key_a):
    return key_client(pos_key_a.raw)


@pytest.fixture
def pos_b(pos_key_b):
    return key_client(pos_key_b.raw)


@pytest.fixture
def api_client():
    return APIClient()


def receipt_payload(pos_id: str = "R-1", **overrides) -> dict:
    """A valid receipt of two lines, 1 x 4990 - 500 + 2 x 990 = 6470.00."""
    payload = {
        "pos_receipt_id": pos_id,
        "purchased_at": (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).isoformat(),
        "payment_method": "card",
        "lines": [
            {
                "sku": "DRESS-001",
                "quantity": "1",
                "unit_price": "4990.00",
                "discount": "500.00",
                "name": "Платье льняное",
                "category": "Одежда/Платья",
            },
            {"sku": "SCARF-17", "quantity": "2", "unit_price": "990.00", "name": "Платок"},
        ],
        "total": "6470.00",
    }
    payload.update(overrides)
    return payload


@pytest.fixture
def celery_queue(settings):
    """Reads what was published to the real Redis broker: [(task name, args repr)]."""
    import json

    import redis

    connection = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    connection.delete("celery")

    def messages() -> list[tuple[str, str]]:
        raw = connection.lrange("celery", 0, -1)
        decoded = [json.loads(item) for item in reversed(raw)]
        return [(m["headers"]["task"], m["headers"]["argsrepr"]) for m in decoded]

    yield messages
    connection.delete("celery")


@pytest.fixture(autouse=True)
def english(settings):
    """Assertions read English messages; the API speaks the client's Accept-Language."""
    settings.LANGUAGE_CODE = "en"

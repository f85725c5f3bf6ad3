"""Personas shared by every test: an admin, managers of stores A and B, a marketer, a sales
associate of store A, and an outsider with no role."""

import datetime as dt

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from crm import roles
from sales.apikeys import pos_key_issue
from tests.factories import StoreFactory, UserFactory


def pytest_collection_modifyitems(session, config, items):
    # A transactional test (live server, threads, real workers) ends with a flush that would
    # also wipe what migrations created — roles, permissions, beat schedules — for every later
    # test. Serialized rollback puts those rows back after each such test.
    for item in items:
        marker = item.get_closest_marker("django_db")
        transactional = bool(marker and marker.kwargs.get("transaction")) or any(
            name in item.fixturenames for name in ("transactional_db", "live_server")
        )
        if transactional and "django_db_serialized_rollback" not in item.fixturenames:
            item.fixturenames.append("django_db_serialized_rollback")


def pytest_configure(config):
    # Tests never run collectstatic: serve static files by name instead of the hashed manifest.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def store_a(db):
    return StoreFactory(code="msk-1", name="Тверская", city="Москва")


@pytest.fixture
def store_b(db):
    return StoreFactory(code="spb-1", name="Невский", city="Санкт-Петербург")


@pytest.fixture
def admin_user(db):
    return UserFactory(username="alice", role=roles.ADMINISTRATOR, is_staff=True)


@pytest.fixture
def manager_a(db, store_a):
    return UserFactory(username="bob", role=roles.STORE_MANAGER, stores=[store_a])


@pytest.fixture
def manager_b(db, store_b):
    return UserFactory(username="charlie", role=roles.STORE_MANAGER, stores=[store_b])


@pytest.fixture
def marketer(db):
    return UserFactory(username="maria", role=roles.MARKETER)


@pytest.fixture
def associate_a(db, store_a):
    return UserFactory(username="sasha", role=roles.SALES_ASSOCIATE, stores=[store_a])


@pytest.fixture
def outsider(db):
    return UserFactory(username="oscar")


@pytest.fixture(autouse=True)
def _english_outside_requests():
    # LANGUAGE_CODE is "ru" and locale/ru is compiled, so code outside a request (services,
    # tasks) would speak Russian; tests assert the English msgids. Pages still pick their
    # language per request (cookie, Accept-Language), as the i18n tests check.
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture(autouse=True)
def _no_quiet_hours(settings):
    # The default quiet hours (21-9 in the store's zone) would defer every message a test sends
    # in the evening, Moscow time: a suite run after 18:00 UTC failed its sending tests. Tests of
    # the quiet hours set them.
    settings.CLIENTELE_QUIET_HOURS = ""


_serialized_snapshots: dict[str, str] = {}


@pytest.fixture
def django_db_setup(django_db_setup, django_db_blocker):
    """The session's test database, with the snapshot serialized-rollback tests restore.

    Django keeps the snapshot of the migrated data on the database wrapper of the context that
    created the database; once a browser test has started Playwright's event loop in this
    thread, later tests may get another wrapper without it, and a transactional test would then
    flush the roles for good (or restore them twice). Take the snapshot again when it is
    missing — the tests before rolled back or restored, so the data is the migrated data.
    """
    from django.db import connection

    if not getattr(connection, "_test_serialized_contents", None):
        if connection.alias not in _serialized_snapshots:
            with django_db_blocker.unblock():
                _serialized_snapshots[connection.alias] = (
                    connection.creation.serialize_db_to_string()
                )
        connection._test_serialized_contents = _serialized_snapshots[connection.alias]
    elif connection.alias not in _serialized_snapshots:
        _serialized_snapshots[connection.alias] = connection._test_serialized_contents
    return django_db_setup


# --- The POS API: a key per store, clients that present it, receipt payloads, the broker ---


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


# Customers of the shared personas' stores and the real SMTP and HTTP servers that several
# suites use (the list, the working day, campaigns, the browser).
from tests.campaigns.conftest import gateway, smtp  # noqa: E402, F401
from tests.customers.web.conftest import anna, boris  # noqa: E402, F401

"""Personas shared by every test: an admin, managers of stores A and B, a marketer, a sales
associate of store A, and an outsider with no role."""

import pytest
from django.conf import settings

from crm import roles
from tests.factories import StoreFactory, UserFactory


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

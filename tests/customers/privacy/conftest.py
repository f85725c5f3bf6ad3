"""Fixtures of the personal-data tests: a shop to sell in, and a customer with a full history."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from customers.models import ProcessingConsentDocument
from sales.services import LineInput, receipt_record
from tests.factories import ProductFactory


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CLIENTELE_SITE_URL = "https://crm.example.ru"


@pytest.fixture
def document(db):
    """The consent document the migration puts in force."""
    return ProcessingConsentDocument.objects.get(version="2025-09")


@pytest.fixture
def product(db):
    return ProductFactory(name="Платье льняное", price=Decimal("4990.00"), cost=Decimal("2000"))


def buy(customer, store, product, pos_id: str, *, days_ago: int = 10, qty: str = "1"):
    return receipt_record(
        store=store,
        customer=customer,
        pos_receipt_id=pos_id,
        purchased_at=timezone.now() - dt.timedelta(days=days_ago),
        lines=[LineInput(product=product, quantity=Decimal(qty), unit_price=product.price)],
    )


from tests.campaigns.conftest import smtp  # noqa: E402, F401
from tests.conftest import pos_a, pos_key_a  # noqa: E402, F401 -- shared fixtures


@pytest.fixture
def campaign_settings(settings):
    settings.CLIENTELE_QUIET_HOURS = ""
    settings.CLIENTELE_CAP_MESSAGES = 1000
    settings.LANGUAGE_CODE = "en"
    return settings


from tests.browser.conftest import browser, page, sign_in  # noqa: E402, F401 - Playwright

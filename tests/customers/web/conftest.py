"""Shared data of the web-page tests: customers of stores A and B with purchases and contacts."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.factories import (
    ContactFactory,
    CustomerFactory,
    ProductFactory,
    ReceiptFactory,
    ReceiptLineFactory,
)


@pytest.fixture
def anna(store_a):
    """Анна Иванова of store A, phone +7 916 123-45-67, card 2000123, with one purchase."""
    customer = CustomerFactory(
        surname="Иванова",
        first_name="Анна",
        patronymic="Сергеевна",
        email="anna.ivanova@mail.ru",
        card_number="2000123",
        home_store=store_a,
        phone_number="+79161234567",
        lifecycle_stage="customer",
    )
    return customer


@pytest.fixture
def boris(store_b):
    return CustomerFactory(
        surname="Петров",
        first_name="Борис",
        email="boris@example.ru",
        card_number="3000456",
        home_store=store_b,
        phone_number="+79169876543",
    )


def add_receipts(customer, count: int, store=None, lines: int = 2):
    product = ProductFactory()
    receipts = []
    for index in range(count):
        receipt = ReceiptFactory(
            store=store or customer.home_store,
            customer=customer,
            purchased_at=timezone.now() - dt.timedelta(days=index + 1),
            total=Decimal("1000.00") * lines,
        )
        for line_no in range(1, lines + 1):
            ReceiptLineFactory(receipt=receipt, line_no=line_no, product=product)
        receipts.append(receipt)
    return receipts


def add_contacts(customer, count: int, staff=None):
    return [ContactFactory(customer=customer, staff=staff) for _ in range(count)]

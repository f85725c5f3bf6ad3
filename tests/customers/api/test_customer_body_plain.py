"""The API's customer body is a plain dict (issue 15: no serializer per row) with exactly the
JSON the declared `CustomerOutputSerializer` writes, masked or not, with or without points."""

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.utils import timezone

from customers.disclosure import contact_details
from customers.serializers import (
    CustomerOutputSerializer,
    consent_of,
    customer_body,
    points_of,
)
from loyalty.models import Account, Tier
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def _declared(customer, contacts) -> dict:
    return CustomerOutputSerializer(
        {
            "id": customer.pk,
            "surname": customer.surname,
            "first_name": customer.first_name,
            "patronymic": customer.patronymic,
            "gender": customer.gender,
            "birth_date": customer.birth_date,
            "phone": contacts.phone,
            "phones": list(contacts.phones),
            "email": contacts.email,
            "card_number": customer.card_number,
            "city": customer.city,
            "postal_code": contacts.postal_code,
            "address": contacts.address,
            "home_store": customer.home_store_id,
            "lifecycle_stage": customer.lifecycle_stage,
            "consent": consent_of(customer),
            "points": points_of(customer),
            "contact_details_masked": contacts.masked,
            "created_at": customer.created_at,
            "updated_at": customer.updated_at,
        }
    ).data


@pytest.mark.parametrize("masked", [True, False])
def test_plain_body_is_the_declared_serializers_json(admin_user, store_a, masked, settings):
    bare = CustomerFactory(home_store=None, card_number=None, birth_date=None, patronymic="")
    rich = CustomerFactory(
        home_store=store_a, birth_date=dt.date(1990, 2, 28), phone_number="+79161112233"
    )
    tier = Tier.objects.create(name="Золото", threshold=Decimal("1000"), earn_rate=Decimal("0.05"))
    account = Account.objects.create(customer=rich, tier=tier)
    # Balances move only through the ledger (a database guard); the body reads them as given.
    account.available, account.pending = Decimal("12.5"), Decimal("0.333")
    rich.loyalty = account
    # A stamp in UTC is written with "Z"; the body follows the current time zone like DRF.
    rich.updated_at = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
    for tz in ("UTC", "Europe/Moscow"):
        with timezone.override(tz):
            for customer in (bare, rich):
                contacts = contact_details(customer, admin_user, masked=masked)
                ours = customer_body(customer, admin_user, contacts)
                assert type(ours) is dict
                assert json.dumps(ours) == json.dumps(_declared(customer, contacts))

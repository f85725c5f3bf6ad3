"""The POS key is read by one plain statement (no ORM query built per request): it must give
the key and the store the ORM gives, and see a revocation or a closed store at once, whoever
wrote it."""

import zoneinfo

import pytest
from django.db import connection

from crm.models import Store
from sales.apikeys import pos_key_authenticate
from sales.models import PosApiKey
from tests.conftest import key_client, receipt_payload

pytestmark = pytest.mark.django_db


def _fields(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def test_the_statement_builds_the_key_and_store_the_orm_builds(pos_key_a, store_a):
    Store.objects.filter(pk=store_a.pk).update(timezone="Asia/Yekaterinburg")

    principal = pos_key_authenticate(pos_key_a.raw)

    key = PosApiKey.objects.select_related("store").get(pk=pos_key_a.key.pk)
    assert _fields(principal.api_key) == _fields(key)
    assert _fields(principal.store) == _fields(key.store)
    assert principal.store.timezone == zoneinfo.ZoneInfo("Asia/Yekaterinburg")
    assert principal.api_key.store is principal.store and principal.store_ids == [store_a.pk]


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE sales_posapikey SET revoked_at = now()",
        "UPDATE sales_store SET is_active = false",
    ],
)
def test_a_key_revoked_or_a_store_closed_elsewhere_is_refused_at_once(pos_key_a, sql):
    client = key_client(pos_key_a.raw)
    assert client.post("/api/v1/receipts/", receipt_payload(), format="json").status_code == 201

    with connection.cursor() as cursor:  # as another process would: no signal reaches this one
        cursor.execute(sql)

    response = client.post("/api/v1/receipts/", receipt_payload("R-2"), format="json")
    assert response.status_code == 401
    assert pos_key_authenticate(pos_key_a.raw) is None

"""Who may call the API: POS keys (hashed, revocable), per-user tokens, sessions with CSRF."""

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from crm.api_tokens import user_token_issue
from sales.apikeys import key_hash, pos_key_revoke
from sales.models import PosApiKey
from tests.conftest import key_client, receipt_payload
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

LOOKUP = "/api/v1/customers/lookup/"


def test_no_credentials_is_401_with_challenge(api_client):
    response = api_client.get(LOOKUP, {"card": "1"})

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Api-Key"
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.parametrize("header", ["Api-Key", "Api-Key ck_nonsense", "Api-Key a b"])
def test_malformed_or_unknown_key_is_401(header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert client.get(LOOKUP, {"card": "1"}).status_code == 401


def test_revoked_key_gets_401(pos_key_a):
    client = key_client(pos_key_a.raw)
    assert client.post("/api/v1/receipts/", receipt_payload(), format="json").status_code == 201

    pos_key_revoke(key=pos_key_a.key)

    response = client.post("/api/v1/receipts/", receipt_payload("R-2"), format="json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_key_is_stored_hashed_with_a_short_prefix(pos_key_a):
    stored = PosApiKey.objects.get()
    assert pos_key_a.raw not in (stored.key_hash, stored.prefix, stored.name)
    assert stored.key_hash == key_hash(pos_key_a.raw)
    assert pos_key_a.raw.startswith(stored.prefix)
    assert len(pos_key_a.raw) > 40


def test_last_used_is_recorded_at_most_once_a_minute(pos_key_a, django_assert_num_queries):
    client = key_client(pos_key_a.raw)
    client.get(LOOKUP, {"card": "1"})
    first = PosApiKey.objects.get().last_used_at
    assert first is not None

    with django_assert_num_queries(2):  # the key, the look-up; no UPDATE within the minute
        client.get(LOOKUP, {"card": "1"})
    assert PosApiKey.objects.get().last_used_at == first

    PosApiKey.objects.update(last_used_at=timezone.now() - dt.timedelta(minutes=2))
    client.get(LOOKUP, {"card": "1"})
    assert PosApiKey.objects.get().last_used_at > first


def test_create_pos_key_command_prints_a_working_key_once(store_a):
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "create_pos_key", "--store", store_a.code, "--name", "till 7", stdout=out, stderr=err
    )

    raw = out.getvalue().strip()
    assert PosApiKey.objects.get().store == store_a
    assert "not shown again" in err.getvalue()
    assert key_client(raw).get(LOOKUP, {"card": "1"}).status_code == 404  # authenticated


def test_create_pos_key_for_unknown_store_fails(db):
    from django.core.management import CommandError

    with pytest.raises(CommandError):
        call_command("create_pos_key", "--store", "nope")


def test_per_user_token_sees_only_visible_customers(manager_a, store_a, store_b):
    own = CustomerFactory(home_store=store_a)
    other = CustomerFactory(home_store=store_b)
    _token, raw = user_token_issue(user=manager_a)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")

    assert client.get(f"/api/v1/customers/{own.pk}/").status_code == 200
    assert client.get(f"/api/v1/customers/{other.pk}/").status_code == 404


def test_session_writes_need_csrf(manager_a):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(manager_a)

    response = client.post("/api/v1/customers/", {"first_name": "X"}, format="json")

    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]["message"]


def test_admin_issues_key_shown_once_and_stored_hashed(admin_user, store_a, client):
    admin_user.is_superuser = True
    admin_user.save(update_fields=["is_superuser"])
    client.force_login(admin_user)

    response = client.post(
        "/admin/sales/posapikey/add/",
        {"store": store_a.pk, "name": "till 9", "kind": "till"},
        follow=True,
    )

    key = PosApiKey.objects.get()
    shown = [str(m) for m in response.context["messages"]]
    raw = next(word for m in shown for word in m.split() if word.startswith("ck_"))
    assert key.key_hash == key_hash(raw)
    assert key_client(raw).get(LOOKUP, {"card": "1"}).status_code == 404

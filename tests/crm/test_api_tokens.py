"""A person's API token is stored hashed: shown once when issued, checked by its SHA-256, and
the keys DRF's authtoken kept in clear were hashed and their table dropped (crm 0010)."""

from __future__ import annotations

import hashlib
import importlib
import re

import pytest
from django.db import connection
from rest_framework.test import APIClient

from crm.api_tokens import user_token_issue
from crm.models import AuditAction, AuditEvent, UserApiToken

pytestmark = pytest.mark.django_db

CRM_0010 = importlib.import_module("crm.migrations.0010_user_api_tokens")


def _status(raw: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    return client.get("/api/v1/customers/").status_code


def _stored_anywhere(text: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM crm_userapitoken t WHERE row_to_json(t)::text LIKE %s",
            [f"%{text}%"],
        )
        return cursor.fetchone()[0] > 0


def test_an_issued_token_is_kept_only_as_its_hash_and_works(manager_a):
    token, raw = user_token_issue(user=manager_a, name="1С")

    assert token.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw.startswith(token.prefix) and len(token.prefix) < len(raw) // 3
    assert not _stored_anywhere(raw[len(token.prefix) :])
    assert _status(raw) == 200
    assert _status(raw[:-1] + ("A" if raw[-1] != "A" else "B")) == 401
    event = AuditEvent.objects.get(action=AuditAction.API_KEY, object_id=str(token.pk))
    assert event.details == {"event": "issued", "user": manager_a.get_username()}
    UserApiToken.objects.filter(pk=token.pk).delete()
    assert _status(raw) == 401


def test_an_admin_issues_a_token_and_sees_the_key_once(client, admin_user, manager_a):
    client.force_login(admin_user)

    response = client.post(
        "/admin/crm/userapitoken/add/", {"user": manager_a.pk, "name": "касса 1С"}, follow=True
    )

    assert response.status_code == 200
    shown = re.findall(r"\bcu_[\w-]{40,}", response.content.decode())
    assert len(set(shown)) == 1
    raw = shown[0]
    token = UserApiToken.objects.get(user=manager_a)
    assert token.key_hash == hashlib.sha256(raw.encode()).hexdigest() and token.name == "касса 1С"
    assert _status(raw) == 200
    listing = client.get("/admin/crm/userapitoken/").content.decode()
    assert token.prefix in listing and raw not in listing
    assert raw not in client.get(f"/admin/crm/userapitoken/{token.pk}/change/").content.decode()

    # Deleting revokes it, and the audit log says who ended whose key.
    client.post(f"/admin/crm/userapitoken/{token.pk}/delete/", {"post": "yes"})
    assert _status(raw) == 401
    revoked = AuditEvent.objects.get(action=AuditAction.API_KEY, details__event="revoked")
    assert revoked.actor == admin_user and revoked.details["user"] == manager_a.get_username()


def test_keys_drf_kept_in_clear_are_hashed_keep_working_and_their_table_goes(manager_a):
    legacy = "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, "
            "created timestamptz NOT NULL, user_id integer NOT NULL)"
        )
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, now(), %s)", [legacy, manager_a.pk])
        cursor.execute(CRM_0010.COPY_AND_DROP)
        cursor.execute("SELECT to_regclass('authtoken_token')")
        assert cursor.fetchone()[0] is None

    token = UserApiToken.objects.get(user=manager_a)
    assert token.prefix == legacy[:8] and not _stored_anywhere(legacy)
    assert _status(legacy) == 200

"""Project-level guarantees: migrations match the models, roles exist, health reports truly."""

import io

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from crm import roles

pytestmark = pytest.mark.django_db


def test_models_and_migrations_agree():
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)


def test_roles_are_created_by_migration_with_their_permissions():
    assert set(Group.objects.values_list("name", flat=True)) >= set(roles.ROLES)
    marketer = Group.objects.get(name=roles.MARKETER)
    codes = set(marketer.permissions.values_list("codename", flat=True))
    assert "view_all_customers" in codes
    assert "view_contact_details" not in codes and "export_customers" not in codes


def test_passwords_are_hashed_with_argon2(admin_user):
    assert admin_user.password.startswith("argon2")


def test_healthz_reports_each_part_and_fails_without_a_worker(client):
    # No Celery worker runs during unit tests, so the check must say so and answer 503.
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 503
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is True
    assert body["checks"]["celery"]["ok"] is False


def test_login_and_failed_login_are_audited(client, admin_user):
    from crm.models import AuditAction, AuditEvent

    client.post("/login/", {"username": "alice", "password": "wrong"})
    client.post("/login/", {"username": "alice", "password": "correct horse battery"})
    actions = list(AuditEvent.objects.order_by("id").values_list("action", "actor_name"))
    assert actions[:2] == [(AuditAction.LOGIN_FAILED, "alice"), (AuditAction.LOGIN, "alice")]


def test_login_is_throttled_after_repeated_failures(client, admin_user):
    for _ in range(5):
        client.post("/login/", {"username": "alice", "password": "wrong"})
    response = client.post("/login/", {"username": "alice", "password": "correct horse battery"})
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session

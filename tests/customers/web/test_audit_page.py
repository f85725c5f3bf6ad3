"""The admins' audit log page: filters and highlighted suspicious patterns."""

import pytest

from crm.audit import audit_record
from crm.models import AuditAction

pytestmark = pytest.mark.django_db


def test_only_holders_of_view_auditevent_see_the_page(client, manager_a, marketer, outsider):
    for user in (manager_a, marketer, outsider):
        client.force_login(user)
        assert client.get("/audit/").status_code == 404


def test_filters_by_user_and_action(client, admin_user, manager_a, anna):
    audit_record(actor=manager_a, action=AuditAction.CUSTOMER_VIEW, obj=anna)
    audit_record(actor=admin_user, action=AuditAction.EXPORT, rows=1, cap=100)
    client.force_login(admin_user)
    response = client.get("/audit/", {"user": "bob", "action": "customer_view"})
    events = [event for event, _ in response.context["rows"]]
    assert [e.actor_name for e in events] == ["bob"]


def test_many_card_views_in_an_hour_are_highlighted(client, admin_user, manager_a, anna, settings):
    settings.CLIENTELE_SUSPICIOUS_VIEWS_PER_HOUR = 3
    for _ in range(4):
        audit_record(actor=manager_a, action=AuditAction.CUSTOMER_VIEW, obj=anna)
    client.force_login(admin_user)
    response = client.get("/audit/", {"action": "customer_view"})
    body = response.content.decode()
    assert 'data-testid="suspicious-burst"' in body
    assert all(flagged for _, flagged in response.context["rows"])


def test_few_card_views_are_not_highlighted(client, admin_user, manager_a, anna, settings):
    settings.CLIENTELE_SUSPICIOUS_VIEWS_PER_HOUR = 3
    for _ in range(2):
        audit_record(actor=manager_a, action=AuditAction.CUSTOMER_VIEW, obj=anna)
    client.force_login(admin_user)
    response = client.get("/audit/", {"action": "customer_view"})
    assert 'data-testid="suspicious-burst"' not in response.content.decode()
    assert not any(flagged for _, flagged in response.context["rows"])


def test_exports_near_the_cap_are_highlighted(client, admin_user, marketer):
    audit_record(actor=marketer, action=AuditAction.EXPORT, rows=900, cap=1000)
    audit_record(actor=admin_user, action=AuditAction.EXPORT, rows=10, cap=1000)
    client.force_login(admin_user)
    response = client.get("/audit/", {"action": "export"})
    body = response.content.decode()
    assert body.count('data-testid="suspicious-export"') == 1
    flagged = {event.actor_name: flag for event, flag in response.context["rows"]}
    assert flagged == {"maria": True, "alice": False}

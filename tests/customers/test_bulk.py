"""Bulk actions on the customer list (issue 15): ticked rows or all matching, scoped to what the
user may see and change, and audited."""

import pytest

from crm.models import AuditAction, AuditEvent
from customers.models import Customer, Tag

pytestmark = pytest.mark.django_db


def test_manager_assigns_himself_to_ticked_rows(client, manager_a, anna, boris):
    client.force_login(manager_a)
    body = client.get("/customers/").content.decode()
    assert 'data-testid="bulk-form"' in body
    response = client.post(
        "/customers/bulk/",
        {"ids": [anna.pk, boris.pk], "action": "assign_manager", "value": manager_a.pk},
    )
    assert response.status_code == 302
    assert Customer.objects.get(pk=anna.pk).assigned_manager_id == manager_a.pk
    # Boris is another store's customer: out of reach, untouched.
    assert Customer.objects.get(pk=boris.pk).assigned_manager_id is None
    event = AuditEvent.objects.get(action=AuditAction.CUSTOMER_UPDATE)
    assert event.details["bulk"] == "assign_manager" and event.details["ids"] == [anna.pk]


def test_tag_added_to_all_matching_then_removed(client, admin_user, anna, boris):
    vip = Tag.objects.create(name="Постоянный")
    client.force_login(admin_user)
    client.post(
        "/customers/bulk/",
        {"all_matching": "1", "query": "q=Иванова", "action": "add_tag", "value": vip.pk},
    )
    assert list(vip.customers.values_list("pk", flat=True)) == [anna.pk]
    client.post("/customers/bulk/", {"ids": [anna.pk], "action": "remove_tag", "value": vip.pk})
    assert not vip.customers.exists()


def test_bulk_needs_the_right_to_edit_and_a_valid_target(client, associate_a, manager_a, anna):
    client.force_login(associate_a)
    assert 'data-testid="bulk-form"' not in client.get("/customers/").content.decode()
    response = client.post(
        "/customers/bulk/", {"ids": [anna.pk], "action": "assign_manager", "value": manager_a.pk}
    )
    assert response.status_code == 403
    client.force_login(manager_a)
    client.post("/customers/bulk/", {"ids": [anna.pk], "action": "add_tag", "value": "999999"})
    client.post("/customers/bulk/", {"ids": [anna.pk], "action": "drop_table", "value": "1"})
    assert not AuditEvent.objects.filter(action=AuditAction.CUSTOMER_UPDATE).exists()

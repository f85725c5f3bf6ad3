"""The Django admin is usable by an admin and still scoped for other staff."""

import pytest
from django.contrib.auth.models import Group

from crm import roles
from crm.models import AuditAction, AuditEvent
from tests.factories import (
    ContactFactory,
    CustomerFactory,
    ReceiptFactory,
    ReceiptLineFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser():
    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.mark.parametrize(
    "url",
    [
        "/admin/customers/customer/",
        "/admin/customers/contact/",
        "/admin/sales/receipt/",
        "/admin/sales/product/",
        "/admin/crm/auditevent/",
        "/admin/auth/user/",
    ],
)
def test_admin_lists_open(client, superuser, store_a, url):
    customer = CustomerFactory(home_store=store_a)
    ContactFactory(customer=customer)
    ReceiptLineFactory(receipt=ReceiptFactory(store=store_a, customer=customer))
    client.force_login(superuser)
    assert client.get(url).status_code == 200


def test_admin_customer_page_shows_phones_and_contacts(client, superuser, store_a):
    customer = CustomerFactory(home_store=store_a, phone_number="+79161234567")
    ContactFactory(customer=customer, topic="Примерка пальто")
    client.force_login(superuser)
    page = client.get(f"/admin/customers/customer/{customer.pk}/change/").content.decode()
    assert "+79161234567" in page and "Примерка пальто" in page


def test_admin_receipt_page_shows_lines_with_margin(client, superuser, store_a):
    line = ReceiptLineFactory(receipt=ReceiptFactory(store=store_a))
    client.force_login(superuser)
    page = client.get(f"/admin/sales/receipt/{line.receipt_id}/change/").content.decode()
    assert "400,00" in page or "400.00" in page  # margin 1000 - 600


def test_staff_manager_sees_only_own_customers_in_admin(client, manager_a, store_b):
    from django.contrib.auth.models import Permission

    manager_a.is_staff = True
    manager_a.save(update_fields=["is_staff"])
    # Given the admin right (a staff flag alone no longer opens the admin, see
    # tests/security/test_admin_access.py), the admin is still scoped by role.
    manager_a.user_permissions.add(
        Permission.objects.get(codename="view_customer"),
        Permission.objects.get(codename="use_admin"),
    )
    other = CustomerFactory(home_store=store_b)
    client.force_login(manager_a)
    assert client.get(f"/admin/customers/customer/{other.pk}/change/").status_code in (302, 404)
    listing = client.get("/admin/customers/customer/").context["cl"].result_list
    assert other.pk not in {c.pk for c in listing}


def test_audit_log_cannot_be_edited_or_deleted_in_admin(client, superuser):
    event = AuditEvent.objects.create(action=AuditAction.EXPORT, actor_name="x")
    client.force_login(superuser)
    assert client.get("/admin/crm/auditevent/add/").status_code == 403
    client.post(f"/admin/crm/auditevent/{event.pk}/delete/", {"post": "yes"})
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_role_change_in_admin_is_audited(client, superuser, store_a):
    clerk = UserFactory(username="clerk")
    client.force_login(superuser)
    marketer = Group.objects.get(name=roles.MARKETER)
    response = client.post(
        f"/admin/auth/user/{clerk.pk}/change/",
        {
            "username": "clerk",
            "is_active": "on",
            "groups": [marketer.pk],
            "date_joined_0": "2026-01-01",
            "date_joined_1": "10:00:00",
            "staff_profile-TOTAL_FORMS": "1",
            "staff_profile-INITIAL_FORMS": "0",
            "staff_profile-MIN_NUM_FORMS": "0",
            "staff_profile-MAX_NUM_FORMS": "1",
            "staff_profile-0-stores": [store_a.pk],
            "staff_profile-0-user": clerk.pk,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    event = AuditEvent.objects.get(action=AuditAction.ROLE_CHANGE)
    assert event.details["after"] == {"roles": [roles.MARKETER], "stores": [store_a.code]}
    assert event.actor == superuser

"""Way out 6: the Django admin is for Administrators, and inside it the roles table holds.

A staff flag alone opens nothing; a user who may enter sees the customers, receipts, contacts
and metrics the app would show them, contacts masked without the contact-details right, and
opening a card there is audited like opening it in the app.
"""

import pytest
from django.contrib.auth.models import Permission

from crm.models import AuditAction, AuditEvent
from tests.factories import (
    ContactFactory,
    CustomerFactory,
    ReceiptFactory,
    ReceiptLineFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

ADMIN_PAGES = [
    "/admin/",
    "/admin/customers/customer/",
    "/admin/customers/contact/",
    "/admin/sales/receipt/",
    "/admin/analytics/customermetrics/",
]


def _perms(*codenames):
    return [Permission.objects.get(codename=code) for code in codenames]


@pytest.fixture
def anna(store_a):
    customer = CustomerFactory(
        surname="Иванова",
        home_store=store_a,
        phone_number="+79161234567",
        email="anna.ivanova@mail.ru",
    )
    ContactFactory(customer=customer, topic="Примерка пальто")
    ReceiptLineFactory(receipt=ReceiptFactory(store=store_a, customer=customer))
    return customer


@pytest.mark.parametrize("persona", ["marketer", "manager_a", "associate_a"])
@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_staff_flag_alone_opens_no_admin_page(client, request, anna, persona, url):
    user = request.getfixturevalue(persona)
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    client.force_login(user)

    response = client.get(url)

    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    followed = client.get(url, follow=True).content.decode()
    assert "+79161234567" not in followed and "Иванова" not in followed


def test_staff_without_admin_right_has_no_admin_link(client, marketer):
    marketer.is_staff = True
    marketer.save(update_fields=["is_staff"])
    client.force_login(marketer)
    assert 'data-nav="admin"' not in client.get("/").content.decode()


def test_administrator_enters_the_admin(client, admin_user, anna):
    client.force_login(admin_user)
    for url in ADMIN_PAGES:
        assert client.get(url).status_code == 200, url
    page = client.get(f"/admin/customers/customer/{anna.pk}/change/").content.decode()
    assert "+79161234567" in page and "anna.ivanova@mail.ru" in page


@pytest.fixture
def masked_admin(db):
    """An admin-area user who sees the whole base but holds no contact-details right."""
    user = UserFactory(username="auditor", is_staff=True)
    user.user_permissions.add(
        *_perms(
            "use_admin",
            "view_customer",
            "view_all_customers",
            "view_contact",
            "view_receipt",
            "view_customermetrics",
        )
    )
    return user


def test_admin_masks_contacts_without_the_contact_right(client, masked_admin, anna):
    client.force_login(masked_admin)

    listing = client.get("/admin/customers/customer/").content.decode()
    card = client.get(f"/admin/customers/customer/{anna.pk}/change/").content.decode()

    for page in (listing, card):
        assert "Иванова" in page
        assert "+79161234567" not in page and "anna.ivanova@mail.ru" not in page
    assert "+7 916 ***-**-67" in listing and "a***@mail.ru" in card


def test_admin_search_by_email_fragment_finds_nothing_without_the_contact_right(
    client, masked_admin, anna
):
    client.force_login(masked_admin)
    found = client.get("/admin/customers/customer/", {"q": "anna.iv"}).context["cl"].result_list
    assert list(found) == []
    exact = client.get("/admin/customers/customer/", {"q": "anna.ivanova@mail.ru"})
    assert [c.pk for c in exact.context["cl"].result_list] == [anna.pk]


def test_admin_receipts_follow_the_managers_scope(client, manager_a, store_a, store_b, anna):
    other = CustomerFactory(home_store=store_b)
    foreign = ReceiptFactory(store=store_b, customer=other, pos_receipt_id="FOREIGN-1")
    manager_a.is_staff = True
    manager_a.save(update_fields=["is_staff"])
    manager_a.user_permissions.add(*_perms("use_admin"))
    client.force_login(manager_a)

    listed = client.get("/admin/sales/receipt/").context["cl"].result_list

    assert foreign.pk not in {r.pk for r in listed}
    assert {r.customer_id for r in listed} == {anna.pk}
    assert client.get(f"/admin/sales/receipt/{foreign.pk}/change/").status_code in (302, 404)


def test_admin_card_view_is_audited(client, admin_user, anna):
    client.force_login(admin_user)
    client.get(f"/admin/customers/customer/{anna.pk}/change/")
    event = AuditEvent.objects.get(action=AuditAction.CUSTOMER_VIEW)
    assert (event.actor, event.object_id, event.details["via"]) == (
        admin_user,
        str(anna.pk),
        "admin",
    )


def test_admin_list_is_masked_without_the_export_right_but_the_card_is_not(
    client, masked_admin, anna
):
    # Contact details without export: single cards in full (audited), lists masked.
    masked_admin.user_permissions.add(*_perms("view_contact_details"))
    client.force_login(masked_admin)

    listing = client.get("/admin/customers/customer/").content.decode()
    card = client.get(f"/admin/customers/customer/{anna.pk}/change/").content.decode()

    assert "+79161234567" not in listing and "+7 916 ***-**-67" in listing
    assert "+79161234567" in card and "anna.ivanova@mail.ru" in card

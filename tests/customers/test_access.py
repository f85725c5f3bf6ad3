"""The visibility selector and the contact-details mask, for every role."""

import pytest

from customers.access import (
    can_export,
    contact_details,
    lookup_customers,
    mask_email,
    mask_phone,
    visible_customers,
)
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def base(store_a, store_b):
    return {
        "a": CustomerFactory(home_store=store_a, phone_number="+79161234567"),
        "b": CustomerFactory(home_store=store_b, phone_number="+79169876543"),
        "none": CustomerFactory(home_store=None),
    }


def ids(queryset):
    return set(queryset.values_list("pk", flat=True))


def test_admin_and_marketer_see_the_whole_base(base, admin_user, marketer):
    everyone = {c.pk for c in base.values()}
    assert ids(visible_customers(admin_user)) == everyone
    assert ids(visible_customers(marketer)) == everyone


def test_manager_sees_own_store_and_assigned_customers_only(base, manager_a):
    assert ids(visible_customers(manager_a)) == {base["a"].pk}
    base["b"].assigned_manager = manager_a
    base["b"].save(update_fields=["assigned_manager"])
    assert ids(visible_customers(manager_a)) == {base["a"].pk, base["b"].pk}


def test_manager_cannot_see_customer_of_other_store(base, manager_b):
    assert base["a"].pk not in ids(visible_customers(manager_b))


def test_associate_sees_own_store_and_own_cards_but_looks_up_anyone(base, associate_a):
    created = CustomerFactory(home_store=None, created_by=associate_a)
    assert ids(visible_customers(associate_a)) == {base["a"].pk, created.pk}
    found = lookup_customers(associate_a).filter(phones__number="+79169876543")
    assert ids(found) == {base["b"].pk}


def test_user_without_role_sees_nobody(base, outsider):
    assert not visible_customers(outsider).exists()
    assert not lookup_customers(outsider).exists()


def test_inactive_user_sees_nobody(base, admin_user):
    admin_user.is_active = False
    admin_user.save(update_fields=["is_active"])
    assert not visible_customers(admin_user).exists()


def test_anonymous_user_sees_nobody(base):
    from django.contrib.auth.models import AnonymousUser

    assert not visible_customers(AnonymousUser()).exists()


def test_superuser_sees_everyone_without_a_role(base):
    root = UserFactory(username="root", is_superuser=True)
    assert ids(visible_customers(root)) == {c.pk for c in base.values()}


@pytest.mark.parametrize(
    ("persona", "masked"),
    [
        ("admin_user", False),
        ("manager_a", False),
        ("marketer", True),
        ("associate_a", True),
        ("outsider", True),
    ],
)
def test_contact_details_masked_by_role(request, base, persona, masked):
    user = request.getfixturevalue(persona)
    details = contact_details(base["a"], user)
    assert details.masked is masked
    if masked:
        assert details.phone == "+7 916 ***-**-67"
        assert details.email.startswith(base["a"].email[0] + "***@")
        assert "1234567" not in "".join(details.phones)
    else:
        assert details.phone == "+79161234567"
        assert details.email == base["a"].email


def test_marketer_granted_contact_details_sees_them_unmasked(base, marketer):
    from django.contrib.auth.models import Permission

    marketer.user_permissions.add(Permission.objects.get(codename="view_contact_details"))
    marketer = type(marketer).objects.get(pk=marketer.pk)  # drop the permission cache
    assert contact_details(base["a"], marketer).masked is False


def test_only_admin_may_export_by_default(admin_user, marketer, manager_a, associate_a, outsider):
    assert can_export(admin_user)
    assert not any(can_export(u) for u in (marketer, manager_a, associate_a, outsider))


def test_masks_keep_enough_to_confirm_but_not_to_contact():
    assert mask_phone("+79161234567") == "+7 916 ***-**-67"
    assert mask_email("ivan.petrov@mail.ru") == "i***@mail.ru"
    assert mask_phone("") == ""

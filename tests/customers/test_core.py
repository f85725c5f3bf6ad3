"""Phone normalisation and uniqueness, consent history, and the card services."""

import pytest
from django.core.exceptions import ValidationError

from crm.models import AuditAction, AuditEvent
from customers.models import ConsentEvent, Customer, CustomerPhone, CustomField, CustomFieldCategory
from customers.phones import format_phone, normalize_phone, try_normalize_phone
from customers.services import (
    DuplicateCustomer,
    consent_set,
    contact_record,
    customer_create,
    customer_update,
)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "raw",
    ["8 (916) 123-45-67", "+7 916 123 45 67", "89161234567", "+79161234567", "916-123-45-67"],
)
def test_phone_formats_normalise_to_one_e164(raw):
    assert normalize_phone(raw) == "+79161234567"


@pytest.mark.parametrize("raw", ["", "12", "not a phone", "+7 916 123", "8" * 40])
def test_bad_phone_is_a_validation_error(raw):
    with pytest.raises(ValidationError):
        normalize_phone(raw)
    assert try_normalize_phone(raw) is None


def test_format_phone_for_people():
    assert format_phone("+79161234567") == "+7 916 123-45-67"


def test_same_phone_in_two_formats_is_the_same_customer(admin_user, store_a):
    first = customer_create(actor=admin_user, surname="Иванова", phones=["8 (916) 123-45-67"])
    with pytest.raises(DuplicateCustomer) as exc:
        customer_create(actor=admin_user, surname="Петрова", phones=["+79161234567"])
    assert exc.value.existing_id == first.pk
    assert Customer.objects.count() == 1
    assert first.phone == "+79161234567"


def test_phone_uniqueness_is_enforced_by_the_database(admin_user):
    from django.db import IntegrityError, transaction

    customer = customer_create(actor=admin_user, surname="Иванова", phones=["+79161234567"])
    other = customer_create(actor=admin_user, surname="Петрова")
    with pytest.raises(IntegrityError), transaction.atomic():
        CustomerPhone.objects.create(customer=other, number="+79161234567")
    assert customer.phones.count() == 1


def test_only_one_primary_phone_per_customer(admin_user):
    customer = customer_create(
        actor=admin_user, surname="Иванова", phones=["+79161234567", "+79031112233"]
    )
    phones = list(customer.phones.order_by("-is_primary", "number"))
    assert [p.is_primary for p in phones] == [True, False]
    customer_update(
        actor=admin_user, customer=customer, data={}, phones=["+79031112233", "+79161234567"]
    )
    customer.refresh_from_db()
    assert customer.phone == "+79031112233"
    assert customer.phones.get(is_primary=True).number == "+79031112233"


def test_card_number_is_unique(admin_user):
    first = customer_create(actor=admin_user, surname="А", card_number="100200300")
    with pytest.raises(DuplicateCustomer) as exc:
        customer_create(actor=admin_user, surname="Б", card_number="100200300")
    assert exc.value.existing_id == first.pk and exc.value.field == "card_number"


def test_bad_phone_on_create_writes_nothing(admin_user):
    with pytest.raises(ValidationError) as exc:
        customer_create(actor=admin_user, surname="Иванова", phones=["12345"])
    assert "phones" in exc.value.message_dict
    assert not Customer.objects.exists()


def test_update_is_audited_with_before_and_after(admin_user, store_a):
    customer = customer_create(actor=admin_user, surname="Иванова", city="Москва")
    customer_update(actor=admin_user, customer=customer, data={"city": "Казань"})
    event = AuditEvent.objects.get(action=AuditAction.CUSTOMER_UPDATE)
    assert event.details["before"] == {"city": "Москва"}
    assert event.details["after"] == {"city": "Казань"}
    assert event.object_id == str(customer.pk)


def test_update_rejects_unknown_fields(admin_user):
    customer = customer_create(actor=admin_user, surname="Иванова")
    with pytest.raises(ValidationError) as exc:
        customer_update(actor=admin_user, customer=customer, data={"is_superuser": True})
    assert "is_superuser" in exc.value.message_dict


def test_consent_keeps_its_history(admin_user):
    customer = customer_create(actor=admin_user, surname="Иванова", consents={"email": True})
    assert customer.consent_email is True
    consent_set(customer=customer, channel="email", granted=False, source="unsubscribe")
    consent_set(customer=customer, channel="email", granted=False, source="web")  # no change
    customer.refresh_from_db()
    assert customer.consent_email is False
    history = list(ConsentEvent.objects.filter(customer=customer).order_by("at", "id"))
    assert [(e.granted, e.source) for e in history] == [(True, "web"), (False, "unsubscribe")]


def test_has_consent_respects_do_not_contact(admin_user):
    customer = customer_create(actor=admin_user, surname="Иванова", consents={"sms": True})
    assert customer.has_consent("sms")
    customer.do_not_contact = True
    assert not customer.has_consent("sms")


def test_custom_fields_are_validated_against_definitions(admin_user):
    category = CustomFieldCategory.objects.create(name="Размеры", purpose="Подбор одежды")
    CustomField.objects.create(
        key="shoe_size", name="Размер обуви", type="choice", choices=["37", "38"], category=category
    )
    CustomField.objects.create(key="height", name="Рост", type="number", category=category)
    customer = customer_create(
        actor=admin_user, surname="Иванова", custom_fields={"shoe_size": "38", "height": 170}
    )
    assert customer.custom_fields == {"shoe_size": "38", "height": "170"}
    with pytest.raises(ValidationError):
        customer_update(
            actor=admin_user, customer=customer, data={}, custom_fields={"shoe_size": "45"}
        )
    with pytest.raises(ValidationError):
        customer_update(actor=admin_user, customer=customer, data={}, custom_fields={"nope": 1})


def test_follow_up_needs_a_next_step(admin_user):
    import datetime as dt

    customer = customer_create(actor=admin_user, surname="Иванова")
    with pytest.raises(ValidationError):
        contact_record(
            actor=admin_user,
            customer=customer,
            channel="phone",
            direction="out",
            topic="Звонок",
            due_date=dt.date(2030, 1, 1),
        )
    contact = contact_record(
        actor=admin_user,
        customer=customer,
        channel="phone",
        direction="out",
        topic="Звонок",
        agreement="Придёт в субботу на примерку",
        next_step="Напомнить в пятницу",
        due_date=dt.date(2030, 1, 1),
    )
    assert contact.staff == admin_user

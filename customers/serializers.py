"""Shapes of customers in the REST API: the till's minimal card, the full card, writes, contacts.

What a body says about contacts is decided by `customers.disclosure` (the caller passes it in).
"""

from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from crm.serializers import MAX_ID, AwareDateTimeField, StrictSerializer
from customers.access import ContactDetails, contact_details

from .api_fields import PhoneField
from .api_json import json_consent, json_date, json_datetime, json_points, json_text
from .models import ConsentMethod, ContactChannel, Customer, Direction, Gender, LifecycleStage
from .privacy.serializers import ProcessingConsentInputSerializer

# --- Serializers -----------------------------------------------------------------------------


class ConsentSerializer(serializers.Serializer):
    email = serializers.BooleanField()
    sms = serializers.BooleanField()
    messenger = serializers.BooleanField()
    phone = serializers.BooleanField()
    do_not_contact = serializers.BooleanField()


def consent_of(customer: Customer) -> dict:
    return {
        "email": customer.consent_email,
        "sms": customer.consent_sms,
        "messenger": customer.consent_messenger,
        "phone": customer.consent_phone,
        "do_not_contact": customer.do_not_contact,
    }


def value_class_of(customer: Customer) -> str | None:
    """The analytics value class (VIP/A/B/C/D) once analytics has computed it."""
    try:
        metrics = getattr(customer, "metrics", None)
    except ObjectDoesNotExist:
        return None
    return getattr(metrics, "value_class", None) or None


def display_name(customer: Customer) -> str:
    """ "Анна Сергеевна И.": enough for a cashier to greet, no more."""
    initial = f"{customer.surname[:1]}." if customer.surname else ""
    return " ".join(p for p in (customer.first_name, customer.patronymic, initial) if p) or (
        f"#{customer.pk}"
    )


class PointsSerializer(serializers.Serializer):
    tier = serializers.CharField(allow_null=True, help_text="Bonus programme tier.")
    available = serializers.DecimalField(max_digits=14, decimal_places=2)
    pending = serializers.DecimalField(
        max_digits=14, decimal_places=2, help_text="Earned, still in the hold period."
    )


def points_of(customer: Customer) -> dict:
    """The bonus account (kept by the loyalty app, read through its reverse relation)."""
    try:
        account = getattr(customer, "loyalty", None)
    except ObjectDoesNotExist:
        account = None
    if account is None:
        return {"tier": None, "available": "0.00", "pending": "0.00"}
    tier = account.tier if account.tier_id else None
    return {
        "tier": tier.name if tier else None,
        "available": account.available,
        "pending": account.pending,
    }


class CustomerLookupSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    display_name = serializers.CharField()
    card_number = serializers.CharField(allow_null=True)
    value_class = serializers.CharField(allow_null=True, help_text="VIP, A, B, C or D.")
    consent = ConsentSerializer()
    points = PointsSerializer()


def lookup_body(customer: Customer) -> dict:
    return CustomerLookupSerializer(
        {
            "id": customer.pk,
            "display_name": display_name(customer),
            "card_number": customer.card_number,
            "value_class": value_class_of(customer),
            "consent": consent_of(customer),
            "points": points_of(customer),
        }
    ).data


class CustomerOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    surname = serializers.CharField()
    first_name = serializers.CharField()
    patronymic = serializers.CharField()
    gender = serializers.CharField()
    birth_date = serializers.DateField(allow_null=True)
    phone = serializers.CharField(help_text="Primary phone; masked without the permission.")
    phones = serializers.ListField(child=serializers.CharField())
    email = serializers.CharField()
    card_number = serializers.CharField(allow_null=True)
    city = serializers.CharField()
    postal_code = serializers.CharField()
    address = serializers.CharField()
    home_store = serializers.IntegerField(allow_null=True)
    lifecycle_stage = serializers.CharField()
    consent = ConsentSerializer()
    points = PointsSerializer()
    contact_details_masked = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


def customer_body(customer: Customer, user, contacts: ContactDetails | None = None) -> dict:
    """The card as JSON; `contacts` as `customers.disclosure` decided (masked by default)."""
    if contacts is None:
        contacts = contact_details(customer, user, masked=True)
    # A plain dict, not a serializer per row (see customers.api_json); CustomerOutputSerializer
    # still documents it, and tests/api pin the two to the same JSON.
    return {
        "id": customer.pk,
        "surname": json_text(customer.surname),
        "first_name": json_text(customer.first_name),
        "patronymic": json_text(customer.patronymic),
        "gender": json_text(customer.gender),
        "birth_date": json_date(customer.birth_date),
        "phone": json_text(contacts.phone),
        "phones": [str(phone) for phone in contacts.phones],
        "email": json_text(contacts.email),
        "card_number": json_text(customer.card_number),
        "city": json_text(customer.city),
        "postal_code": json_text(contacts.postal_code),
        "address": json_text(contacts.address),
        "home_store": customer.home_store_id,
        "lifecycle_stage": json_text(customer.lifecycle_stage),
        "consent": json_consent(consent_of(customer)),
        "points": json_points(points_of(customer)),
        "contact_details_masked": bool(contacts.masked),
        "created_at": json_datetime(customer.created_at),
        "updated_at": json_datetime(customer.updated_at),
    }


class ConsentInputSerializer(StrictSerializer):
    email = serializers.BooleanField(required=False)
    sms = serializers.BooleanField(required=False)
    messenger = serializers.BooleanField(required=False)
    phone = serializers.BooleanField(required=False)
    method = serializers.ChoiceField(
        choices=ConsentMethod.choices,
        required=False,
        allow_blank=True,
        help_text="How the customer agreed (paper, in_person, phone_call, electronic); "
        "kept with each consent granted at registration.",
    )


class CustomerWriteSerializer(StrictSerializer):
    surname = serializers.CharField(max_length=100, required=False, allow_blank=True)
    first_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    patronymic = serializers.CharField(max_length=100, required=False, allow_blank=True)
    gender = serializers.ChoiceField(choices=Gender.choices, required=False, allow_blank=True)
    birth_date = serializers.DateField(required=False, allow_null=True)
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True)
    card_number = serializers.CharField(
        max_length=32, required=False, allow_blank=True, allow_null=True
    )
    postal_code = serializers.CharField(max_length=12, required=False, allow_blank=True)
    city = serializers.CharField(max_length=100, required=False, allow_blank=True)
    address = serializers.CharField(max_length=300, required=False, allow_blank=True)
    phones = serializers.ListField(
        child=PhoneField(), required=False, max_length=5, help_text="Any common format."
    )

    def validate_birth_date(self, value):
        if value is not None and not (1900 <= value.year <= 2100):
            raise serializers.ValidationError(_("Give a real birth date."))
        return value


class CustomerCreateSerializer(CustomerWriteSerializer):
    consent = ConsentInputSerializer(required=False, help_text="Consent given at registration.")
    processing_consent = ProcessingConsentInputSerializer(
        required=False,
        help_text="Consent to processing of personal data given at registration (152-FZ).",
    )
    home_store = serializers.IntegerField(
        min_value=1,
        max_value=MAX_ID,
        required=False,
        allow_null=True,
        help_text="Ignored for POS keys: their store is the home store.",
    )


class CustomerUpdateSerializer(CustomerWriteSerializer):
    lifecycle_stage = serializers.ChoiceField(choices=LifecycleStage.choices, required=False)
    do_not_contact = serializers.BooleanField(required=False)


class ContactOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    at = serializers.DateTimeField()
    channel = serializers.CharField()
    direction = serializers.CharField()
    topic = serializers.CharField()
    outcome = serializers.CharField()
    agreement = serializers.CharField()
    next_step = serializers.CharField()
    due_date = serializers.DateField(allow_null=True)
    done_at = serializers.DateTimeField(allow_null=True)
    staff = serializers.CharField(allow_null=True, help_text="Username of who logged it.")
    store = serializers.CharField(allow_null=True, help_text="Store code.")


def contact_body(contact) -> dict:
    return ContactOutputSerializer(
        {
            "id": contact.pk,
            "at": contact.at,
            "channel": contact.channel,
            "direction": contact.direction,
            "topic": contact.topic,
            "outcome": contact.outcome,
            "agreement": contact.agreement,
            "next_step": contact.next_step,
            "due_date": contact.due_date,
            "done_at": contact.done_at,
            "staff": contact.staff.get_username() if contact.staff_id else None,
            "store": contact.store.code if contact.store_id else None,
        }
    ).data


class ContactInputSerializer(StrictSerializer):
    channel = serializers.ChoiceField(choices=ContactChannel.choices)
    direction = serializers.ChoiceField(choices=Direction.choices)
    topic = serializers.CharField(max_length=200)
    at = AwareDateTimeField(required=False, help_text="When it happened; now when omitted.")
    outcome = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    agreement = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    next_step = serializers.CharField(max_length=300, required=False, allow_blank=True)
    due_date = serializers.DateField(required=False, allow_null=True)

    def validate_due_date(self, value):
        if value is not None and not (2000 <= value.year <= 2100):
            raise serializers.ValidationError(_("Give a date between 2000 and 2100."))
        return value

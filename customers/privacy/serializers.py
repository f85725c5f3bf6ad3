"""Serializers of consent to processing, shared by the card API and the customers' create API."""

from __future__ import annotations

from django.utils.translation import gettext as _
from rest_framework import serializers

from crm.serializers import StrictSerializer

from ..models import Customer
from .models import ConsentMethod, ProcessingConsentDocument
from .selectors import ProcessingState, processing_state

API_METHODS = [
    ConsentMethod.TILL_SCREEN,
    ConsentMethod.PAPER,
    ConsentMethod.WEB_FORM,
    ConsentMethod.API,
]


class ProcessingConsentInputSerializer(StrictSerializer):
    method = serializers.ChoiceField(
        choices=[(m.value, m.label) for m in API_METHODS],
        required=False,
        help_text="How it was given; a till's default is `till_screen`, others' `api`.",
    )
    version = serializers.CharField(
        max_length=20, required=False, help_text="The document version; the one in force if absent."
    )
    paper_number = serializers.CharField(max_length=40, required=False, allow_blank=True)

    def validate_version(self, value):
        document = ProcessingConsentDocument.objects.filter(version=value).first()
        if document is None:
            raise serializers.ValidationError(_("No consent document has this version."))
        return document


class ProcessingStateSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=ProcessingState.CHOICES)
    version = serializers.CharField(allow_null=True)
    consent_at = serializers.DateTimeField(allow_null=True)
    withdrawn_at = serializers.DateTimeField(allow_null=True)
    erasure_due_at = serializers.DateTimeField(allow_null=True)


def processing_body(customer: Customer) -> dict:
    customer = Customer.objects.select_related("processing_document").get(pk=customer.pk)
    document = customer.processing_document
    return ProcessingStateSerializer(
        {
            "state": processing_state(customer),
            "version": document.version if document else None,
            "consent_at": customer.processing_consent_at,
            "withdrawn_at": customer.processing_withdrawn_at,
            "erasure_due_at": customer.erasure_due_at,
        }
    ).data

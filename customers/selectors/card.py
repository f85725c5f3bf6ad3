"""Reads for the customer's card: the header, the contact log, consents and custom fields.

What higher apps show on the card (purchases, points, metrics) comes through
`customers.extensions.card_sections`.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch

from customers.access import visible_customers

from ..models import ConsentEvent, Contact, Customer, CustomFieldCategory

# --- The card ----------------------------------------------------------------------------------


def customer_get(*, user, pk: int) -> Customer:
    """One visible customer with what the card header needs; Customer.DoesNotExist otherwise."""
    return (
        visible_customers(user)
        .select_related(
            "home_store", "assigned_manager", "acquisition_channel", "created_by", "metrics"
        )
        .prefetch_related("phones", "tags", "important_dates")
        .get(pk=pk)
    )


def customer_contacts(*, customer: Customer, limit: int = 50) -> list[Contact]:
    """The latest entries of the contact log, newest first."""
    return list(Contact.objects.filter(customer=customer).select_related("staff", "store")[:limit])


def consent_history(*, customer: Customer, limit: int = 50) -> list[ConsentEvent]:
    return list(ConsentEvent.objects.filter(customer=customer).select_related("actor")[:limit])


def custom_field_groups(*, customer: Customer) -> list[dict[str, Any]]:
    """Admin-defined fields grouped by category (with its purpose) and this customer's values."""
    from ..models import CustomField

    categories = CustomFieldCategory.objects.prefetch_related(
        Prefetch("fields", queryset=CustomField.objects.filter(is_active=True))
    )
    groups = []
    for category in categories:
        fields = [
            {"field": f, "value": (customer.custom_fields or {}).get(f.key)}
            for f in category.fields.all()
        ]
        if fields:
            groups.append({"category": category, "fields": fields})
    return groups

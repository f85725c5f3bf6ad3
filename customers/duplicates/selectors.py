"""Reads of duplicate candidates and merges, scoped to what the user may see."""

from __future__ import annotations

from django.db.models import QuerySet

from customers.access import visible_customers

from .models import CustomerMerge, DuplicatePair, PairStatus


def duplicate_pairs(*, user, status: str = PairStatus.OPEN) -> QuerySet[DuplicatePair]:
    """Candidate pairs whose two cards the user both sees, most likely first."""
    visible = visible_customers(user)
    return (
        DuplicatePair.objects.filter(status=status, first__in=visible, second__in=visible)
        .select_related("first", "second", "first__home_store", "second__home_store")
        .order_by("-confidence", "first_id", "second_id")
    )


def merges_for(*, user, customer_id: int) -> QuerySet[CustomerMerge]:
    """Merges into a card the user sees (for the undo button on the card and the audit)."""
    visible = visible_customers(user)
    return CustomerMerge.objects.filter(survivor__in=visible, survivor_id=customer_id)

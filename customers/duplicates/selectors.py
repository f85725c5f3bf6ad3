"""Reads of duplicate candidates and merges, scoped to what the user may see."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.db.models.functions import Upper

from crm.access import lookup_customers, visible_customers

from ..models import Customer, CustomerPhone
from ..phones import try_normalize_phone
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


def possible_duplicates(
    *, user, phones: list[str], card_number: str = "", email: str = ""
) -> list[Customer]:
    """Existing customers with the same phone or card among those the user may look up, or the
    same email among those they see."""
    condition = Q()
    numbers = [n for n in (try_normalize_phone(p) for p in phones if p) if n]
    if numbers:
        condition |= Q(pk__in=CustomerPhone.objects.filter(number__in=numbers).values("customer"))
    if card_number:
        condition |= Q(card_number=card_number.strip())
    if email:
        # The till's cross-store look-up is by exact phone or card only: an email match shows
        # only customers the user already sees, or the helper would find anyone by email.
        condition |= Q(
            email_upper=email.strip().upper(), pk__in=visible_customers(user).values("pk")
        )
    if not condition:
        return []
    return list(
        lookup_customers(user)
        .annotate(email_upper=Upper("email"))
        .filter(condition)
        .select_related("home_store")[:5]
    )

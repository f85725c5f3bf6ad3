"""Reads of duplicate candidates and merges, scoped to what the user may see."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.db.models.functions import Upper

from customers.access import lookup_customers, visible_customers

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


def cards_rehomed_since(since) -> list[int]:
    """Cards whose receipts a merge or an undo moved at or after `since` (for the nightly run).

    A merge repoints the absorbed cards' receipts to the survivor and an undo moves them back;
    the receipts themselves keep their dates, so whoever derives figures from a customer's
    receipts and looks only at what arrived since its last run must count these cards as
    changed. Not scoped to a user: the caller is the system's own recompute.
    """
    merged = CustomerMerge.objects.filter(at__gte=since).values_list("survivor_id_value", flat=True)
    ids = set(merged)
    for survivor, absorbed in CustomerMerge.objects.filter(undone_at__gte=since).values_list(
        "survivor_id_value", "absorbed_ids"
    ):
        ids.add(survivor)
        ids.update(int(pk) for pk in absorbed)
    return sorted(ids)


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

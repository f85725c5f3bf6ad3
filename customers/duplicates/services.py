"""Decisions on candidate pairs, and the admin's order of sources."""

from __future__ import annotations

from collections.abc import Sequence

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.access import visible_customers

from ..models import Source
from .models import DuplicatePair, PairStatus, SourcePriority


@transaction.atomic
def pair_dismiss(*, actor, pair: DuplicatePair) -> DuplicatePair:
    """Remember that the two cards are different people; the finder never proposes them again."""
    if not actor.has_perm("customers.change_customer"):
        raise PermissionDenied
    if visible_customers(actor).filter(pk__in=[pair.first_id, pair.second_id]).count() != 2:
        raise DuplicatePair.DoesNotExist
    pair.status = PairStatus.NOT_DUPLICATE
    pair.decided_by = actor
    pair.decided_at = timezone.now()
    pair.save(update_fields=["status", "decided_by", "decided_at"])
    return pair


@transaction.atomic
def source_priority_set(*, actor, sources: Sequence[str]) -> list[SourcePriority]:
    """Replace the order of sources (first = highest priority)."""
    if not actor.has_perm("customers.change_sourcepriority"):
        raise PermissionDenied
    unknown = [s for s in sources if s not in Source.values]
    if unknown or len(set(sources)) != len(sources):
        raise ValidationError({"sources": [_("List each known source once.")]})
    SourcePriority.objects.all().delete()
    return SourcePriority.objects.bulk_create(
        SourcePriority(source=s, rank=i) for i, s in enumerate(sources, start=1)
    )

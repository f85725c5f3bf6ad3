"""Writes the customer list makes: the user's saved filters and bulk changes of many cards.

Like `customers.services`, every such change goes through here and is audited.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.audit import audit_record
from crm.models import AuditAction

from .models import Customer

SAVED_FILTERS_PER_USER = 30


@transaction.atomic
def saved_filter_save(*, user, name: str, query: str):
    """Save (or overwrite by name) one of the user's list filters."""
    from django.http import QueryDict

    from .models import SavedFilter

    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": [_("Give the filter a name.")]})
    params = QueryDict(query or "", mutable=True)
    for key in ("after", "before", "page"):
        params.pop(key, None)
    clean_query = params.urlencode()
    if not clean_query:
        raise ValidationError({"name": [_("Search or set a filter first.")]})
    existing = SavedFilter.objects.filter(user=user, name=name).first()
    if existing is None and SavedFilter.objects.filter(user=user).count() >= SAVED_FILTERS_PER_USER:
        raise ValidationError(
            {"name": [_("At most %(n)s saved filters.") % {"n": SAVED_FILTERS_PER_USER}]}
        )
    saved, _created = SavedFilter.objects.update_or_create(
        user=user, name=name[:80], defaults={"query": clean_query[:1000]}
    )
    return saved


@transaction.atomic
def saved_filter_delete(*, user, pk: int) -> bool:
    """Delete one of the user's own saved filters; False if there is no such filter of theirs."""
    from .models import SavedFilter

    deleted, _rows = SavedFilter.objects.filter(user=user, pk=pk).delete()
    return bool(deleted)


BULK_MAX = 10_000


@transaction.atomic
def customers_bulk_change(*, actor, customers, action: str, value, request=None) -> int:
    """Assign a manager to, or add or remove a tag on, many customers at once; one audit event.

    `customers` must already be scoped to the actor (the caller starts from the one door); more
    than BULK_MAX rows is refused, so a mistaken "all matching" cannot rewrite the base.
    """
    from django.contrib.auth import get_user_model

    from .models import Tag

    ids = list(customers.order_by().values_list("pk", flat=True)[: BULK_MAX + 1])
    if not ids:
        raise ValidationError({"ids": [_("Select at least one customer.")]})
    if len(ids) > BULK_MAX:
        raise ValidationError(
            {"ids": [_("At most %(n)s customers at once: narrow the filter.") % {"n": BULK_MAX}]}
        )
    if action == "assign_manager":
        manager = get_user_model().objects.filter(pk=value, is_active=True).first()
        if manager is None or not (
            manager.has_perm("customers.view_store_customers")
            or manager.has_perm("customers.view_all_customers")
        ):
            raise ValidationError({"value": [_("Choose a manager.")]})
        changed = Customer.objects.filter(pk__in=ids).update(
            assigned_manager=manager, updated_at=timezone.now()
        )
        target = manager.get_username()
    elif action in ("add_tag", "remove_tag"):
        tag = Tag.objects.filter(pk=value).first()
        if tag is None:
            raise ValidationError({"value": [_("Choose a tag.")]})
        through = Customer.tags.through
        if action == "add_tag":
            have = set(
                through.objects.filter(tag=tag, customer_id__in=ids).values_list(
                    "customer_id", flat=True
                )
            )
            through.objects.bulk_create(
                [through(customer_id=pk, tag=tag) for pk in ids if pk not in have]
            )
            changed = len(ids) - len(have)
        else:
            changed, _rows = through.objects.filter(tag=tag, customer_id__in=ids).delete()
        target = tag.name
    else:
        raise ValidationError({"action": [_("Unknown action.")]})
    audit_record(
        actor=actor,
        action=AuditAction.CUSTOMER_UPDATE,
        request=request,
        bulk=action,
        target=target,
        customers=len(ids),
        changed=changed,
        ids=ids[:1000],
    )
    return changed

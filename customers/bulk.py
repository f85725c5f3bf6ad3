"""Bulk actions on the customer list: a registry of what can be done to many customers at once.

The list's bulk bar offers every registered action the user is allowed; customers registers its
own (assign a manager, add or remove a tag, export through the guarded export), and apps above
customers register theirs in their `AppConfig.ready()` (campaigns adds "add to a static
segment"), so customers never imports them. `bulk_apply` is the one entry point: it turns the
selection (ticked ids, or every row matching the list's filter) into ids scoped to the user
through the one door, refuses more than BULK_MAX, and hands the ids to the action.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from crm.audit_display import register_value_labels
from customers.access import can_export

from .list_services import BULK_MAX, customers_bulk_change
from .models import Customer


@dataclass(frozen=True)
class BulkAction:
    """One thing the bulk bar can do.

    `choices(user)` lists the values it takes (a manager, a tag, a segment, a file format);
    `apply(actor=, ids=, value=, request=)` does it to customers already scoped to the actor and
    returns how many changed. An action whose `result` is True returns a response-worthy object
    instead (the export's file), which the view hands back as it is.
    """

    key: str
    label: Any
    allowed: Callable[[Any], bool]
    choices: Callable[[Any], list[tuple[str, str]]]
    apply: Callable[..., Any]
    result: bool = False


_REGISTRY: dict[str, BulkAction] = {}


def bulk_action_register(action: BulkAction) -> None:
    """Add (or replace, on a reloaded app) an action of the list's bulk bar."""
    _REGISTRY[action.key] = action
    # Its audit events name it by key; the audit log shows its label.
    register_value_labels("bulk", [(action.key, action.label)])


def bulk_actions_for(user) -> list[BulkAction]:
    """The registered actions `user` may run, in registration order."""
    return [action for action in _REGISTRY.values() if action.allowed(user)]


def bulk_context(user, *, tags: list[tuple[str, str]] | None = None) -> dict | None:
    """What the list's bulk bar shows: the allowed actions with their values; None if none.

    Actions sharing a list of values (adding and removing a tag) read it once; `tags`, when the
    caller has them already (the list's filter form), are not read again.
    """
    actions = bulk_actions_for(user)
    if not actions:
        return None
    known: dict[Callable, list[tuple[str, str]]] = {}
    if tags is not None:
        known[_tags] = [(str(pk), name) for pk, name in tags]
    for action in actions:
        if action.choices not in known:
            known[action.choices] = [(str(v), n) for v, n in action.choices(user)]
    return {
        "actions": [{"key": a.key, "label": a.label, "choices": known[a.choices]} for a in actions]
    }


def selection_ids(customers: QuerySet[Customer]) -> list[int]:
    """Ids of a scoped selection; a ValidationError if it is empty or larger than BULK_MAX."""
    ids = list(customers.order_by("pk").values_list("pk", flat=True)[: BULK_MAX + 1])
    if not ids:
        raise ValidationError({"ids": [_("Select at least one customer.")]})
    if len(ids) > BULK_MAX:
        raise ValidationError(
            {"ids": [_("At most %(n)s customers at once: narrow the filter.") % {"n": BULK_MAX}]}
        )
    return ids


def bulk_apply(*, actor, action: str, customers: QuerySet[Customer], value: str, request=None):
    """Run one bulk action on `customers` (already scoped to `actor` by the caller)."""
    chosen = _REGISTRY.get(action)
    if chosen is None or not chosen.allowed(actor):
        raise ValidationError({"action": [_("Unknown action.")]})
    return chosen.apply(actor=actor, ids=selection_ids(customers), value=value, request=request)


# --- The actions customers offers itself -------------------------------------------------------


def _can_edit(user) -> bool:
    return user.has_perm("customers.change_customer")


def _managers(user) -> list[tuple[str, str]]:
    from django.contrib.auth import get_user_model
    from django.db.models import Q

    managers = (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(
            Q(groups__permissions__codename="view_store_customers")
            | Q(user_permissions__codename="view_store_customers")
        )
        .distinct()
        .order_by("last_name", "username")
    )
    return [(str(u.pk), u.get_full_name() or u.get_username()) for u in managers]


def _tags(user) -> list[tuple[str, str]]:
    from .models import Tag

    return [(str(pk), name) for pk, name in Tag.objects.order_by("name").values_list("pk", "name")]


def _change(action: str):
    def apply(*, actor, ids: list[int], value: str, request=None) -> int:
        return customers_bulk_change(
            actor=actor,
            customers=Customer.objects.filter(pk__in=ids),
            action=action,
            value=int(value) if value.isdigit() else None,
            request=request,
        )

    return apply


def _export(*, actor, ids: list[int], value: str, request=None):
    """The selection through the one guarded export: permission, daily cap, trap row, audit."""
    from .exports import FORMATS, customer_export
    from .selectors.listing import ListFilters

    if value not in FORMATS:
        raise ValidationError({"value": [_("Choose a file format.")]})
    return customer_export(actor=actor, filters=ListFilters(ids=ids), fmt=value, request=request)


bulk_action_register(
    BulkAction(
        "assign_manager", _("Assign a manager"), _can_edit, _managers, _change("assign_manager")
    )
)
bulk_action_register(BulkAction("add_tag", _("Add a tag"), _can_edit, _tags, _change("add_tag")))
bulk_action_register(
    BulkAction("remove_tag", _("Remove a tag"), _can_edit, _tags, _change("remove_tag"))
)
bulk_action_register(
    BulkAction(
        "export",
        _("Export"),
        can_export,
        lambda user: [("csv", "CSV"), ("xlsx", "XLSX")],
        _export,
        result=True,
    )
)

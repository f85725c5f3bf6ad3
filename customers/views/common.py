"""What every page of the customer base shares: the 404 for what a user cannot reach, and
who may edit a card.
"""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.utils.translation import gettext as _

from ..models import Customer
from ..selectors import card

BAD_INPUT = 400


def _customer_or_404(request, pk: int) -> Customer:
    try:
        return card.customer_get(user=request.user, pk=pk)
    except Customer.DoesNotExist as exc:
        raise Http404(_("No such customer.")) from exc


def perm_or_404(perm: str):
    """Like `permission_required`, but a user without the permission sees 404, as for anything
    they cannot reach: the page's existence is not theirs to learn."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.has_perm(perm):
                raise Http404
            return view(request, *args, **kwargs)

        return login_required(wrapped)

    return decorator


def _can_edit(user) -> bool:
    return user.has_perm("customers.change_customer")


def _can_record_consent(user, customer: Customer) -> bool:
    """Editors change consent on any card they see; whoever signed the customer up (an
    associate at the till) records the agreement on the cards they created."""
    return _can_edit(user) or (
        user.has_perm("customers.add_customer") and customer.created_by_id == user.pk
    )

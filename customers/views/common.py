"""What every page of the customer base shares: the 404 for what a user cannot reach, and
who may edit a card.
"""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from ..access import can_export
from ..disclosure import daily_allowance, taken_today
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


def export_refused(request, exc) -> HttpResponse:
    """The page of a refused export (`ExportRefused`): 429 over the daily cap, else 403; a user
    with the export right also sees the cap and what they took today."""
    context = {"message": str(exc), "reason": exc.reason}
    if can_export(request.user):
        context["cap"] = daily_allowance(request.user)
        context["used"] = taken_today(request.user)
    status = 429 if exc.reason == "cap" else 403
    return render(request, "customers/export_refused.html", context, status=status)

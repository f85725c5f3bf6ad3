"""The points panel of the customer card (loaded into the card by htmx) and adjustments.

The programme's block on the analytics dashboard is served by analytics (`analytics.views.
loyalty_block`), which stands above loyalty and reads `selectors.dashboard_figures`."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from customers.access import visible_customers

from . import selectors, services
from .forms import AdjustForm


def _customer_or_404(request, pk: int):
    # The one door: a customer outside the user's scope is a 404, never a 403.
    return get_object_or_404(visible_customers(request.user), pk=pk)


def _panel(request, customer, form=None, status=200):
    account = selectors.account_of(customer)
    context = {
        "customer": customer,
        "account": account,
        "next_expiry": selectors.next_expiry(account),
        "entries": selectors.ledger_page(account) if account else [],
        "can_adjust": request.user.has_perm("loyalty.adjust_points"),
        "form": form or AdjustForm(),
    }
    return render(request, "loyalty/_card.html", context, status=status)


@login_required
def card_points(request, pk: int):
    return _panel(request, _customer_or_404(request, pk))


@login_required
@require_POST
def card_adjust(request, pk: int):
    customer = _customer_or_404(request, pk)
    if not request.user.has_perm("loyalty.adjust_points"):
        return HttpResponse(_("You may not adjust points."), status=403)
    form = AdjustForm(request.POST)
    if form.is_valid():
        try:
            services.points_adjust(
                actor=request.user,
                customer=customer,
                amount=form.cleaned_data["amount"],
                reason=form.cleaned_data["reason"],
                request=request,
            )
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, messages)
        else:
            return _panel(request, customer)
    return _panel(request, customer, form=form, status=400)

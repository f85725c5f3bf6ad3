"""The list's bulk bar: one POST runs a registered action (`customers.bulk`) on the ticked rows
or on every row matching the list's current filter, always within what the user may see."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, HttpResponse, QueryDict
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from customers.access import visible_customers

from .. import bulk
from ..exports import ExportFile, ExportRefused
from ..forms import CustomerListForm
from ..selectors import listing
from .common import export_refused


def _selection(request):
    """The customers the POST names, through the one door: forged ids of other stores drop out,
    and "all matching" re-runs the list's own filter for this user."""
    if request.POST.get("all_matching"):
        form = CustomerListForm(QueryDict(request.POST.get("query", "")[:2000]), user=request.user)
        if not form.is_valid():
            # A damaged filter must not widen to "everyone": it selects nobody instead.
            return visible_customers(request.user).none()
        return listing.customer_filter(user=request.user, filters=form.list_filters())
    ids = [int(v) for v in request.POST.getlist("ids") if v.isdigit() and len(v) < 19]
    return visible_customers(request.user).filter(
        pk__in=ids[: bulk.BULK_MAX + 1], erased_at__isnull=True
    )


@login_required
@require_POST
def customer_bulk(request):
    """Run one bulk action; back to the list with a message, or the export's file."""
    if not bulk.bulk_actions_for(request.user):
        return HttpResponse(_("You may not change customers in bulk."), status=403)
    query = request.POST.get("query", "")[:2000]
    back = reverse("customers:list") + ("?" + query if query else "")
    try:
        result = bulk.bulk_apply(
            actor=request.user,
            action=request.POST.get("action", ""),
            customers=_selection(request),
            value=request.POST.get("value", "")[:200],
            request=request,
        )
    except ExportRefused as exc:
        return export_refused(request, exc)
    except ValidationError as exc:
        for problems in exc.message_dict.values():
            for problem in problems:
                messages.error(request, problem)
        return redirect(back)
    if isinstance(result, ExportFile):
        return FileResponse(
            result.file,
            as_attachment=True,
            filename=result.filename,
            content_type=result.content_type,
        )
    messages.success(request, _("Done: %(n)s customers changed.") % {"n": result})
    return redirect(back)

"""Pages of the customer list: search and filters, bulk changes, leads, saved filters, export.

Views parse input and render; reads are in `customers.selectors`, writes in `customers.services`
and `customers.exports`. A customer outside `visible_customers(user)` is a 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from customers.access import can_export
from customers.disclosure import masked_contacts

from .. import list_services
from ..bulk import bulk_context
from ..exports import FORMATS, ExportRefused, customer_export
from ..forms import CustomerListForm, TraceForm
from ..models import Customer
from ..selectors import listing, search, today
from ..traps import export_trace
from .common import BAD_INPUT, export_refused, perm_or_404


@perm_or_404("customers.view_customer")
@require_GET
def customer_list(request):
    form = CustomerListForm(request.GET or None, user=request.user)
    filters = form.list_filters() if form.is_bound else listing.ListFilters()
    sort, descending = form.sort_order() if form.is_bound else ("name", False)
    status = 200
    try:
        page = listing.customer_page(
            user=request.user,
            filters=filters,
            sort=sort,
            descending=descending,
            after=request.GET.get("after", ""),
            before=request.GET.get("before", ""),
        )
    except listing.InvalidCursor:
        # A cursor is only ever one this page handed out; anything else is a bad address.
        form.add_error(None, _("This page link is damaged; the list starts from the top."))
        page = listing.customer_page(
            user=request.user, filters=filters, sort=sort, descending=descending
        )
        status = BAD_INPUT
    lookups = search.customer_lookup(user=request.user, query=filters.query)
    # Lists never carry contacts, whatever the role (crm/disclosure.py): the card shows them one
    # at a time, counted, and an export is the permitted, capped way to take many.
    masked = True
    context = {
        "form": form,
        "page": page,
        "rows": [_list_row(c) for c in page.customers],
        "lookups": [(c, masked_contacts(c)) for c in lookups],
        "filters": filters,
        "can_export": can_export(request.user),
        "export_formats": [("csv", _("Export CSV")), ("xlsx", _("Export XLSX"))],
        "masked": masked,
        "query_string": _query_without(request, {"after", "before"}),
        "export_params": [
            (name, value)
            for name, values in request.GET.lists()
            if name not in {"after", "before"}
            for value in values
        ],
        "sort_string": _query_without(request, {"after", "before", "sort"}),
        "saved_filters": list(request.user.saved_filters.all()),
        "bulk": bulk_context(
            request.user, tags=[c for c in form.fields["tag"].choices if c[0] != ""]
        ),
        "current_query": _query_without(request, {"after", "before"}),
    }
    template = "customers/list.html"
    if request.htmx and request.htmx.target == "results":
        template = "customers/_results.html"
    return render(request, template, context, status=status)


def _list_row(customer: Customer) -> dict:
    # Plain values: the template then reads dict keys instead of resolving managers and
    # methods on fifty model instances, which is most of the page's time.
    metrics = getattr(customer, "metrics", None)
    shown = masked_contacts(customer)
    return {
        "pk": customer.pk,
        "name": customer.full_name or str(customer.pk),
        "url": customer.get_absolute_url(),
        "phone": shown["phone"],
        "email": shown["email"],
        "card": customer.card_number or "",
        "store": customer.home_store.name if customer.home_store else "",
        "stage": customer.get_lifecycle_stage_display(),
        "tags": [(tag.name, tag.color) for tag in customer.tags.all()],
        "value_class": metrics.value_class if metrics else "",
        "value_class_title": metrics.get_value_class_display() if metrics else "",
        "created": customer.created_at,
    }


def _query_without(request, names: set[str]) -> str:
    query = request.GET.copy()
    for name in names:
        query.pop(name, None)
    return query.urlencode()


@perm_or_404("customers.view_customer")
@require_GET
def lead_list(request):
    # A list: contacts masked for every role (crm/disclosure.py); the card shows them one by one.
    masked = True
    leads = list(today.leads(user=request.user, limit=200))
    return render(
        request,
        "customers/leads.html",
        {
            "leads": leads,
            "rows": [(c, masked_contacts(c)) for c in leads],
            "masked": masked,
        },
    )


@login_required
@require_POST
def customer_export_view(request, fmt: str):
    """Export by POST (CSRF-protected): the list page's export buttons are forms."""
    if fmt not in FORMATS:
        raise Http404
    form = CustomerListForm(request.POST or None, user=request.user)
    filters = form.list_filters() if form.is_bound else listing.ListFilters()
    try:
        export = customer_export(actor=request.user, filters=filters, fmt=fmt, request=request)
    except ExportRefused as exc:
        return export_refused(request, exc)
    return FileResponse(
        export.file,
        as_attachment=True,
        filename=export.filename,
        content_type=export.content_type,
    )


@login_required
@require_http_methods(["GET", "POST"])
def export_trace_view(request):
    """Admins upload a leaked file; the page names the export, user and time it came from."""
    if not request.user.has_perm("crm.view_auditevent"):
        raise Http404
    form = TraceForm(request.POST or None, request.FILES or None)
    matches = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            upload = form.cleaned_data["file"]
            matches = export_trace(data=upload.read(), filename=upload.name)
        else:
            status = BAD_INPUT
    return render(
        request, "customers/export_trace.html", {"form": form, "matches": matches}, status=status
    )


@perm_or_404("customers.view_customer")
@require_POST
def saved_filter_save_view(request):
    try:
        list_services.saved_filter_save(
            user=request.user,
            name=request.POST.get("name", "")[:80],
            query=request.POST.get("query", "")[:1000],
        )
    except ValidationError as exc:
        for problems in exc.message_dict.values():
            for problem in problems:
                messages.error(request, problem)
        return redirect(reverse("customers:list") + "?" + request.POST.get("query", "")[:1000])
    messages.success(request, _("The filter is saved."))
    return redirect(reverse("customers:list") + "?" + request.POST.get("query", "")[:1000])


@perm_or_404("customers.view_customer")
@require_POST
def saved_filter_delete_view(request, pk: int):
    if not list_services.saved_filter_delete(user=request.user, pk=pk):
        raise Http404
    return redirect("customers:list")

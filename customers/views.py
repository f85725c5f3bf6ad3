"""Pages of the customer base: the list with search, the card, new card, leads and export.

Views parse input and render; reads are in `customers.selectors`, writes in `customers.services`
and `customers.exports`. A customer outside `visible_customers(user)` is a 404.
"""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crm.access import can_export, visible_customers
from crm.disclosure import card_read, daily_allowance, masked_contacts, taken_today
from crm.models import AuditAction

from . import selectors, services
from .bulk import bulk_context
from .duplicates.merge import resolve_alias
from .exports import FORMATS, ExportRefused, customer_export
from .forms import (
    ConsentForm,
    ContactForm,
    CustomerForm,
    CustomerListForm,
    CustomFieldsForm,
    SignUpForm,
    TraceForm,
)
from .models import Channel, Customer, CustomField, Source
from .privacy.card import privacy_context
from .privacy.forms import ProcessingConsentForm
from .privacy.selectors import processing_document_current
from .privacy.services import processing_consent_record
from .traps import export_trace

BAD_INPUT = 400


def _customer_or_404(request, pk: int) -> Customer:
    try:
        return selectors.customer_get(user=request.user, pk=pk)
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


@perm_or_404("customers.view_customer")
@require_GET
def customer_list(request):
    form = CustomerListForm(request.GET or None, user=request.user)
    filters = form.list_filters() if form.is_bound else selectors.ListFilters()
    sort, descending = form.sort_order() if form.is_bound else ("name", False)
    status = 200
    try:
        page = selectors.customer_page(
            user=request.user,
            filters=filters,
            sort=sort,
            descending=descending,
            after=request.GET.get("after", ""),
            before=request.GET.get("before", ""),
        )
    except selectors.InvalidCursor:
        # A cursor is only ever one this page handed out; anything else is a bad address.
        form.add_error(None, _("This page link is damaged; the list starts from the top."))
        page = selectors.customer_page(
            user=request.user, filters=filters, sort=sort, descending=descending
        )
        status = BAD_INPUT
    lookups = selectors.customer_lookup(user=request.user, query=filters.query)
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


def _card_context(request, customer: Customer, *, contact=None, **extra) -> dict:
    totals = selectors.purchase_totals(customer=customer)
    receipts = Paginator(selectors.customer_receipts(customer=customer), 10)
    # The totals have just counted the receipts; spare the paginator a second COUNT.
    receipts.count = totals.receipts
    return {
        "customer": customer,
        "contact": contact or _card_contacts(request, customer, audit=False),
        "totals": totals,
        "receipts": receipts.get_page(request.GET.get("page")),
        "contacts": selectors.customer_contacts(customer=customer),
        "consents": selectors.consent_history(customer=customer),
        "custom_groups": selectors.custom_field_groups(customer=customer),
        "metrics": getattr(customer, "metrics", None),
        "can_edit": _can_edit(request.user),
        "can_consent": _can_record_consent(request.user, customer),
        "can_add_contact": request.user.has_perm("customers.add_contact"),
        "contact_form": extra.pop("contact_form", None) or ContactForm(),
        "channels": Channel.choices,
        "today": timezone.localdate(),
        **privacy_context(request, customer),
        **extra,
    }


@perm_or_404("customers.view_customer")
@require_GET
def customer_detail(request, pk: int):
    try:
        customer = _customer_or_404(request, pk)
    except Http404:
        # A card merged into another one opens the card that absorbed it.
        survivor_id = resolve_alias(pk) if 1 <= pk < 2**63 else None
        if survivor_id and visible_customers(request.user).filter(pk=survivor_id).exists():
            return redirect(f"/customers/{survivor_id}/")
        raise
    if request.htmx and request.htmx.target == "purchases":
        context = {
            "customer": customer,
            "receipts": Paginator(selectors.customer_receipts(customer=customer), 10).get_page(
                request.GET.get("page")
            ),
        }
        return render(request, "customers/_purchases.html", context)
    contact = _card_contacts(request, customer, audit=True)
    context = _card_context(request, customer, contact=contact)
    return render(request, "customers/detail.html", context)


def _card_contacts(request, customer: Customer, *, audit: bool, warn: bool = True):
    """The card's contacts through the one rule: counted, audited when `audit`, capped."""
    shown = card_read(
        user=request.user,
        customer=customer,
        action=AuditAction.CUSTOMER_VIEW,
        request=request,
        audit=audit,
        via="web",
    )
    if shown.capped and warn:
        messages.warning(
            request,
            _(
                "Contact details are hidden: you have seen your daily limit of %(cap)s cards "
                "with contacts. It resets at midnight."
            )
            % {"cap": daily_allowance(request.user)},
        )
    return shown


def _custom_definitions():
    return list(CustomField.objects.filter(is_active=True).select_related("category"))


@login_required
def customer_edit(request, pk: int):
    customer = _customer_or_404(request, pk)
    if not _can_edit(request.user):
        return HttpResponse(_("You may not edit cards."), status=403)
    # The edit form holds the contacts in full: it is a card read under the same rule.
    if _card_contacts(request, customer, audit=request.method == "GET", warn=False).capped:
        message = _("Contact details are hidden for today: the card cannot be edited now.")
        if request.htmx:
            return HttpResponse(message, status=429)
        return redirect(customer.get_absolute_url())  # the card says why
    definitions = _custom_definitions()
    if request.method == "POST":
        # Only what the POST carries changes: a missing field is kept, never erased.
        form = CustomerForm(request.POST, instance=customer, user=request.user, partial=True)
        custom_form = CustomFieldsForm(request.POST, prefix="cf", definitions=definitions)
        if form.is_valid() and custom_form.is_valid():
            try:
                services.customer_update(
                    actor=request.user,
                    customer=customer,
                    data=form.card_data(),
                    phones=form.phone_list(),
                    custom_fields={k: _json_value(v) for k, v in custom_form.sent_values().items()},
                    request=request,
                )
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                if request.htmx:
                    customer = _customer_or_404(request, pk)
                    return render(
                        request,
                        "customers/_fields.html",
                        {
                            "customer": customer,
                            "contact": _card_contacts(request, customer, audit=False),
                            "can_edit": True,
                            "custom_groups": selectors.custom_field_groups(customer=customer),
                            "saved": True,
                        },
                    )
                messages.success(request, _("The card is saved."))
                return redirect(customer.get_absolute_url())
        status = BAD_INPUT
    else:
        form = CustomerForm(instance=customer, user=request.user)
        initial = {d.key: (customer.custom_fields or {}).get(d.key) for d in definitions}
        custom_form = CustomFieldsForm(initial=initial, prefix="cf", definitions=definitions)
        status = 200
    template = "customers/_edit.html" if request.htmx else "customers/edit.html"
    return render(
        request,
        template,
        {"customer": customer, "form": form, "custom_form": custom_form},
        status=status,
    )


def _json_value(value):
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if value is not None and not isinstance(value, bool | str | list | int):
        return str(value)
    return value


def _add_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for name, errors in exc.message_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


@login_required
@require_POST
def contact_add(request, pk: int):
    customer = _customer_or_404(request, pk)
    if not request.user.has_perm("customers.add_contact"):
        return HttpResponse(_("You may not log contacts."), status=403)
    form = ContactForm(request.POST)
    status = 200
    if form.is_valid():
        try:
            services.contact_record(
                actor=request.user,
                customer=customer,
                store=customer.home_store,
                **{name: form.cleaned_data[name] for name in ContactForm.Meta.fields},
            )
        except ValidationError as exc:
            _add_errors(form, exc)
            status = BAD_INPUT
        else:
            form = ContactForm()
    else:
        status = BAD_INPUT
    if not request.htmx:
        if status == 200:
            return redirect(customer.get_absolute_url() + "#contacts")
        return render(
            request,
            "customers/detail.html",
            _card_context(request, customer, contact_form=form),
            status=status,
        )
    return render(
        request,
        "customers/_contacts.html",
        {
            "customer": customer,
            "contacts": selectors.customer_contacts(customer=customer),
            "contact_form": form,
            "can_add_contact": True,
        },
        status=status,
    )


@login_required
@require_POST
def contact_done(request, pk: int, contact_id: int):
    customer = _customer_or_404(request, pk)
    contact = customer.contacts.filter(pk=contact_id).first()
    if contact is None:
        raise Http404
    if not selectors.can_close_followup(request.user, contact):
        return HttpResponse(_("You may not close this follow-up."), status=403)
    services.contact_complete(actor=request.user, contact=contact)
    messages.success(request, _("The follow-up is done."))
    # HttpResponseRedirect, not redirect(): odd text in `next` is not a view name to reverse.
    return HttpResponseRedirect(safe_next(request) or customer.get_absolute_url())


def safe_next(request) -> str:
    """`next` from the form when it stays on this site, else "" (no open redirect to a lookalike
    login page)."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return ""


@login_required
@require_POST
def consent_change(request, pk: int):
    customer = _customer_or_404(request, pk)
    if not _can_record_consent(request.user, customer):
        return HttpResponse(_("You may not change consent."), status=403)
    form = ConsentForm(request.POST)
    if not form.is_valid():
        return HttpResponse(form.errors.as_text(), status=BAD_INPUT)
    services.consent_set(
        customer=customer,
        channel=form.cleaned_data["channel"],
        granted=form.cleaned_data["granted"],
        source=Source.WEB,
        actor=request.user,
        note=form.cleaned_data["note"],
        method=form.cleaned_data["method"],
    )
    if request.htmx:
        return render(
            request,
            "customers/_consent.html",
            {
                "customer": customer,
                "consents": selectors.consent_history(customer=customer),
                "channels": Channel.choices,
                "can_consent": True,
            },
        )
    return redirect(customer.get_absolute_url())


@perm_or_404("customers.add_customer")
def customer_create(request):
    duplicates = []
    if request.method == "POST":
        form = SignUpForm(request.POST, user=request.user)
        processing_form = ProcessingConsentForm(request.POST, request.FILES, prefix="pc")
        if form.is_valid() and processing_form.is_valid():
            try:
                # One transaction: a card is never left without the consent it was signed with.
                with transaction.atomic():
                    customer = services.customer_create(
                        actor=request.user,
                        phones=form.phone_list(),
                        consents=form.consents(),
                        consent_method=form.cleaned_data.get("consent_method") or "",
                        request=request,
                        **{k: v for k, v in form.card_data().items() if v not in (None, "")},
                    )
                    _record_signup_consent(request, customer, processing_form)
            except services.DuplicateCustomer as exc:
                # Before add_error, which drops the field from cleaned_data.
                duplicates = selectors.possible_duplicates(
                    user=request.user,
                    phones=form.phone_list(),
                    card_number=form.cleaned_data.get("card_number") or "",
                    email=form.cleaned_data.get("email") or "",
                )
                _add_errors(form, exc)
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                messages.success(request, _("The card is created."))
                if selectors.visible_customers(request.user).filter(pk=customer.pk).exists():
                    return redirect(customer.get_absolute_url())
                return redirect("customers:list")
        status = BAD_INPUT
    else:
        form = SignUpForm(user=request.user)
        processing_form = ProcessingConsentForm(prefix="pc")
        status = 200
    return render(
        request,
        "customers/create.html",
        {
            "form": form,
            "processing_form": processing_form,
            "processing_document": processing_document_current(),
            "duplicates": _duplicate_rows(request, duplicates),
        },
        status=status,
    )


def _record_signup_consent(request, customer: Customer, processing_form) -> None:
    method = processing_form.cleaned_data.get("method")
    if not method:
        return
    try:
        processing_consent_record(
            customer=customer,
            actor=request.user,
            method=method,
            paper_number=processing_form.cleaned_data["paper_number"],
            scan=processing_form.cleaned_data["scan"],
            store=customer.home_store,
            request=request,
        )
    except ValidationError as exc:
        # No field of the card form has this name: it shows at the top of the form.
        raise ValidationError({"processing": exc.messages}) from exc


def _duplicate_rows(request, customers):
    visible = set(
        selectors.visible_customers(request.user)
        .filter(pk__in=[c.pk for c in customers])
        .values_list("pk", flat=True)
    )
    return [(c, c.pk in visible, masked_contacts(c)) for c in customers]


@perm_or_404("customers.add_customer")
@require_GET
def duplicate_check(request):
    """Live warning on the new-card form: same phone, card or email already in the base."""
    phones = [p for p in (request.GET.get("phones") or "").replace(",", "\n").splitlines() if p]
    duplicates = selectors.possible_duplicates(
        user=request.user,
        phones=phones[:5],
        card_number=(request.GET.get("card_number") or "")[:32],
        email=(request.GET.get("email") or "")[:254],
    )
    return render(
        request,
        "customers/_duplicates.html",
        {"duplicates": _duplicate_rows(request, duplicates)},
    )


@perm_or_404("customers.view_customer")
@require_GET
def lead_list(request):
    # A list: contacts masked for every role (crm/disclosure.py); the card shows them one by one.
    masked = True
    leads = list(selectors.leads(user=request.user, limit=200))
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
    filters = form.list_filters() if form.is_bound else selectors.ListFilters()
    try:
        export = customer_export(actor=request.user, filters=filters, fmt=fmt, request=request)
    except ExportRefused as exc:
        context = {"message": str(exc), "reason": exc.reason}
        if can_export(request.user):
            context["cap"] = daily_allowance(request.user)
            context["used"] = taken_today(request.user)
        status = 429 if exc.reason == "cap" else 403
        return render(request, "customers/export_refused.html", context, status=status)
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
        services.saved_filter_save(
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
    if not services.saved_filter_delete(user=request.user, pk=pk):
        raise Http404
    return redirect("customers:list")

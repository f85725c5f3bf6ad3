"""Pages of one customer: the card, its edits, contact log and consents, and the new card.

Views parse input and render; reads are in `customers.selectors`, writes in `customers.services`.
What higher apps show on the card comes through `customers.extensions`. A customer outside
`visible_customers(user)` is a 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from crm.models import AuditAction
from customers.access import visible_customers
from customers.disclosure import card_read, daily_allowance, masked_contacts

from .. import services
from ..duplicates.merge import resolve_alias
from ..duplicates.selectors import possible_duplicates
from ..extensions import card_partial, card_sections
from ..forms import ConsentForm, ContactForm, CustomerForm, CustomFieldsForm, SignUpForm
from ..models import Channel, Customer, CustomField, Source
from ..privacy.card import privacy_context
from ..privacy.forms import ProcessingConsentForm
from ..privacy.selectors import processing_document_current
from ..privacy.services import processing_consent_record
from ..selectors import card, today
from .common import BAD_INPUT, _can_edit, _can_record_consent, _customer_or_404, perm_or_404


def _card_context(request, customer: Customer, *, contact=None, **extra) -> dict:
    # The apps above customers (sales: totals and receipts) add their parts of the card.
    sections = card_sections(request, customer)
    return {
        "customer": customer,
        "contact": contact or _card_contacts(request, customer, audit=False),
        **sections,
        "contacts": card.customer_contacts(customer=customer),
        "consents": card.consent_history(customer=customer),
        "custom_groups": card.custom_field_groups(customer=customer),
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
    partial = card_partial(request.htmx.target if request.htmx else None)
    if partial is not None:
        template, context = partial(request, customer)
        return render(request, template, context)
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
                            "custom_groups": card.custom_field_groups(customer=customer),
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
            "contacts": card.customer_contacts(customer=customer),
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
    if not today.can_close_followup(request.user, contact):
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
                "consents": card.consent_history(customer=customer),
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
                duplicates = possible_duplicates(
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
                if visible_customers(request.user).filter(pk=customer.pk).exists():
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
        visible_customers(request.user)
        .filter(pk__in=[c.pk for c in customers])
        .values_list("pk", flat=True)
    )
    return [(c, c.pk in visible, masked_contacts(c)) for c in customers]


@perm_or_404("customers.add_customer")
@require_GET
def duplicate_check(request):
    """Live warning on the new-card form: same phone, card or email already in the base."""
    phones = [p for p in (request.GET.get("phones") or "").replace(",", "\n").splitlines() if p]
    duplicates = possible_duplicates(
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

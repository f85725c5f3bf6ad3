"""Pages for personal-data rights: consent on the card, subject access, erasure, retention review,
and the customer's own one-click withdrawal link. Thin: the services decide."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from ..models import Customer
from ..views.common import _customer_or_404, perm_or_404
from . import selectors, services
from .forms import ErasureForm, ProcessingConsentForm, RetentionEraseForm, SubjectAccessRequestForm
from .models import ConsentMethod
from .services import WITHDRAW_SALT


def _bad(request, customer, exc: ValidationError):
    for message in exc.messages:
        messages.error(request, message)
    return redirect(customer.get_absolute_url() + "#privacy")


@login_required
@require_POST
def processing_consent_add(request, pk: int):
    customer = _customer_or_404(request, pk)
    if not request.user.has_perm("customers.add_processingconsent"):
        return HttpResponse(_("You may not record consent to processing."), status=403)
    form = ProcessingConsentForm(request.POST, request.FILES, prefix="pc", required=True)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect(customer.get_absolute_url() + "#privacy")
    try:
        services.processing_consent_record(
            customer=customer,
            actor=request.user,
            method=form.cleaned_data["method"],
            paper_number=form.cleaned_data["paper_number"],
            scan=form.cleaned_data["scan"],
            store=customer.home_store,
            request=request,
        )
    except ValidationError as exc:
        return _bad(request, customer, exc)
    messages.success(request, _("Consent to processing is recorded."))
    return redirect(customer.get_absolute_url() + "#privacy")


@login_required
@require_POST
def processing_withdraw(request, pk: int):
    customer = _customer_or_404(request, pk)
    if not request.user.has_perm("customers.change_customer"):
        return HttpResponse(_("You may not change consent."), status=403)
    try:
        services.processing_consent_withdraw(
            customer=customer, actor=request.user, method=ConsentMethod.PAPER, request=request
        )
    except ValidationError as exc:
        return _bad(request, customer, exc)
    messages.success(
        request,
        _("Consent to processing is withdrawn: mailings stopped, erasure scheduled."),
    )
    return redirect(customer.get_absolute_url() + "#privacy")


@perm_or_404("customers.answer_subject_access")
@require_POST
def subject_access_request_add(request, pk: int):
    customer = _customer_or_404(request, pk)
    form = SubjectAccessRequestForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect(customer.get_absolute_url() + "#privacy")
    try:
        services.subject_access_request_record(
            customer=customer, actor=request.user, received_on=form.cleaned_data["received_on"]
        )
    except ValidationError as exc:
        return _bad(request, customer, exc)
    messages.success(request, _("The request is registered."))
    return redirect(customer.get_absolute_url() + "#privacy")


@perm_or_404("customers.answer_subject_access")
@require_POST
def subject_access_download(request, pk: int):
    customer = _customer_or_404(request, pk)
    try:
        content, _digest = services.subject_access_answer(
            customer=customer, actor=request.user, request=request
        )
    except ValidationError as exc:
        return _bad(request, customer, exc)
    response = HttpResponse(
        content,
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    name = f"personal-data-{customer.pk}-{timezone.localdate():%Y%m%d}.xlsx"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@perm_or_404("customers.erase_customer")
@require_http_methods(["GET", "POST"])
def customer_erase_view(request, pk: int):
    customer = _customer_or_404(request, pk)
    if customer.erased_at is not None:
        messages.info(request, _("This customer's personal data has already been erased."))
        return redirect(customer.get_absolute_url())
    initial = {"basis": services.ErasureBasis.WITHDRAWAL}
    form = ErasureForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.customer_erase(
                    customer=customer,
                    actor=request.user,
                    basis=form.cleaned_data["basis"],
                    request=request,
                )
            except ValidationError as exc:
                form.add_error(None, exc.messages)
            else:
                messages.success(request, _("Personal data erased."))
                return redirect(customer.get_absolute_url())
        status = 400
    return render(
        request, "customers/erase.html", {"customer": customer, "form": form}, status=status
    )


@perm_or_404("customers.erase_customer")
@require_http_methods(["GET", "POST"])
def retention_review(request):
    leads = list(selectors.retention_leads(user=request.user)[:500])
    inactive = list(selectors.retention_inactive(user=request.user)[:500])
    ids = [c.pk for c in leads + inactive]
    form = RetentionEraseForm(request.POST or None, choices=ids)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                done = services.customers_erase_bulk(
                    actor=request.user,
                    customer_ids=form.cleaned_data["customers"],
                    basis=services.ErasureBasis.RETENTION,
                    request=request,
                )
            except PermissionDenied as exc:
                raise Http404 from exc
            messages.success(request, _("%(n)s customers anonymised.") % {"n": done})
            return redirect("customers:retention")
        status = 400
    return render(
        request,
        "customers/retention.html",
        {
            "leads": leads,
            "inactive": inactive,
            "form": form,
            "lead_years": settings.CLIENTELE_RETENTION_LEAD_YEARS,
            "inactive_years": settings.CLIENTELE_RETENTION_INACTIVE_YEARS,
        },
        status=status,
    )


@csrf_exempt
@require_http_methods(["GET", "POST"])
def withdraw_link(request, token: str):
    """The customer's one-click link. A GET only shows a button (mail scanners follow links);
    a POST, from that button or an RFC 8058 one-click client, withdraws at once."""
    try:
        pk = int(signing.Signer(salt=WITHDRAW_SALT).unsign(token))
    except (signing.BadSignature, ValueError) as exc:
        raise Http404 from exc
    customer = Customer.objects.filter(pk=pk).first()
    if customer is None:
        raise Http404
    if request.method == "POST":
        services.processing_consent_withdraw(
            customer=customer, actor=None, method=ConsentMethod.LINK, request=request
        )
        return render(request, "customers/withdrawn.html", {})
    return render(request, "customers/withdraw_confirm.html", {"token": token})

"""Pages of segments and campaigns, and the public unsubscribe link.

Views parse input and render; reads are in `campaigns.selectors`, writes in
`campaigns.services`. Without `campaigns.manage_campaigns` every page is a 404.
"""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from campaigns import selectors
from campaigns.forms import CampaignForm, CountForm, PreviewForm, SegmentForm, TestSendForm
from campaigns.models import Campaign, Message, Segment
from campaigns.services import campaigns as services
from campaigns.services import results as results_service
from campaigns.services.render import unsubscribe_message_id
from campaigns.services.segments import (
    FIELD_OP_LABELS,
    FIELDS,
    OP_LABELS,
    choice_labels,
    segment_customers,
)
from crm.calendar import holiday_choices
from crm.models import AuditAction, Store
from customers.disclosure import card_read, masked_contacts
from customers.models import Customer, Tag
from customers.selectors.search import customer_search
from loyalty.models import Tier
from sales.models import Category

BAD_INPUT = 400


def manager_only(view):
    """Login required, and a 404 for anyone who may not manage campaigns."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not selectors.can_manage(request.user):
            raise Http404
        return view(request, *args, **kwargs)

    return login_required(wrapped)


def _campaign(request, pk: int) -> Campaign:
    try:
        return selectors.campaign_get(user=request.user, pk=pk)
    except Campaign.DoesNotExist as error:
        raise Http404 from error


def _segment(request, pk: int) -> Segment:
    try:
        return selectors.segment_get(user=request.user, pk=pk)
    except Segment.DoesNotExist as error:
        raise Http404 from error


def _add_errors(form, error: ValidationError) -> None:
    for field, problems in error.message_dict.items():
        form.add_error(field if field in form.fields else None, problems)


@manager_only
@require_GET
def campaign_list(request):
    campaigns = selectors.campaign_list(user=request.user)[:200]
    return render(request, "campaigns/list.html", {"campaigns": campaigns})


@manager_only
@require_http_methods(["GET", "POST"])
def campaign_create(request):
    return _campaign_form(request, Campaign(created_by=request.user))


@manager_only
@require_http_methods(["GET", "POST"])
def campaign_edit(request, pk: int):
    return _campaign_form(request, _campaign(request, pk))


def _campaign_form(request, campaign: Campaign):
    form = CampaignForm(request.POST or None, instance=campaign)
    if request.method == "POST" and form.is_valid():
        try:
            saved = services.campaign_save(actor=request.user, campaign=form.save(commit=False))
        except ValidationError as error:
            _add_errors(form, error)
        else:
            return redirect("campaigns:detail", pk=saved.pk)
    status = BAD_INPUT if request.method == "POST" else 200
    return render(
        request,
        "campaigns/form.html",
        {"form": form, "campaign": campaign, "admin_hint": request.user.is_staff},
        status=status,
    )


@manager_only
@require_GET
def campaign_detail(request, pk: int):
    campaign = _campaign(request, pk)
    return render(
        request,
        "campaigns/detail.html",
        {
            "campaign": campaign,
            "progress": selectors.progress(campaign=campaign),
            "preview_form": PreviewForm(),
            "test_form": _test_form(request, campaign),
        },
    )


def _test_form(request, campaign: Campaign, data=None) -> TestSendForm:
    addresses = services.test_addresses(user=request.user, channel=campaign.channel)
    return TestSendForm(data, addresses=addresses)


@manager_only
@require_GET
def campaign_preview(request, pk: int):
    campaign = _campaign(request, pk)
    form = PreviewForm(request.GET)
    if not form.is_valid():
        return render(request, "campaigns/_preview.html", {"form": form}, status=BAD_INPUT)
    try:
        customer = selectors.preview_customer(user=request.user, pk=form.cleaned_data["customer"])
    except Customer.DoesNotExist as error:
        raise Http404 from error
    # The "To" line is the customer's contact: shown through the one rule, and audited.
    shown = card_read(
        user=request.user,
        customer=customer,
        action=AuditAction.CAMPAIGN_PREVIEW,
        request=request,
        campaign=campaign.pk,
    )
    try:
        preview = services.preview(campaign=campaign, customer=customer)
    except Exception as error:  # noqa: BLE001 - a broken template is shown, not a 500
        form.add_error(None, str(error))
        return render(request, "campaigns/_preview.html", {"form": form}, status=BAD_INPUT)
    preview["to"] = shown.email if campaign.channel == "email" else shown.phone
    return render(
        request,
        "campaigns/_preview.html",
        {"preview": preview, "campaign": campaign, "capped": shown.capped},
    )


@manager_only
@require_POST
def campaign_test_send(request, pk: int):
    campaign = _campaign(request, pk)
    form = _test_form(request, campaign, request.POST)
    if form.is_valid():
        try:
            customer = selectors.preview_customer(
                user=request.user, pk=form.cleaned_data["customer"]
            )
        except Customer.DoesNotExist as error:
            raise Http404 from error
        try:
            services.send_test(
                actor=request.user,
                campaign=campaign,
                customer=customer,
                to=form.cleaned_data["to"],
                request=request,
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            return render(request, "campaigns/_test_sent.html", {"to": form.cleaned_data["to"]})
    return render(
        request,
        "campaigns/_test_form.html",
        {"test_form": form, "campaign": campaign},
        status=BAD_INPUT,
    )


@manager_only
@require_http_methods(["GET", "POST"])
def campaign_start_view(request, pk: int):
    """GET (or a POST without `confirmed`) shows who would get the campaign; the confirmed
    POST starts it."""
    campaign = _campaign(request, pk)
    if request.method == "GET" or request.POST.get("confirmed") != "yes":
        return render(
            request,
            "campaigns/start_confirm.html",
            {"campaign": campaign, "audience": selectors.audience(campaign=campaign)},
        )
    try:
        created = services.campaign_start(actor=request.user, campaign=campaign)
    except ValidationError as error:
        for problems in error.message_dict.values():
            for problem in problems:
                messages.error(request, problem)
    else:
        messages.success(request, _("Started: %(n)s messages queued.") % {"n": created})
    return redirect("campaigns:detail", pk=campaign.pk)


PICKER_RESULTS = 8


@manager_only
@require_GET
def campaign_customer_picker(request, pk: int):
    """Customers to preview or test-send for, found by the one search box (htmx fragment).

    Names and masked phones only; the preview itself decides what it may show.
    """
    _campaign(request, pk)
    query = (request.GET.get("q") or "").strip()[:100]
    found = []
    if len(query) >= 2:
        found = list(
            customer_search(user=request.user, query=query, limit=PICKER_RESULTS).select_related(
                "home_store"
            )[:PICKER_RESULTS]
        )
    return render(
        request,
        "campaigns/_customer_picker.html",
        {
            "found": [(c, masked_contacts(c)) for c in found],
            "query": query,
            "target": request.GET.get("for") or "preview",
        },
    )


@manager_only
@require_POST
def campaign_pause_view(request, pk: int):
    campaign = _campaign(request, pk)
    services.campaign_pause(actor=request.user, campaign=campaign)
    return redirect("campaigns:detail", pk=campaign.pk)


@manager_only
@require_POST
def campaign_resume_view(request, pk: int):
    campaign = _campaign(request, pk)
    services.campaign_resume(actor=request.user, campaign=campaign)
    return redirect("campaigns:detail", pk=campaign.pk)


@manager_only
@require_GET
def campaign_progress(request, pk: int):
    campaign = _campaign(request, pk)
    return render(
        request,
        "campaigns/_progress.html",
        {"campaign": campaign, "progress": selectors.progress(campaign=campaign)},
    )


@manager_only
@require_GET
def campaign_results(request, pk: int):
    campaign = _campaign(request, pk)
    results = results_service.campaign_results(campaign=campaign)
    return render(
        request,
        "campaigns/results.html",
        {
            "campaign": campaign,
            "results": results,
            "holdout": results_service.holdout_check(campaign=campaign, results=results),
        },
    )


@manager_only
@require_GET
def campaign_results_csv(request, pk: int):
    campaign = _campaign(request, pk)
    response = HttpResponse(
        results_service.results_csv(results_service.campaign_results(campaign=campaign)),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-results.csv"'
    return response


@manager_only
@require_GET
def segment_list(request):
    return render(
        request, "campaigns/segments.html", {"segments": selectors.segment_list(user=request.user)}
    )


def _builder_schema() -> dict:
    """What the segment builder's selects offer: fields, operators, value kinds and options."""
    options = {
        "home_store": list(Store.objects.values_list("id", "name")),
        "tag": list(Tag.objects.values_list("id", "name")),
        "bought_category": list(Category.objects.values_list("id", "path")[:500]),
        "loyalty_tier": list(Tier.objects.values_list("id", "name")),
    }
    labels = choice_labels()
    holidays = holiday_choices()
    fields = {}
    for name, spec in FIELDS.items():
        kinds = set(spec.ops.values())
        if "holiday" in kinds:
            field_options = holidays
        elif "channel" in kinds:
            field_options = list(labels["channel"].items())
        else:
            field_options = options.get(name, [])
        fields[name] = {
            "label": str(spec.label),
            "group": str(spec.group),
            "ops": spec.ops,
            "op_labels": {
                op: str(FIELD_OP_LABELS.get((name, op), OP_LABELS[op])) for op in spec.ops
            },
            # Every coded value with its label, so the builder never shows a code.
            "choices": [[c, labels.get(name, {}).get(c, c) or "—"] for c in spec.choices],
            "extra": dict(spec.extra),
            "options": field_options,
        }
    return fields


@manager_only
@require_http_methods(["GET", "POST"])
def segment_edit(request, pk: int | None = None):
    segment = _segment(request, pk) if pk else None
    initial = (
        {"name": segment.name, "description": segment.description, "rules": segment.rules}
        if segment
        else {"rules": {"op": "and", "rules": []}}
    )
    form = SegmentForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            saved = services.segment_save(
                actor=request.user,
                segment=segment,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                rules=form.cleaned_data["rules"],
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, _("Segment saved."))
            return redirect("campaigns:segment_edit", pk=saved.pk)
    count = None
    if segment is not None:
        count = segment_customers(user=request.user, segment=segment).count()
    return render(
        request,
        "campaigns/segment_edit.html",
        {
            "form": form,
            "segment": segment,
            "count": count,
            "schema": _builder_schema(),
        },
        status=BAD_INPUT if request.method == "POST" else 200,
    )


@manager_only
@require_POST
def segment_count(request):
    """The live count of the builder's current rules (htmx)."""
    form = CountForm(request.POST)
    if not form.is_valid():
        return render(
            request, "campaigns/_count.html", {"errors": form.errors["rules"]}, status=BAD_INPUT
        )
    count = segment_customers(user=request.user, rules=form.cleaned_data["rules"]).count()
    return render(request, "campaigns/_count.html", {"count": count})


SEGMENT_MEMBERS_SHOWN = 50


@manager_only
@require_GET
def segment_members(request, pk: int):
    """The first members of a segment, as the customer list shows them (htmx fragment).

    Scoped to what the user may see (segments compile onto `visible_customers`) and always
    masked: a page of people is list-shaped, and contact details of many people are the
    export's to give.
    """
    segment = _segment(request, pk)
    members = (
        segment_customers(user=request.user, segment=segment)
        .select_related("home_store", "metrics")
        .order_by("surname", "first_name", "id")[: SEGMENT_MEMBERS_SHOWN + 1]
    )
    rows = list(members)
    return render(
        request,
        "campaigns/_members.html",
        {
            "segment": segment,
            "rows": [(c, masked_contacts(c)) for c in rows[:SEGMENT_MEMBERS_SHOWN]],
            "more": len(rows) > SEGMENT_MEMBERS_SHOWN,
        },
    )


@manager_only
@require_POST
def segment_freeze_view(request, pk: int):
    segment = _segment(request, pk)
    n = services.segment_freeze(actor=request.user, segment=segment)
    messages.success(request, _("Frozen: %(n)s customers.") % {"n": n})
    return redirect("campaigns:segment_edit", pk=segment.pk)


# Mail clients POST here without a session or CSRF token (RFC 8058 one-click); the signed token
# is the credential.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe_view(request, token: str):
    if request.method == "POST":
        try:
            services.unsubscribe(token=token)
        except Message.DoesNotExist as error:
            raise Http404 from error
        if request.POST.get("List-Unsubscribe") == "One-Click":
            return HttpResponse(status=200)
        return render(request, "campaigns/unsubscribed.html")
    # GET only asks: mail scanners follow links, and must not unsubscribe anyone.
    try:
        message_id = unsubscribe_message_id(token)
    except (signing.BadSignature, ValueError) as error:
        raise Http404 from error
    if not Message.objects.filter(pk=message_id).exists():
        raise Http404
    return render(request, "campaigns/unsubscribe_confirm.html", {"token": token})

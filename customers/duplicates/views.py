"""Pages of duplicates: the candidate list, "not a duplicate", the side-by-side merge, undo."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from crm.models import AuditAction
from customers.access import visible_customers
from customers.disclosure import card_read, daily_allowance, masked_contacts

from ..models import Customer
from . import selectors, services
from .merge import MERGE_FIELDS, customer_merge, customer_merge_undo, proposed_values, undo_deadline
from .models import CustomerMerge, DuplicatePair

BAD_INPUT = 400


def _merger(view):
    @login_required
    def wrapped(request, *args, **kwargs):
        if not request.user.has_perm("customers.view_duplicatepair"):
            raise Http404
        return view(request, *args, **kwargs)

    wrapped.__name__ = view.__name__
    return wrapped


@_merger
@require_GET
def duplicate_list(request):
    pairs = Paginator(selectors.duplicate_pairs(user=request.user), 50).get_page(
        request.GET.get("page")
    )
    # A list of people: masked for every role, as every list (customers/disclosure.py). An
    # unmasked page of pairs would be an export that nothing counts or audits; the merge screen
    # shows each card's contacts through the one rule.

    def shown(c: Customer) -> dict:
        return {
            "id": c.pk,
            "name": c.full_name or f"#{c.pk}",
            "birth_date": c.birth_date,
            **masked_contacts(c),
            "card": c.card_number or "",
            "store": c.home_store.name if c.home_store else "",
            "source": c.get_source_display(),
        }

    lines = [(p, shown(p.first), shown(p.second)) for p in pairs]
    return render(request, "customers/duplicates/list.html", {"pairs": pairs, "lines": lines})


@_merger
@require_POST
def duplicate_dismiss(request, pk: int):
    pair = DuplicatePair.objects.filter(pk=pk).first()
    if pair is None:
        raise Http404
    try:
        services.pair_dismiss(actor=request.user, pair=pair)
    except (DuplicatePair.DoesNotExist, PermissionDenied) as exc:
        raise Http404 from exc
    messages.success(request, _("Marked as not a duplicate."))
    return redirect("customers:duplicates_list")


def _ids(request) -> list[int]:
    raw = request.POST.get("ids") or request.GET.get("ids", "")
    try:
        ids = sorted({int(x) for x in raw.split(",") if x.strip()})
    except ValueError as exc:
        raise Http404 from exc
    if len(ids) < 2 or len(ids) > 20 or any(not 1 <= i < 2**63 for i in ids):
        raise Http404
    return ids


@_merger
def merge_screen(request):
    ids = _ids(request)
    cards = list(
        visible_customers(request.user)
        .filter(pk__in=ids)
        .select_related("home_store", "acquisition_channel", "assigned_manager")
        .prefetch_related("phones")
    )
    if len(cards) != len(ids):
        raise Http404
    if not request.user.has_perm("customers.change_customer"):
        raise Http404
    errors = []
    by_id = {c.pk: c for c in cards}
    # The oldest card stays unless the user picks another; its loyalty card stays with it.
    survivor = min(cards, key=lambda c: (c.created_at, c.pk)).pk
    proposed = proposed_values(cards)
    if request.method == "POST":
        posted = request.POST.get("survivor", "")
        choices = {
            name: request.POST[f"f_{name}"]
            for name in MERGE_FIELDS
            if request.POST.get(f"f_{name}", "").isdigit()
        }
        # Shown again as the user left them if the merge is refused.
        if posted.isdigit() and int(posted) in by_id:
            survivor = int(posted)
        proposed.update({k: int(v) for k, v in choices.items() if int(v) in by_id})
        try:
            merge = customer_merge(
                actor=request.user,
                survivor_id=int(posted) if posted.isdigit() else 0,
                absorbed_ids=[i for i in ids if str(i) != posted],
                choices={k: int(v) for k, v in choices.items()},
                request=request,
            )
        except ValidationError as exc:
            errors = exc.messages
        except (Customer.DoesNotExist, KeyError):
            errors = [_("Choose which card survives.")]
        else:
            messages.success(request, _("The cards are merged."))
            return redirect(f"/customers/{merge.survivor_id_value}/")
    elif by_id[survivor].card_number:
        proposed["card_number"] = survivor
    # Each card shown side by side is a card read, as on its own page: audited, and counted
    # against the daily allowance (masked beyond it), so the screen is no way around the cap.
    details = {
        c.pk: card_read(
            user=request.user,
            customer=c,
            action=AuditAction.CUSTOMER_VIEW,
            request=request,
            via="merge_screen",
        )
        for c in cards
    }
    if any(d.capped for d in details.values()):
        messages.warning(
            request,
            _(
                "Contact details are hidden: you have seen your daily limit of %(cap)s cards "
                "with contacts. It resets at midnight."
            )
            % {"cap": daily_allowance(request.user)},
        )
    rows = []
    for name in MERGE_FIELDS:
        field = Customer._meta.get_field(name)
        values = []
        for card in cards:
            if name == "email":
                value = details[card.pk].email
            elif name in {"address", "postal_code"}:
                value = getattr(details[card.pk], name)
            elif field.choices:
                value = getattr(card, f"get_{name}_display")()
            else:
                value = getattr(card, name)
            values.append((card.pk, "" if value is None else value))
        if all(v == "" for _pk, v in values):
            continue
        rows.append(
            {"name": name, "label": field.verbose_name, "values": values, "chosen": proposed[name]}
        )
    context = {
        "cards": cards,
        "rows": rows,
        "ids": ",".join(str(i) for i in ids),
        "survivor": survivor,
        "phones": {c.pk: details[c.pk].phones for c in cards},
        "errors": errors,
    }
    return render(
        request, "customers/duplicates/merge.html", context, status=BAD_INPUT if errors else 200
    )


@_merger
@require_POST
def merge_undo(request, pk: int):
    merge = CustomerMerge.objects.filter(pk=pk).first()
    if merge is None or not visible_customers(request.user).filter(pk=merge.survivor_id).exists():
        raise Http404
    try:
        customer_merge_undo(actor=request.user, merge=merge, request=request)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    except (PermissionDenied, Customer.DoesNotExist) as exc:
        raise Http404 from exc
    else:
        messages.success(request, _("The merge is undone."))
    return redirect(f"/customers/{merge.survivor_id_value}/")


@_merger
@require_GET
def merge_list(request):
    visible = visible_customers(request.user)
    merges = (
        CustomerMerge.objects.filter(survivor__in=visible, undone_at__isnull=True)
        .select_related("actor", "survivor")
        .order_by("-at")[:100]
    )
    lines = [(m, undo_deadline(m)) for m in merges]
    return render(request, "customers/duplicates/merges.html", {"lines": lines})

"""The shell's own pages: the admins' audit log and each user's own settings."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, IntegerField, Sum
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, TruncDate, TruncHour
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from .forms import AuditFilterForm
from .models import AuditAction, AuditEvent


def suspicious_activity(*, since: dt.datetime) -> dict[str, list[dict]]:
    """Users who opened more than N cards within one hour, and daily exports near the cap."""
    views_per_hour = settings.CLIENTELE_SUSPICIOUS_VIEWS_PER_HOUR
    bursts = list(
        AuditEvent.objects.filter(action=AuditAction.CUSTOMER_VIEW, at__gte=since)
        .annotate(hour=TruncHour("at"))
        .values("actor_id", "actor_name", "hour")
        .annotate(views=Count("id"))
        .filter(views__gt=views_per_hour)
        .order_by("-hour")[:50]
    )
    exports = list(
        AuditEvent.objects.filter(action=AuditAction.EXPORT, at__gte=since)
        .annotate(
            day=TruncDate("at"),
            rows=Cast(KeyTextTransform("rows", "details"), IntegerField()),
            cap=Cast(KeyTextTransform("cap", "details"), IntegerField()),
        )
        .values("actor_id", "actor_name", "day")
        .annotate(total=Sum("rows"), cap=Sum("cap") / Count("id"), exports=Count("id"))
        .order_by("-day")
    )
    share = settings.CLIENTELE_SUSPICIOUS_EXPORT_SHARE
    near_cap = [row for row in exports if row["cap"] and row["total"] >= share * row["cap"]][:50]
    return {"bursts": bursts, "near_cap": near_cap}


@login_required
@require_GET
def audit_log(request):
    if not request.user.has_perm("crm.view_auditevent"):
        raise Http404
    form = AuditFilterForm(request.GET or None)
    events = AuditEvent.objects.select_related("actor")
    since = timezone.now() - dt.timedelta(days=7)
    if form.is_valid():
        data = form.cleaned_data
        if data["user"]:
            events = events.filter(actor_name__iexact=data["user"].strip())
        if data["action"]:
            events = events.filter(action=data["action"])
        if data["date_from"]:
            since = timezone.make_aware(dt.datetime.combine(data["date_from"], dt.time.min))
            events = events.filter(at__gte=since)
        if data["date_to"]:
            until = timezone.make_aware(
                dt.datetime.combine(data["date_to"] + dt.timedelta(days=1), dt.time.min)
            )
            events = events.filter(at__lt=until)
    suspicious = suspicious_activity(since=since)
    burst_keys = {(row["actor_id"], row["hour"]) for row in suspicious["bursts"] if row["actor_id"]}
    cap_keys = {(row["actor_id"], row["day"]) for row in suspicious["near_cap"]}
    page = Paginator(events, 100).get_page(request.GET.get("page"))
    rows = []
    for event in page:
        local = timezone.localtime(event.at)
        flagged = (
            event.action == AuditAction.CUSTOMER_VIEW
            and (event.actor_id, event.at.replace(minute=0, second=0, microsecond=0)) in burst_keys
        ) or (event.action == AuditAction.EXPORT and (event.actor_id, local.date()) in cap_keys)
        rows.append((event, flagged))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "crm/audit_log.html",
        {
            "form": form,
            "page": page,
            "rows": rows,
            "suspicious": suspicious,
            "views_per_hour": settings.CLIENTELE_SUSPICIOUS_VIEWS_PER_HOUR,
            "query_string": query.urlencode(),
        },
    )


@login_required
def profile(request):
    """The user's own settings: the morning digest (opt-in) and its language."""
    from .forms import DigestForm
    from .models import StaffProfile

    # Built unsaved when missing: a refused form must leave nothing behind.
    staff_profile = StaffProfile.objects.filter(user=request.user).first() or StaffProfile(
        user=request.user
    )
    form = DigestForm(request.POST or None, instance=staff_profile)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Your settings are saved."))
        return redirect("profile")
    return render(
        request,
        "crm/profile.html",
        {"form": form},
        status=400 if request.method == "POST" else 200,
    )

"""The Today page: what a manager starts the day with (the site's start page)."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from customers.privacy.selectors import subject_access_overdue
from customers.selectors import today as today_reads
from customers.selectors.today import can_close_followup

FOLLOWUPS_PER_PAGE = 25


@login_required
@require_GET
def today_page(request):
    """Today: follow-ups due and overdue, birthdays this week, new leads, recently active VIPs."""
    user = request.user
    if not user.has_perm("customers.view_customer"):
        return render(request, "customers/today.html", {"no_role": True})
    today = timezone.localdate()
    counts = today_reads.followup_counts(user=user, today=today)
    paginator = Paginator(today_reads.open_followups(user=user, today=today), FOLLOWUPS_PER_PAGE)
    # The aggregate has just counted them; spare the paginator a second COUNT.
    paginator.count = counts["today"] + counts["overdue"]
    page = paginator.get_page(request.GET.get("page"))
    for item in page:
        item.can_close = can_close_followup(user, item)
    context = {
        "today": today,
        "followups": page,
        "due_today": [c for c in page if c.due_date == today],
        "overdue": [c for c in page if c.due_date < today],
        "counts": counts,
        "birthdays": today_reads.upcoming_birthdays(user=user, days=7),
        "leads": today_reads.leads(user=user, limit=10, new_since_days=30),
        "vips": today_reads.recent_vips(user=user),
        "sar_overdue": subject_access_overdue(user=user, today=today),
        "can_review_retention": user.has_perm("customers.erase_customer"),
    }
    if request.htmx and request.htmx.target == "followups":
        return render(request, "customers/_today_followups.html", context)
    return render(request, "customers/today.html", context)

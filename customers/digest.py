"""The morning digest: one email per opted-in user at the start of their store's day.

Celery beat runs `send_morning_digests` every 15 minutes; a user is due once their store's local
time (their first store's time zone, else the chain's) has passed DIGEST_HOUR and no digest went
out on that local date. The claim is a conditional UPDATE of `digest_sent_on`, so two workers or
two beat ticks never send the same user two digests; a send that fails clears the claim for the
next tick.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation

from crm.models import StaffProfile

from .selectors import today as today_reads

DIGEST_HOUR = 8
DIGEST_ITEMS = 10


def _local_now(profile: StaffProfile, now: dt.datetime) -> dt.datetime:
    store = profile.stores.order_by("id").first()
    zone = zoneinfo.ZoneInfo(str(store.timezone) if store else settings.TIME_ZONE)
    return now.astimezone(zone)


def digest_content(*, user, today: dt.date) -> dict:
    """What the digest tells `user`: follow-ups due and overdue, birthdays, new leads."""
    counts = today_reads.followup_counts(user=user, today=today)
    return {
        "user": user,
        "today": today,
        "counts": counts,
        "followups": today_reads.followups_due(user=user, today=today, limit=DIGEST_ITEMS),
        "birthdays": today_reads.upcoming_birthdays(user=user, days=0, limit=DIGEST_ITEMS),
        "leads": list(today_reads.leads(user=user, limit=DIGEST_ITEMS, new_since_days=1)),
        "site": settings.CLIENTELE_SITE_URL,
    }


def digest_send(*, profile: StaffProfile, now: dt.datetime | None = None) -> bool:
    """Send `profile`'s digest if it is due now; True when one was sent."""
    now = now or timezone.now()
    local = _local_now(profile, now)
    if not profile.morning_digest or local.hour < DIGEST_HOUR or not profile.user.email:
        return False
    today = local.date()
    with transaction.atomic():
        claimed = (
            StaffProfile.objects.filter(pk=profile.pk, morning_digest=True)
            .exclude(digest_sent_on=today)
            .update(digest_sent_on=today)
        )
    if not claimed:
        return False
    previous = profile.digest_sent_on
    try:
        with translation.override(profile.digest_language):
            context = digest_content(user=profile.user, today=today)
            subject = render_to_string("customers/digest_subject.txt", context).strip()
            text = render_to_string("customers/digest_email.txt", context)
            html = render_to_string("customers/digest_email.html", context)
        message = EmailMultiAlternatives(subject, text, to=[profile.user.email])
        message.attach_alternative(html, "text/html")
        message.send()
    except Exception:
        # Give the claim back so the next tick tries again, then let the task log the error.
        StaffProfile.objects.filter(pk=profile.pk, digest_sent_on=today).update(
            digest_sent_on=previous
        )
        raise
    return True


def morning_digests_send(*, now: dt.datetime | None = None) -> int:
    """Send every due digest; returns how many went out."""
    now = now or timezone.now()
    profiles = StaffProfile.objects.filter(
        morning_digest=True, user__is_active=True
    ).select_related("user")
    return sum(digest_send(profile=profile, now=now) for profile in profiles)

"""Reads for personal-data rights: the document in force, consent state, deadlines, retention."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from customers.access import visible_customers

from ..extensions import purchase_rows
from ..models import Contact, Customer, LifecycleStage
from .models import ProcessingConsent, ProcessingConsentDocument, SubjectAccessRequest


class ProcessingState:
    """The state of a card's consent to processing, as the card, the list and segments show it."""

    VALID = "valid"
    RECONSENT = "reconsent"
    MISSING = "missing"
    WITHDRAWN = "withdrawn"
    ERASED = "erased"
    CHOICES = [
        (VALID, _("Consent to processing given")),
        (RECONSENT, _("Re-consent needed (new document version)")),
        (MISSING, _("No consent to processing")),
        (WITHDRAWN, _("Consent to processing withdrawn")),
        (ERASED, _("Personal data erased")),
    ]


def processing_document_current(*, on: dt.date | None = None) -> ProcessingConsentDocument | None:
    """The consent document in force on a day (today by default): the latest effective one."""
    on = on or timezone.localdate()
    return ProcessingConsentDocument.objects.filter(effective_from__lte=on).first()


def reconsent_since(*, on: dt.date | None = None) -> dt.date | None:
    """Consent under a document older than this date must be given again (None: no such rule)."""
    on = on or timezone.localdate()
    return (
        ProcessingConsentDocument.objects.filter(effective_from__lte=on, requires_reconsent=True)
        .values_list("effective_from", flat=True)
        .first()
    )


def processing_state_q(state: str, *, on: dt.date | None = None) -> Q:
    """A filter on customers in one consent state, for the list, exports and segments."""
    since = reconsent_since(on=on)
    live = Q(erased_at__isnull=True, processing_withdrawn_at__isnull=True)
    given = live & Q(processing_document__isnull=False)
    outdated = Q(processing_document__effective_from__lt=since) if since else Q(pk__in=[])
    if state == ProcessingState.ERASED:
        return Q(erased_at__isnull=False)
    if state == ProcessingState.WITHDRAWN:
        return Q(erased_at__isnull=True, processing_withdrawn_at__isnull=False)
    if state == ProcessingState.MISSING:
        return live & Q(processing_document__isnull=True)
    if state == ProcessingState.RECONSENT:
        return given & outdated
    if state == ProcessingState.VALID:
        return given & ~outdated
    raise ValueError(state)


def processing_state(customer: Customer, *, on: dt.date | None = None) -> str:
    """The state of one card (the same rules as `processing_state_q`)."""
    if customer.erased_at is not None:
        return ProcessingState.ERASED
    if customer.processing_withdrawn_at is not None:
        return ProcessingState.WITHDRAWN
    if customer.processing_document_id is None:
        return ProcessingState.MISSING
    since = reconsent_since(on=on)
    if since and customer.processing_document.effective_from < since:
        return ProcessingState.RECONSENT
    return ProcessingState.VALID


def processing_consent_history(*, customer: Customer, limit: int = 50) -> list[ProcessingConsent]:
    """The customer's consents to processing and withdrawals, newest first."""
    return list(
        customer.processing_consents.select_related("document", "taken_by", "store")[:limit]
    )


def working_days_after(day: dt.date, days: int) -> dt.date:
    """The date `days` working days (Monday to Friday) after `day`; public holidays are not
    counted out, which makes the deadline earlier, never later, than the law's."""
    current = day
    left = days
    while left > 0:
        current += dt.timedelta(days=1)
        if current.weekday() < 5:
            left -= 1
    return current


def subject_access_overdue(*, user, today: dt.date | None = None) -> list[SubjectAccessRequest]:
    """Open subject-access requests past or at their deadline, for the admin's Today."""
    if not user.has_perm("customers.answer_subject_access"):
        return []
    today = today or timezone.localdate()
    return list(
        SubjectAccessRequest.objects.filter(
            answered_at__isnull=True,
            due_on__lte=today,
            customer__in=visible_customers(user),
        ).select_related("customer")[:50]
    )


def subject_access_open(*, customer: Customer) -> list[SubjectAccessRequest]:
    return list(customer.subject_access_requests.all()[:20])


def _years_ago(years: int, today: dt.date) -> dt.datetime:
    try:
        day = today.replace(year=today.year - years)
    except ValueError:  # 29 February
        day = today.replace(year=today.year - years, day=28)
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def retention_leads(*, user, today: dt.date | None = None) -> QuerySet[Customer]:
    """Leads with no purchase ever and no contact for N years, signed up before that too."""
    today = today or timezone.localdate()
    cutoff = _years_ago(settings.CLIENTELE_RETENTION_LEAD_YEARS, today)
    return (
        visible_customers(user)
        .filter(erased_at__isnull=True, lifecycle_stage=LifecycleStage.LEAD, created_at__lt=cutoff)
        .exclude(Exists(purchase_rows().filter(customer=OuterRef("pk"))))
        .exclude(Exists(Contact.objects.filter(customer=OuterRef("pk"), at__gte=cutoff)))
        .select_related("home_store")
        .order_by("created_at", "id")
    )


def retention_inactive(*, user, today: dt.date | None = None) -> QuerySet[Customer]:
    """Customers who bought once but not for M years, and were not contacted since either."""
    today = today or timezone.localdate()
    cutoff = _years_ago(settings.CLIENTELE_RETENTION_INACTIVE_YEARS, today)
    return (
        visible_customers(user)
        .filter(erased_at__isnull=True, created_at__lt=cutoff)
        .filter(Exists(purchase_rows().filter(customer=OuterRef("pk"))))
        .exclude(Exists(purchase_rows().filter(customer=OuterRef("pk"), purchased_at__gte=cutoff)))
        .exclude(Exists(Contact.objects.filter(customer=OuterRef("pk"), at__gte=cutoff)))
        .select_related("home_store")
        .order_by("created_at", "id")
    )

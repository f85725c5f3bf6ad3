"""Reads for the Today page and the leads list: follow-ups, birthdays, leads, recent VIPs."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Value
from django.utils import timezone

from customers.access import visible_customers

from ..extensions import purchase_rows
from ..models import Contact, Customer, LifecycleStage
from .listing import _birthday_mmdd, birthday_filter

# --- Today and leads ---------------------------------------------------------------------------


def open_followups(*, user, today: dt.date | None = None) -> QuerySet[Contact]:
    """Open follow-ups of visible customers due today or overdue: today's first (the user's own
    first among them), then overdue ones, most recently due first.

    Nothing is capped here: the Today page paginates, so an old backlog never hides today's
    items. Relies on the partial index `contact_open_followups`.
    """
    from django.db.models import Case, IntegerField, When

    today = today or timezone.localdate()
    return (
        Contact.objects.filter(
            customer__in=visible_customers(user).values("pk"),
            due_date__lte=today,
            done_at__isnull=True,
        )
        .select_related("customer", "staff")
        .annotate(
            mine=Q(staff=user),
            is_today=Case(
                When(due_date=today, then=Value(0)), default=Value(1), output_field=IntegerField()
            ),
        )
        .order_by("is_today", "-mine", "-due_date", "id")
    )


def can_close_followup(user, contact: Contact) -> bool:
    """Whoever owns a follow-up closes it; so may anyone allowed to change contacts (managers)."""
    return contact.staff_id == user.pk or user.has_perm("customers.change_contact")


def followups_due(*, user, today: dt.date | None = None, limit: int = 50) -> list[Contact]:
    """The first `limit` open follow-ups in Today's order (see `open_followups`)."""
    return list(open_followups(user=user, today=today)[:limit])


def followup_counts(*, user, today: dt.date | None = None) -> dict[str, int]:
    """How many open follow-ups are due today and how many are overdue (one aggregate)."""
    today = today or timezone.localdate()
    return Contact.objects.filter(
        customer__in=visible_customers(user).values("pk"),
        due_date__lte=today,
        done_at__isnull=True,
    ).aggregate(
        today=Count("id", filter=Q(due_date=today)),
        overdue=Count("id", filter=Q(due_date__lt=today)),
    )


def upcoming_birthdays(*, user, days: int = 7, limit: int = 50) -> list[Customer]:
    """Visible customers whose birthday falls within the next `days` days, soonest first."""
    today = timezone.localdate()
    order = {mmdd: i for i, mmdd in enumerate(_birthday_mmdd(days, today))}
    customers = list(
        birthday_filter(visible_customers(user), days, today)
        .filter(erased_at__isnull=True)
        .select_related("home_store")
        .order_by("birth_mmdd", "surname")[: limit * 2]
    )
    customers.sort(key=lambda c: (order.get(c.birth_mmdd, 999), c.surname))
    return customers[:limit]


def leads(*, user, limit: int = 50, new_since_days: int | None = None) -> QuerySet[Customer]:
    """People who contacted the store but never bought, with their last contact, newest first."""
    last_contact = Contact.objects.filter(customer=OuterRef("pk")).order_by("-at", "-id")
    customers = (
        visible_customers(user)
        .filter(erased_at__isnull=True)
        .filter(~Exists(purchase_rows().filter(customer=OuterRef("pk"))))
        .filter(Exists(Contact.objects.filter(customer=OuterRef("pk"))))
        .annotate(
            last_contact_at=last_contact.values("at")[:1],
            last_contact_topic=last_contact.values("topic")[:1],
            last_contact_channel=last_contact.values("channel")[:1],
        )
        .select_related("home_store")
    )
    if new_since_days is not None:
        since = timezone.now() - dt.timedelta(days=new_since_days)
        customers = customers.filter(
            Q(created_at__gte=since) | Q(lifecycle_stage=LifecycleStage.LEAD)
        )
    return customers.order_by(F("last_contact_at").desc(nulls_last=True), "-id")[:limit]


def recent_vips(*, user, days: int = 30, limit: int = 10) -> list[Customer]:
    """Visible customers of value class VIP who bought in the last `days` days, latest first.

    Empty until analytics has computed value classes.
    """
    since = timezone.now() - dt.timedelta(days=days)
    return list(
        visible_customers(user)
        .filter(metrics__value_class="VIP", metrics__last_purchase_at__gte=since)
        .filter(erased_at__isnull=True)
        .select_related("home_store", "metrics")
        .order_by("-metrics__last_purchase_at")[:limit]
    )

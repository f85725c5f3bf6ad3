"""Reads of segments and campaigns for the pages; customers always through visible_customers."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from campaigns.models import Campaign, Message, Segment
from customers.access import visible_customers


def can_manage(user) -> bool:
    return bool(
        user.is_authenticated and user.is_active and user.has_perm("campaigns.manage_campaigns")
    )


def campaign_list(*, user) -> QuerySet[Campaign]:
    """Campaigns with their message counts by state, in one query."""
    if not can_manage(user):
        return Campaign.objects.none()
    return (
        Campaign.objects.select_related("segment", "created_by")
        .annotate(
            n_total=Count("messages"),
            n_sent=Count("messages", filter=Q(messages__state="sent")),
            n_holdout=Count("messages", filter=Q(messages__state="holdout")),
        )
        .order_by("-created_at", "-id")
    )


def campaign_get(*, user, pk: int) -> Campaign:
    """One campaign for a user who may manage campaigns; DoesNotExist otherwise."""
    if not can_manage(user):
        raise Campaign.DoesNotExist
    return Campaign.objects.select_related("segment", "chain_date", "created_by").get(pk=pk)


def segment_list(*, user) -> QuerySet[Segment]:
    if not can_manage(user):
        return Segment.objects.none()
    return Segment.objects.select_related("owner").annotate(n_members=Count("members"))


def segment_get(*, user, pk: int) -> Segment:
    if not can_manage(user):
        raise Segment.DoesNotExist
    return Segment.objects.get(pk=pk)


def audience(*, campaign: Campaign) -> dict[str, int]:
    """Who a campaign would reach now: the segment as its author sees it, those of them who
    consent to the channel, and about how many of those the holdout keeps back."""
    from decimal import ROUND_HALF_UP, Decimal

    from campaigns.services.triggers import campaign_customers

    customers = campaign_customers(campaign)
    counts = customers.aggregate(
        total=Count("pk"),
        reachable=Count(
            "pk",
            filter=Q(
                **{f"consent_{campaign.channel}": True},
                do_not_contact=False,
                erased_at__isnull=True,
            ),
        ),
    )
    holdout = int(
        (Decimal(counts["reachable"]) * campaign.holdout_share).quantize(
            Decimal("1"), rounding=ROUND_HALF_UP
        )
    )
    return {
        "total": counts["total"],
        "reachable": counts["reachable"],
        "holdout": holdout,
        "to_send": counts["reachable"] - holdout,
    }


def progress(*, campaign: Campaign) -> dict[str, int]:
    """Message counts by state, and the share done (everything but the open states)."""
    counts = dict(
        Message.objects.filter(campaign=campaign)
        .order_by()
        .values_list("state")
        .annotate(n=Count("id"))
        .values_list("state", "n")
    )
    total = sum(counts.values())
    open_ = sum(counts.get(s, 0) for s in ("pending", "claimed", "sending", "deferred"))
    from campaigns.models import MessageState

    labels = dict(MessageState.choices)
    return {
        "counts": counts,
        # (code, label, count) in the order of the states, for the page.
        "states": [(code, labels[code], counts[code]) for code in labels if counts.get(code)],
        "total": total,
        "open": open_,
        # No messages yet is no progress, not 100 %.
        "percent": round(100 * (total - open_) / total) if total else 0,
        "deferred": counts.get("deferred", 0),
        "deferred_until": (
            Message.objects.filter(campaign=campaign, state="deferred")
            .order_by("deferred_until")
            .values_list("deferred_until", flat=True)
            .first()
            if counts.get("deferred")
            else None
        ),
        "quiet_hours": _quiet_hours_text(),
    }


def _quiet_hours_text() -> str:
    from campaigns.services.rules import quiet_hours

    hours = quiet_hours()
    return f"{hours[0]:02d}:00–{hours[1]:02d}:00" if hours else ""


def preview_customer(*, user, pk: int):
    """A customer to preview a message for, if the user may see them."""
    return visible_customers(user).select_related("home_store").get(pk=pk)

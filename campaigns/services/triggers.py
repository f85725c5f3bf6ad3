"""Birthday and holiday triggers: which messages a daily run creates.

Each run creates rows keyed by the occasion's year, so a trigger that runs twice on a day (or on
two days for the same occasion) adds nothing the second time.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from campaigns.models import Campaign, CampaignKind, CampaignStatus
from campaigns.services.delivery import materialise
from campaigns.services.segments import birthday_q, segment_customers


def campaign_customers(campaign: Campaign) -> QuerySet:
    """The customers the campaign's segment holds for its author."""
    return segment_customers(user=campaign.created_by, segment=campaign.segment)


def holiday_key(campaign: Campaign) -> str:
    return campaign.chain_date.key if campaign.chain_date_id else campaign.holiday_key


def run_trigger(*, campaign: Campaign, today: dt.date) -> int:
    """Create the messages a triggered campaign owes for `today`; returns how many are new."""
    from analytics.models import HolidayAffinity

    target = today + dt.timedelta(days=campaign.days_before)
    customers = campaign_customers(campaign)
    if campaign.kind == CampaignKind.BIRTHDAY:
        return materialise(
            campaign=campaign,
            occasion=str(target.year),
            customers=customers.filter(birthday_q(target, 0)),
        )
    if campaign.kind == CampaignKind.POINTS:
        return materialise(
            campaign=campaign,
            occasion=target.isoformat(),
            customers=customers.filter(points_expiring_on_q(target)),
        )
    if campaign.kind != CampaignKind.HOLIDAY:
        return 0
    key = holiday_key(campaign)
    if not key or f"{target:%m-%d}" != key:
        return 0
    if campaign.chain_date_id and campaign.chain_date.store_id:
        customers = customers.filter(home_store=campaign.chain_date.store_id)
    if campaign.affinity_only:
        customers = customers.filter(
            Exists(HolidayAffinity.objects.filter(customer=OuterRef("pk"), holiday=key))
        )
    return materialise(
        campaign=campaign,
        occasion=str(target.year),
        customers=customers,
        offer_holiday=key if campaign.affinity_only else "",
    )


def points_expiring_on_q(day: dt.date) -> Q:
    """Customers some of whose bonus points expire on `day` (the chain's local day): by its
    end more will have expired than by its start."""
    from django.db.models.expressions import RawSQL

    from loyalty.selectors import expiring_by_sql

    tz = timezone.get_current_timezone()
    start = dt.datetime.combine(day, dt.time.min, tzinfo=tz)
    by_end, params_end = expiring_by_sql(start + dt.timedelta(days=1))
    by_start, params_start = expiring_by_sql(start)
    # Constant statements with bound parameters.
    ending = RawSQL(by_end, params_end)  # noqa: S611
    ended = RawSQL(by_start, params_start)  # noqa: S611
    return Q(pk__in=ending) & ~Q(pk__in=ended)


def active_triggers() -> QuerySet:
    return Campaign.objects.filter(
        status=CampaignStatus.ACTIVE,
        kind__in=[CampaignKind.BIRTHDAY, CampaignKind.HOLIDAY, CampaignKind.POINTS],
    ).select_related("chain_date", "segment", "created_by")

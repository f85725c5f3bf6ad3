"""What the beat tasks do: run the daily triggers and resume interrupted sends."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from campaigns.models import Campaign, CampaignStatus
from campaigns.services.campaigns import campaign_start, enqueue_send
from campaigns.services.delivery import campaign_finish_if_done, has_claimable
from campaigns.services.triggers import active_triggers, run_trigger

log = logging.getLogger(__name__)


def daily_triggers_run(*, today: dt.date) -> dict[int, int]:
    """Run every active trigger for `today` (each in its own transaction); new rows per campaign."""
    created = {}
    for campaign in active_triggers():
        try:
            with transaction.atomic():
                created[campaign.pk] = run_trigger(campaign=campaign, today=today)
                enqueue_send(campaign.pk, settings.CLIENTELE_CAMPAIGN_PARALLEL_TASKS)
        except Exception:
            # One broken campaign must not stop every other birthday and holiday greeting.
            log.exception("trigger of campaign %s failed", campaign.pk)
    return created


def sweep_run(*, now: dt.datetime | None = None) -> list[int]:
    """Start scheduled campaigns that are due and queue sends wherever work is claimable."""
    now = now or timezone.now()
    for campaign in Campaign.objects.filter(status=CampaignStatus.SCHEDULED, scheduled_at__lte=now):
        try:
            campaign_start(actor=campaign.created_by, campaign=campaign, now=now)
        except ValidationError as error:
            # Edited into an invalid state after scheduling: park it for its author to fix.
            log.warning("scheduled campaign %s cannot start: %s", campaign.pk, error)
            Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.PAUSED)
    resumed = []
    for campaign_id in Campaign.objects.filter(
        status__in=[CampaignStatus.SENDING, CampaignStatus.ACTIVE]
    ).values_list("pk", flat=True):
        if has_claimable(campaign_id=campaign_id):
            with transaction.atomic():
                enqueue_send(campaign_id)
            resumed.append(campaign_id)
        else:
            campaign_finish_if_done(campaign_id=campaign_id)
    return resumed

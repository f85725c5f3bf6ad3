"""Thin Celery tasks: they take ids and call the campaign services."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.utils import timezone

log = logging.getLogger(__name__)


@shared_task(acks_late=True, ignore_result=True)
def send_campaign(campaign_id: int) -> None:
    """Send for a while, then hand over to a fresh task while work is left (rerunnable)."""
    from campaigns.services import delivery

    worker = delivery.worker_id(send_campaign.request.id or "")
    if delivery.send_some(campaign_id=campaign_id, worker=worker):
        send_campaign.apply_async(args=[campaign_id], queue=settings.CLIENTELE_CAMPAIGN_QUEUE)


@shared_task(acks_late=True, ignore_result=True)
def run_daily_triggers() -> None:
    """Create today's birthday and holiday messages and queue their sending."""
    from campaigns.services.sending import daily_triggers_run

    daily_triggers_run(today=timezone.localdate())


@shared_task(acks_late=True, ignore_result=True)
def sweep() -> None:
    """Start due scheduled campaigns and resume sends that stalled or have deferred work due."""
    from campaigns.services.sending import sweep_run

    sweep_run()

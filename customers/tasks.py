"""Celery tasks of the customer base: thin wrappers around services."""

from celery import shared_task


@shared_task
def send_morning_digests() -> int:
    """Beat, every 15 minutes: send the morning digests that are due (see customers.digest)."""
    from .digest import morning_digests_send

    return morning_digests_send()

"""Celery tasks of the customers app: thin, they call services."""

from celery import shared_task

from .privacy import services


@shared_task
def erase_due() -> int:
    """Erase the customers whose grace period after withdrawing consent has passed (beat)."""
    return services.erase_due()

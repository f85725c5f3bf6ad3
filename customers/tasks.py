"""Celery tasks of customers (found by autodiscovery): thin, they call services."""

from celery import shared_task

from .duplicates.tasks import find_duplicates_task
from .imports.tasks import import_resume_stale_task, import_run_task
from .privacy import services

__all__ = [
    "erase_due",
    "find_duplicates_task",
    "import_resume_stale_task",
    "import_run_task",
    "prune_name_tokens",
    "send_morning_digests",
]


@shared_task
def erase_due() -> int:
    """Erase the customers whose grace period after withdrawing consent has passed (beat)."""
    return services.erase_due()


@shared_task
def send_morning_digests() -> int:
    """Beat, every 15 minutes: send the morning digests that are due (see customers.digest)."""
    from .digest import morning_digests_send

    return morning_digests_send()


@shared_task
def prune_name_tokens() -> int:
    """Beat, nightly: drop from the name search dictionary the names no card carries."""
    from .services import name_tokens_prune

    return name_tokens_prune()

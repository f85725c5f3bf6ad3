"""Celery tasks of customers (found by autodiscovery): thin, they call services."""

from celery import shared_task

from .duplicates.tasks import find_duplicates_task
from .imports.tasks import import_resume_stale_task, import_run_task
from .privacy import services

__all__ = ["erase_due", "find_duplicates_task", "import_resume_stale_task", "import_run_task"]


@shared_task
def erase_due() -> int:
    """Erase the customers whose grace period after withdrawing consent has passed (beat)."""
    return services.erase_due()

"""Celery tasks of customers (found by autodiscovery): import and duplicates."""

from .duplicates.tasks import find_duplicates_task
from .imports.tasks import import_resume_stale_task, import_run_task

__all__ = ["find_duplicates_task", "import_resume_stale_task", "import_run_task"]

"""Thin Celery tasks of the import: run a job, and resume the ones whose worker died."""

from celery import shared_task
from django.conf import settings

from .engine import import_execute, stale_jobs


@shared_task(name="customers.import_run", acks_late=True)
def import_run_task(job_id: int) -> bool:
    return import_execute(job_id=job_id)


@shared_task(name="customers.import_resume_stale")
def import_resume_stale_task() -> list[int]:
    """Beat: hand every import whose worker stopped beating to a live worker."""
    jobs = stale_jobs()
    for job_id in jobs:
        import_run_task.apply_async(args=[job_id], queue=settings.CLIENTELE_IMPORT_QUEUE)
    return jobs

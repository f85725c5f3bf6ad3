"""Thin Celery task of the duplicate finder (nightly, from beat)."""

from celery import shared_task

from .finder import duplicates_find


@shared_task(name="customers.find_duplicates")
def find_duplicates_task() -> dict[str, int]:
    return duplicates_find()

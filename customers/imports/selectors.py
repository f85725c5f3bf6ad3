"""Reads of imports: the jobs a user may see, the report rows, the report file."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet

from .engine import job_data_rows
from .models import ImportJob, ImportRow
from .services import can_import, sees_all_stores


def import_jobs(*, user) -> QuerySet[ImportJob]:
    """Administrators see every import; anyone else with the permission sees their own."""
    if not can_import(user):
        return ImportJob.objects.none()
    jobs = ImportJob.objects.select_related("created_by", "store")
    if sees_all_stores(user):
        return jobs
    return jobs.filter(created_by=user)


def import_job_get(*, user, pk: int) -> ImportJob:
    return import_jobs(user=user).get(pk=pk)


def report_rows(*, job: ImportJob, phase: str, outcome: str = "") -> QuerySet[ImportRow]:
    rows = ImportRow.objects.filter(job=job, phase=phase).order_by("row_no")
    return rows.filter(outcome=outcome) if outcome else rows


def report_lines(*, job: ImportJob, phase: str) -> Iterator[tuple[list[Any], ImportRow | None]]:
    """Each original row with its outcome. Only the file's own cells are shown, never values
    read from the base, so the report reveals no contact data the uploader did not bring."""
    outcomes = {r.row_no: r for r in ImportRow.objects.filter(job=job, phase=phase)}
    for row_no, cells in job_data_rows(job):
        yield [row_no, *cells], outcomes.get(row_no)

"""Real files made in the test: XLSX through openpyxl, CSV in the encoding offices use."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from customers.imports.engine import import_execute
from customers.imports.models import ImportJob
from customers.imports.services import import_configure, import_start, import_upload


def make_csv(rows: list[list], *, encoding: str = "utf-8", delimiter: str = ";") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


def make_xlsx(rows: list[list]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def upload(user, name: str, content: bytes, *, kind: str = "customers", store=None) -> ImportJob:
    return import_upload(
        actor=user, kind=kind, upload=SimpleUploadedFile(name, content), store=store
    )


def run(job: ImportJob, user, *, dry_run: bool, mapping=None, options=None) -> ImportJob:
    """What the page's buttons do, with the Celery task's body called in this process."""
    if mapping is not None or options is not None:
        import_configure(
            actor=user, job=job, mapping=mapping or job.mapping, options=options or job.options
        )
    import_start(actor=user, job=job, dry_run=dry_run)
    assert import_execute(job_id=job.pk)
    job.refresh_from_db()
    return job


def outcomes(job: ImportJob, phase: str) -> dict[int, tuple[str, str]]:
    return {r.row_no: (r.outcome, r.message) for r in job.rows.filter(phase=phase)}

"""The per-row report as XLSX: the file's own columns plus the outcome, streamed to disk."""

from __future__ import annotations

import datetime as dt
import tempfile

from django.utils.translation import gettext as _

from .models import ImportJob, RowOutcome, outcome_choices
from .selectors import report_lines


def outcome_text(row, *, dry_run: bool = False) -> tuple[str, str]:
    if row is None:
        return _("Not processed"), ""
    label = dict(outcome_choices(dry_run=dry_run))[row.outcome]
    detail = row.message
    if row.outcome == RowOutcome.UPDATED and row.changes:
        from .customers import field_label

        detail = _("Changed: %(fields)s") % {
            "fields": ", ".join(field_label(name) for name in row.changes)
        }
    return str(label), detail


def report_xlsx(*, job: ImportJob, phase: str) -> str:
    """Write the report to a temporary file and return its path (the caller streams it)."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(_("Report"))
    sheet.append([_("Row"), *job.headers, _("Outcome"), _("Details")])
    for cells, row in report_lines(job=job, phase=phase):
        padded = cells + [""] * (len(job.headers) + 1 - len(cells))
        outcome, detail = outcome_text(row, dry_run=phase == "dry")
        sheet.append(
            [
                c if not isinstance(c, dt.datetime) or c.tzinfo is None else c.replace(tzinfo=None)
                for c in padded
            ]
            + [outcome, detail]
        )
    handle = tempfile.NamedTemporaryFile(suffix=".xlsx", delete=False)  # noqa: SIM115
    handle.close()
    book.save(handle.name)
    return handle.name

"""Pages of the import: upload, mapping and options, dry-run report, progress, run, revert."""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from . import selectors, services
from .engine import job_path, job_shape
from .forms import MappingForm, SaveMappingForm, UploadForm
from .models import ImportJob, ImportKind, ImportStatus, RowOutcome, outcome_choices
from .reader import read_head
from .report import outcome_text, report_xlsx

BAD_INPUT = 400


def preview_text(value: Any) -> str:
    """A cell of the preview as the office typed it, in the reader's formats: an Excel date as
    a date (with its time only when it has one), a decimal with the reader's decimal mark, but
    whole numbers without grouping (they are mostly phones and card numbers)."""
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return date_format(value.date(), "SHORT_DATE_FORMAT")
        return date_format(value, "SHORT_DATETIME_FORMAT")
    if isinstance(value, dt.date):
        return date_format(value, "SHORT_DATE_FORMAT")
    if isinstance(value, dt.time):
        return date_format(value, "TIME_FORMAT")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float | Decimal):
        return number_format(value, use_l10n=True, force_grouping=False)
    return str(value)


def _importer(view):
    """Only users with the import permission; anyone else gets 404."""

    @login_required
    def wrapped(request, *args, **kwargs):
        if not services.can_import(request.user):
            raise Http404
        return view(request, *args, **kwargs)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


def _job_or_404(request, pk: int) -> ImportJob:
    try:
        return selectors.import_job_get(user=request.user, pk=pk)
    except ImportJob.DoesNotExist as exc:
        raise Http404 from exc


def _form_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for name, errors in exc.message_dict.items():
            for error in errors:
                form.add_error(name if name in form.fields else None, error)
    else:
        for error in exc.messages:
            form.add_error(None, error)


@_importer
def import_list(request):
    form = UploadForm(request.POST or None, request.FILES or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            job = services.import_upload(
                actor=request.user,
                kind=form.cleaned_data["kind"],
                upload=form.cleaned_data["file"],
                store=form.cleaned_data["store"],
                saved_mapping=form.cleaned_data["saved_mapping"],
            )
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            return redirect(job.get_absolute_url())
    jobs = selectors.import_jobs(user=request.user)[:50]
    status = BAD_INPUT if form.errors else 200
    return render(
        request, "customers/imports/list.html", {"form": form, "jobs": jobs}, status=status
    )


def _job_context(request, job: ImportJob, form=None) -> dict:
    phase = (
        "run"
        if not job.dry_run or job.status in {ImportStatus.DONE, ImportStatus.REVERTED}
        else "dry"
    )
    outcome = request.GET.get("outcome", "")
    if outcome not in RowOutcome.values:
        outcome = ""
    rows = Paginator(selectors.report_rows(job=job, phase=phase, outcome=outcome), 50).get_page(
        request.GET.get("page")
    )
    try:
        _header, sample = read_head(job_path(job), job_shape(job))
    except (ValidationError, OSError):
        sample = []
    sample = [[preview_text(cell) for cell in row] for row in sample]
    return {
        "job": job,
        "form": form or MappingForm(job=job),
        "save_form": SaveMappingForm(),
        "sample": sample,
        "phase": phase,
        "rows": rows,
        "row_lines": [(r, *outcome_text(r, dry_run=phase == "dry")) for r in rows],
        "outcome": outcome,
        "outcomes": outcome_choices(dry_run=phase == "dry"),
        "is_customers": job.kind == ImportKind.CUSTOMERS,
        "can_configure": job.status
        in {ImportStatus.NEW, ImportStatus.CHECKED, ImportStatus.FAILED},
        "can_revert": job.kind == ImportKind.CUSTOMERS and job.status == ImportStatus.DONE,
        "revert_deadline": services.revert_deadline(job),
    }


@_importer
def import_detail(request, pk: int):
    job = _job_or_404(request, pk)
    if request.method == "POST":
        form = MappingForm(request.POST, job=job)
        if form.is_valid():
            try:
                services.import_configure(
                    actor=request.user, job=job, mapping=form.mapping(), options=form.options()
                )
                action = request.POST.get("action", "dry_run")
                services.import_start(actor=request.user, job=job, dry_run=action != "run")
            except ValidationError as exc:
                _form_errors(form, exc)
            except PermissionDenied as exc:
                raise Http404 from exc
            else:
                return redirect(job.get_absolute_url())
        return render(
            request,
            "customers/imports/detail.html",
            _job_context(request, job, form),
            status=BAD_INPUT,
        )
    return render(request, "customers/imports/detail.html", _job_context(request, job))


@_importer
@require_GET
def import_progress(request, pk: int):
    job = _job_or_404(request, pk)
    response = render(request, "customers/imports/_progress.html", {"job": job})
    if job.status not in {ImportStatus.DRY_RUN, ImportStatus.RUNNING}:
        # Polling only happens while it runs: the end reloads the page with the report.
        response["HX-Refresh"] = "true"
    return response


@_importer
@require_POST
def import_run(request, pk: int):
    job = _job_or_404(request, pk)
    try:
        services.import_start(actor=request.user, job=job, dry_run=False)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect(job.get_absolute_url())


@_importer
@require_POST
def import_save_mapping(request, pk: int):
    job = _job_or_404(request, pk)
    form = SaveMappingForm(request.POST)
    if form.is_valid():
        try:
            services.mapping_save(actor=request.user, job=job, name=form.cleaned_data["name"])
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("The mapping is saved."))
    else:
        messages.error(request, _("Give the mapping a name."))
    return redirect(job.get_absolute_url())


@_importer
@require_POST
def import_revert(request, pk: int):
    job = _job_or_404(request, pk)
    try:
        result = services.import_revert(actor=request.user, job=job)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request,
            _("Reverted: %(deleted)s cards removed, %(restored)s cards restored.")
            % {"deleted": len(result["deleted"]), "restored": len(result["restored"])},
        )
        if result["kept"] or result["left"]:
            messages.warning(
                request,
                _("Changed since the import and left as they are: %(ids)s")
                % {"ids": ", ".join(f"#{i}" for i in sorted(set(result["kept"] + result["left"])))},
            )
    return redirect(job.get_absolute_url())


@_importer
@require_GET
def import_report(request, pk: int):
    job = _job_or_404(request, pk)
    phase = request.GET.get("phase", "dry")
    if phase not in {"dry", "run"}:
        raise Http404
    path = report_xlsx(job=job, phase=phase)
    handle = open(path, "rb")  # noqa: SIM115 - FileResponse closes it
    os.unlink(path)  # the open handle keeps the data until the response is sent
    name = f"import-{job.pk}-{phase}.xlsx"
    return FileResponse(handle, as_attachment=True, filename=name)

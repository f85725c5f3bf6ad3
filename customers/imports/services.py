"""Writes of the import: upload, mapping, dry run, run, revert, saved mappings.

Who may import: the `import_customers` permission (Administrators by default); a user who does
not see the whole base (a store manager) imports only into their own stores, and must name one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from crm.audit import audit_record
from crm.models import AuditAction
from crm.tasks import enqueue
from customers.access import user_store_ids

from ..models import Customer
from ..services import customer_update
from . import reader
from .customers import MATCH_KEYS, POLICIES, UPDATABLE
from .mapping import guess_mapping, mapping_from_saved, targets_for
from .models import ImportJob, ImportKind, ImportMapping, ImportRow, ImportStatus, RowOutcome

MAX_UPLOAD_BYTES = 200 * 1024 * 1024


def can_import(user) -> bool:
    return bool(user and user.is_active and user.has_perm("customers.import_customers"))


def sees_all_stores(user) -> bool:
    return user.is_superuser or user.has_perm("customers.view_all_customers")


def _check_store(user, store) -> None:
    if sees_all_stores(user):
        return
    if store is None or store.pk not in user_store_ids(user):
        raise ValidationError({"store": [_("Choose one of your stores.")]})


def _enqueue(job_id: int) -> None:
    enqueue("customers.import_run", job_id, queue=settings.CLIENTELE_IMPORT_QUEUE)


@transaction.atomic
def import_upload(
    *,
    actor,
    kind: str,
    upload: UploadedFile,
    store=None,
    saved_mapping: ImportMapping | None = None,
) -> ImportJob:
    """Store an uploaded file as a new job with its detected shape and a guessed mapping."""
    if not can_import(actor):
        raise PermissionDenied
    if kind not in ImportKind.values:
        raise ValidationError({"kind": [_("Choose what the file contains.")]})
    _check_store(actor, store)
    if upload.size > MAX_UPLOAD_BYTES:
        raise ValidationError({"file": [_("The file is larger than 200 MB.")]})
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    job = ImportJob(
        kind=kind,
        file_name=(upload.name or "upload")[:255],
        file_hash=digest.hexdigest(),
        created_by=actor,
        store=store,
        options={
            "match_order": list(MATCH_KEYS),
            "policy": "both",
            "overwrite": [],
            "clear_empty": False,
        },
    )
    job.file.save(f"{digest.hexdigest()[:16]}-{job.file_name[-60:]}", upload, save=False)
    shape = reader.detect_shape(job.file.path, job.file_name)
    job.file_format, job.encoding, job.delimiter = (
        shape.file_format,
        shape.encoding,
        shape.delimiter,
    )
    header, _sample = reader.read_head(job.file.path, shape)
    job.headers = header
    job.mapping = (
        mapping_from_saved(header, saved_mapping.columns)
        if saved_mapping is not None and saved_mapping.kind == kind
        else guess_mapping(kind, header)
    )
    job.total_rows = reader.count_rows(job.file.path, shape)
    job.save()
    return job


def _clean_options(job: ImportJob, options: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    order = [k for k in options.get("match_order", MATCH_KEYS) if k in MATCH_KEYS]
    if not order:
        errors["match_order"] = [_("Choose at least one way to match cards.")]
    policy = options.get("policy", "both")
    if policy not in POLICIES:
        errors["policy"] = [_("Choose a policy.")]
    overwrite = [
        f for f in options.get("overwrite", []) if f in UPDATABLE or f.startswith("custom:")
    ]
    if errors:
        raise ValidationError(errors)
    return {
        "match_order": order,
        "policy": policy,
        "overwrite": overwrite,
        "clear_empty": bool(options.get("clear_empty")),
    }


def _clean_mapping(job: ImportJob, mapping: dict[str, str]) -> dict[str, str]:
    targets = {t.key: t for t in targets_for(job.kind)}
    clean: dict[str, str] = {}
    used: set[str] = set()
    errors: list[str] = []
    for index in range(len(job.headers)):
        target = mapping.get(str(index), "") or ""
        if target and target not in targets:
            errors.append(_("Column %(col)s: unknown field.") % {"col": job.headers[index]})
            continue
        if target and target in used and not targets[target].repeatable:
            errors.append(
                _("Two columns are mapped to %(field)s.") % {"field": targets[target].label}
            )
        used.add(target)
        clean[str(index)] = target
    if not any(clean.values()):
        errors.append(_("Map at least one column."))
    if errors:
        raise ValidationError({"mapping": errors})
    return clean


@transaction.atomic
def import_configure(
    *, actor, job: ImportJob, mapping: dict[str, str], options: dict[str, Any]
) -> ImportJob:
    """Set the confirmed mapping and options; only before the real run starts."""
    _own(actor, job)
    if job.status not in {ImportStatus.NEW, ImportStatus.CHECKED, ImportStatus.FAILED}:
        raise ValidationError(_("This import is already under way."))
    job.mapping = _clean_mapping(job, mapping)
    job.options = _clean_options(job, options) if job.kind == ImportKind.CUSTOMERS else {}
    job.save(update_fields=["mapping", "options"])
    return job


def _own(actor, job: ImportJob) -> None:
    if not can_import(actor):
        raise PermissionDenied
    if not sees_all_stores(actor) and job.created_by_id != actor.pk:
        raise PermissionDenied


@transaction.atomic
def import_start(*, actor, job: ImportJob, dry_run: bool) -> ImportJob:
    """Queue the dry run or the real run; the report of the phase starts afresh."""
    _own(actor, job)
    job = ImportJob.objects.select_for_update().get(pk=job.pk)
    allowed = {ImportStatus.NEW, ImportStatus.CHECKED, ImportStatus.FAILED}
    if job.status not in allowed:
        raise ValidationError(_("This import is already under way or finished."))
    if not dry_run and job.status == ImportStatus.FAILED and not job.dry_run:
        pass  # a failed real run resumes from its cursor
    else:
        job.rows.filter(phase="dry" if dry_run else "run").delete()
        job.processed_rows = 0
        job.counts = {}
    job.dry_run = dry_run
    job.language = translation.get_language() or settings.LANGUAGE_CODE
    job.status = ImportStatus.DRY_RUN if dry_run else ImportStatus.RUNNING
    job.started_at = timezone.now()
    job.error = ""
    job.claimed_by = ""
    job.save()
    _enqueue(job.pk)
    return job


@transaction.atomic
def mapping_save(*, actor, job: ImportJob, name: str) -> ImportMapping:
    """Save this job's mapping under a name (by header text) for the next file."""
    _own(actor, job)
    name = name.strip()[:100]
    if not name:
        raise ValidationError({"name": [_("Give the mapping a name.")]})
    columns = {job.headers[int(i)]: t for i, t in job.mapping.items() if t}
    saved, _created = ImportMapping.objects.update_or_create(
        kind=job.kind, name=name, defaults={"columns": columns, "created_by": actor}
    )
    return saved


def revert_deadline(job: ImportJob) -> dt.datetime | None:
    if job.finished_at is None:
        return None
    return job.finished_at + dt.timedelta(days=settings.CLIENTELE_IMPORT_REVERT_DAYS)


@transaction.atomic
def import_revert(*, actor, job: ImportJob) -> dict[str, list[int]]:
    """Undo a finished customer import within N days.

    Cards it created are deleted unless touched since (edited, bought, contacted): those are
    kept and listed. Fields it overwrote get their old values back where nobody changed them
    since. Returns {"deleted": [...], "kept": [...], "restored": [...], "left": [...]}.
    """
    _own(actor, job)
    job = ImportJob.objects.select_for_update().get(pk=job.pk)
    if job.kind != ImportKind.CUSTOMERS or job.status != ImportStatus.DONE:
        raise ValidationError(_("Only a finished customer import can be reverted."))
    if timezone.now() > revert_deadline(job):
        raise ValidationError(
            _("Imports can be reverted within %(days)s days.")
            % {"days": settings.CLIENTELE_IMPORT_REVERT_DAYS}
        )
    result: dict[str, list[int]] = {"deleted": [], "kept": [], "restored": [], "left": []}
    rows = job.rows.filter(phase="run")
    created = list(
        rows.filter(outcome=RowOutcome.CREATED, customer_id__isnull=False).values_list(
            "customer_id", flat=True
        )
    )
    # Touched: edited after the import, or with receipts or contacts of its own.
    tolerance = job.finished_at + dt.timedelta(seconds=1)
    candidates = Customer.objects.filter(pk__in=created)
    touched = (
        set(candidates.filter(updated_at__gt=tolerance).values_list("pk", flat=True))
        | set(candidates.filter(receipts__isnull=False).values_list("pk", flat=True))
        | set(candidates.filter(contacts__isnull=False).values_list("pk", flat=True))
    )
    deletable = [pk for pk in created if pk not in touched]
    for start in range(0, len(deletable), 1000):
        Customer.objects.filter(pk__in=deletable[start : start + 1000]).delete()
    result["deleted"] = sorted(deletable)
    result["kept"] = sorted(touched & set(created))
    for row in rows.filter(outcome=RowOutcome.UPDATED).order_by("-row_no"):
        customer = Customer.objects.filter(pk=row.customer_id).first()
        if customer is None:
            continue
        data = {}
        untouched = True
        for name, (before, after) in row.changes.items():
            if name in {"phones", "custom_fields"} or name.startswith("consent_"):
                continue
            current = getattr(customer, f"{name}_id" if name in _FK else name)
            current = current.isoformat() if isinstance(current, dt.date) else current
            if current != after:
                untouched = False
                continue
            data[name] = before
        phones = None
        if "phones" in row.changes:
            before, after = row.changes["phones"]
            now = list(customer.phones.values_list("number", flat=True))
            if now == after:
                phones = before
            else:
                untouched = False
        if data or phones is not None:
            if "birth_date" in data and data["birth_date"]:
                data["birth_date"] = dt.date.fromisoformat(data["birth_date"])
            for name in _FK & set(data):
                data[f"{name}_id"] = data.pop(name)
            fk_ids = {k: data.pop(k) for k in list(data) if k.endswith("_id")}
            for key, value in fk_ids.items():
                setattr(customer, key, value)
            if fk_ids:
                customer.save(update_fields=[*fk_ids, "updated_at"])
            customer_update(actor=actor, customer=customer, data=data, phones=phones)
            result["restored"].append(customer.pk)
        if not untouched:
            result["left"].append(customer.pk)
    job.status = ImportStatus.REVERTED
    job.reverted_at = timezone.now()
    job.save(update_fields=["status", "reverted_at"])
    audit_record(
        actor=actor,
        action=AuditAction.IMPORT_REVERT,
        obj=job,
        file_hash=job.file_hash,
        deleted=len(result["deleted"]),
        kept=result["kept"][:1000],
        restored=len(result["restored"]),
        left=result["left"][:1000],
    )
    return result


_FK = {"home_store", "acquisition_channel", "assigned_manager"}


def import_row_outcomes(job: ImportJob, phase: str) -> dict[int, ImportRow]:
    return {r.row_no: r for r in ImportRow.objects.filter(job=job, phase=phase)}

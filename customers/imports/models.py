"""What an import keeps: the job (file, mapping, options, progress), one row per outcome, and
saved mappings. Imported by `customers.models` so Django registers them with the app."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

__all__ = [
    "ImportJob",
    "ImportKind",
    "ImportMapping",
    "ImportRow",
    "ImportStatus",
    "RowOutcome",
    "outcome_choices",
]


class ImportKind(models.TextChoices):
    CUSTOMERS = "customers", _("Customers")
    HISTORY = "history", _("Purchase history")


class ImportStatus(models.TextChoices):
    NEW = "new", _("Uploaded")
    DRY_RUN = "dry_run", _("Checking (dry run)")
    CHECKED = "checked", _("Checked")
    RUNNING = "running", _("Importing")
    DONE = "done", _("Imported")
    FAILED = "failed", _("Failed")
    REVERTED = "reverted", _("Reverted")


class RowOutcome(models.TextChoices):
    # In their own context: the report counts rows ("Создано: 5, обновлено: 3"), where the
    # app's plain "Created" (a column, a date) reads otherwise in Russian.
    CREATED = "created", pgettext_lazy("import outcome", "Created")
    UPDATED = "updated", pgettext_lazy("import outcome", "Updated")
    UNCHANGED = "unchanged", pgettext_lazy("import outcome", "Unchanged")
    SKIPPED = "skipped", pgettext_lazy("import outcome", "Skipped")
    ERROR = "error", pgettext_lazy("import outcome", "Error")


# A dry run changes nothing: its report says what the run would do.
DRY_RUN_LABELS = {
    RowOutcome.CREATED: pgettext_lazy("import outcome", "Would create"),
    RowOutcome.UPDATED: pgettext_lazy("import outcome", "Would update"),
    RowOutcome.UNCHANGED: pgettext_lazy("import outcome", "Would not change"),
    RowOutcome.SKIPPED: pgettext_lazy("import outcome", "Would skip"),
    RowOutcome.ERROR: pgettext_lazy("import outcome", "Error"),
}


def outcome_choices(*, dry_run: bool) -> list[tuple[str, str]]:
    """The outcomes with the labels of a dry run's report or of a run's."""
    if dry_run:
        return [(value, DRY_RUN_LABELS[value]) for value in RowOutcome.values]
    return RowOutcome.choices


class ImportJob(models.Model):
    """One uploaded file and what was done with it; `processed_rows` is the resume cursor."""

    kind = models.CharField(_("kind"), max_length=10, choices=ImportKind)
    status = models.CharField(
        _("status"), max_length=10, choices=ImportStatus, default=ImportStatus.NEW
    )
    dry_run = models.BooleanField(_("dry run"), default=True)
    # The language of whoever started the run: its report lines and errors are written in it
    # (the worker has no request to take it from).
    language = models.CharField(_("language"), max_length=8, blank=True)
    file = models.FileField(_("file"), upload_to="imports/%Y/%m/")
    file_name = models.CharField(_("file name"), max_length=255)
    file_hash = models.CharField(_("SHA-256 of the file"), max_length=64)
    file_format = models.CharField(_("format"), max_length=4)  # csv | xlsx
    encoding = models.CharField(_("encoding"), max_length=20, blank=True)
    delimiter = models.CharField(_("separator"), max_length=1, blank=True)
    headers = models.JSONField(_("columns"), default=list)
    # {column index as text: target}; a target is a card field, "custom:<key>" or "" (ignored).
    mapping = models.JSONField(_("mapping"), default=dict)
    options = models.JSONField(_("options"), default=dict)
    store = models.ForeignKey(
        "crm.Store", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("uploaded at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    reverted_at = models.DateTimeField(_("reverted at"), null=True, blank=True)
    total_rows = models.PositiveIntegerField(_("rows"), null=True, blank=True)
    processed_rows = models.PositiveIntegerField(_("rows processed"), default=0)
    counts = models.JSONField(_("counts"), default=dict)
    error = models.TextField(_("error"), blank=True)
    # Claim of the worker running it: a worker that stops beating loses it to the sweeper.
    claimed_by = models.CharField(max_length=64, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("import")
        verbose_name_plural = _("imports")
        permissions = [("import_customers", _("Can import customers and purchase history"))]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="import_job_claims")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.file_name}"

    def get_absolute_url(self) -> str:
        return f"/customers/imports/{self.pk}/"

    @property
    def encoding_label(self) -> str:
        """The encoding as an office names it (Python's codec names are not theirs)."""
        return {"cp1251": "Windows-1251", "utf-8-sig": "UTF-8", "utf-8": "UTF-8"}.get(
            self.encoding, self.encoding
        )

    @property
    def delimiter_label(self) -> str:
        return str(_("tab")) if self.delimiter == "\t" else self.delimiter

    @property
    def percent(self) -> int:
        if not self.total_rows:
            return 100 if self.status in {ImportStatus.CHECKED, ImportStatus.DONE} else 0
        return min(100, self.processed_rows * 100 // self.total_rows)

    @property
    def phase(self) -> str:
        return "dry" if self.dry_run else "run"


class ImportRow(models.Model):
    """One row's (or one receipt's) outcome in one phase; the report and revert read it."""

    # Written a row per imported row, millions of them, always by the job's own worker: the
    # reference is Django's (a deleted job takes its rows with it), not a foreign-key check per
    # row at every batch's commit, and the unique (job, phase, row) index serves look-ups by
    # job, so the column needs no index of its own.
    job = models.ForeignKey(
        ImportJob,
        on_delete=models.CASCADE,
        related_name="rows",
        db_constraint=False,
        db_index=False,
    )
    phase = models.CharField(max_length=3)  # dry | run
    row_no = models.PositiveIntegerField(_("row"))
    outcome = models.CharField(_("outcome"), max_length=10, choices=RowOutcome)
    customer_id = models.BigIntegerField(_("customer"), null=True, blank=True)
    # For updates {field: [before, after]}; for errors {field: [messages]}.
    changes = models.JSONField(_("changes"), default=dict, blank=True)
    message = models.CharField(_("message"), max_length=500, blank=True)

    class Meta:
        ordering = ["job", "phase", "row_no"]
        verbose_name = _("import row")
        verbose_name_plural = _("import rows")
        constraints = [
            models.UniqueConstraint(fields=["job", "phase", "row_no"], name="import_row_once")
        ]
        indexes = [models.Index(fields=["job", "phase", "customer_id"], name="import_row_customer")]

    def __str__(self) -> str:
        return f"{self.row_no}: {self.outcome}"


class ImportMapping(models.Model):
    """A mapping saved under a name, to reuse for the next file of the same shape."""

    kind = models.CharField(_("kind"), max_length=10, choices=ImportKind)
    name = models.CharField(_("name"), max_length=100)
    # {header text as written in the file: target}
    columns = models.JSONField(_("columns"), default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("saved import mapping")
        verbose_name_plural = _("saved import mappings")
        constraints = [models.UniqueConstraint(fields=["kind", "name"], name="import_mapping_name")]

    def __str__(self) -> str:
        return self.name

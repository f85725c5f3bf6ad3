"""Consent to the processing of personal data (152-FZ art. 9) and subject-access requests.

Consent to processing is a document of its own, apart from the consent to mailings per channel
(`customers.models.ConsentEvent`): since 1 September 2025 it may not be a line in other terms.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class ProcessingConsentDocument(models.Model):
    """One version of the consent text the chain asks customers to agree to (kept by an admin)."""

    version = models.CharField(_("version"), max_length=20, unique=True)
    title = models.CharField(
        _("title"), max_length=200, default="Согласие на обработку персональных данных"
    )
    text = models.TextField(_("text"))
    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, default="ru"
    )
    effective_from = models.DateField(_("effective from"))
    requires_reconsent = models.BooleanField(
        _("requires re-consent"),
        default=False,
        help_text=_(
            "Customers who agreed to an earlier version must agree again to this one "
            "(for example when the purposes or the categories of data change)."
        ),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["-effective_from", "-id"]
        verbose_name = _("consent to processing document")
        verbose_name_plural = _("consent to processing documents")

    def __str__(self) -> str:
        return f"{self.title} ({self.version}, {self.effective_from:%d.%m.%Y})"


class ConsentMethod(models.TextChoices):
    PAPER = "paper", _("Paper form signed at the till")
    WEB_FORM = "web_form", _("Web form")
    IMPORT = "import", _("Import")
    TILL_SCREEN = "till_screen", _("Till screen")
    API = "api", _("API")
    # Withdrawal only: the one-click link in a message.
    LINK = "link", _("Customer's signed link")


class ProcessingConsent(models.Model):
    """One grant or withdrawal of consent to processing: append-only, the legal record.

    The card mirrors the current state (`Customer.processing_document`, `processing_consent_at`,
    `processing_withdrawn_at`) for fast segment and list filters.
    """

    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, related_name="processing_consents"
    )
    document = models.ForeignKey(
        ProcessingConsentDocument,
        on_delete=models.PROTECT,
        related_name="consents",
        verbose_name=_("document"),
    )
    granted = models.BooleanField(_("granted"))
    at = models.DateTimeField(_("when"))
    method = models.CharField(_("how"), max_length=12, choices=ConsentMethod)
    paper_number = models.CharField(_("paper form number"), max_length=40, blank=True)
    scan = models.FileField(_("scan of the signed form"), upload_to="consents/%Y/%m", blank=True)
    import_source = models.CharField(_("import source"), max_length=200, blank=True)
    taken_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("taken by"),
    )
    store = models.ForeignKey(
        "crm.Store", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.CharField(_("note"), max_length=300, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("consent to processing")
        verbose_name_plural = _("consents to processing")
        indexes = [models.Index(fields=["customer", "-at"], name="processing_consent_history")]
        permissions = [
            ("erase_customer", _("Can erase a customer's personal data")),
            ("answer_subject_access", _("Can answer subject-access requests")),
        ]

    def __str__(self) -> str:
        verb = "+" if self.granted else "-"
        return f"{verb}{self.document.version} {self.at:%Y-%m-%d}"


class SubjectAccessRequest(models.Model):
    """A customer's request for what the chain holds about them, with its legal deadline."""

    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, related_name="subject_access_requests"
    )
    received_on = models.DateField(_("received on"))
    due_on = models.DateField(_("answer due by"))
    received_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    file_sha256 = models.CharField(_("file hash"), max_length=64, blank=True)
    note = models.CharField(_("note"), max_length=300, blank=True)

    class Meta:
        ordering = ["due_on", "id"]
        verbose_name = _("subject-access request")
        verbose_name_plural = _("subject-access requests")
        indexes = [
            models.Index(
                fields=["due_on"], condition=Q(answered_at__isnull=True), name="sar_open_due"
            )
        ]

    def __str__(self) -> str:
        return f"#{self.customer_id} {self.received_on:%Y-%m-%d}"

"""Cross-cutting core: the chain's stores, who works where, and the audit log."""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from timezone_field import TimeZoneField


class Store(models.Model):
    """A shop of the chain: every app hangs its rows on one (receipts, home store, staff)."""

    code = models.SlugField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=200)
    city = models.CharField(_("city"), max_length=100, blank=True)
    address = models.CharField(_("address"), max_length=300, blank=True)
    timezone = TimeZoneField(_("time zone"), default="Europe/Moscow")
    currency = models.CharField(
        _("currency"), max_length=3, default=settings.CLIENTELE_DEFAULT_CURRENCY
    )
    opened_on = models.DateField(_("opened on"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("store")
        verbose_name_plural = _("stores")
        # Moved from `sales` without touching the database: the table keeps its name.
        db_table = "sales_store"

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class StaffProfile(models.Model):
    """What the roles table cannot say by itself: the stores a user works in, their export cap."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_profile"
    )
    stores = models.ManyToManyField(Store, blank=True, related_name="staff")
    export_daily_cap = models.PositiveIntegerField(
        _("export rows per day"),
        null=True,
        blank=True,
        help_text=_("Leave empty for the chain's default."),
    )
    # The morning digest (customers.digest): opt-in, in the user's language, once a day.
    morning_digest = models.BooleanField(
        _("morning digest by email"),
        default=False,
        help_text=_("Today's and overdue follow-ups, birthdays and new leads, each morning."),
    )
    digest_language = models.CharField(
        _("digest language"), max_length=8, choices=settings.LANGUAGES, default="ru"
    )
    digest_sent_on = models.DateField(_("digest last sent on"), null=True, blank=True)

    class Meta:
        verbose_name = _("staff profile")
        verbose_name_plural = _("staff profiles")
        # The Django admin shows the base unscoped by role in places Django owns (history,
        # delete confirmations), so it is a right of its own, held by Administrators.
        permissions = [("use_admin", _("Can use the Django admin"))]

    def __str__(self) -> str:
        return str(self.user)


class AuditAction(models.TextChoices):
    LOGIN = "login", _("Signed in")
    LOGIN_FAILED = "login_failed", _("Failed sign-in")
    LOGOUT = "logout", _("Signed out")
    CUSTOMER_VIEW = "customer_view", _("Opened a card")
    CUSTOMER_CREATE = "customer_create", _("Created a card")
    CUSTOMER_UPDATE = "customer_update", _("Edited a card")
    CUSTOMER_MERGE = "customer_merge", _("Merged cards")
    CUSTOMER_ERASE = "customer_erase", _("Erased personal data")
    CONSENT_CHANGE = "consent_change", _("Changed consent")
    EXPORT = "export", _("Exported")
    EXPORT_REFUSED = "export_refused", _("Export refused")
    ROLE_CHANGE = "role_change", _("Changed roles")
    API_KEY = "api_key", _("Managed an API key")
    CAMPAIGN_START = "campaign_start", _("Started a campaign")
    API_CARD_READ = "api_card_read", _("Read a card through the API")
    API_LIST_READ = "api_list_read", _("Read a customer list through the API")
    CONTACTS_CAPPED = "contacts_capped", _("Refused contacts over the daily cap")
    CAMPAIGN_PREVIEW = "campaign_preview", _("Previewed a campaign")
    CAMPAIGN_TEST_SEND = "campaign_test_send", _("Sent a test message")
    CAMPAIGN_PAUSE = "campaign_pause", _("Paused a campaign")
    CAMPAIGN_RESUME = "campaign_resume", _("Resumed a campaign")
    PERMISSION_CHANGE = "permission_change", _("Changed permissions")
    USER_DEACTIVATE = "user_deactivate", _("Deactivated a user")
    USER_STATUS = "user_status", _("Changed a user's status")
    SETTINGS_CHANGE = "settings_change", _("Changed settings")
    CATALOGUE_CHANGE = "catalogue_change", _("Changed the catalogue")
    IMPORT = "import", _("Imported a file")
    IMPORT_REVERT = "import_revert", _("Reverted an import")
    MERGE_UNDO = "merge_undo", _("Undid a merge")
    PROCESSING_CONSENT = "processing_consent", _("Recorded consent to processing")
    PROCESSING_WITHDRAWN = "processing_withdrawn", _("Withdrew consent to processing")
    SUBJECT_ACCESS = "subject_access", _("Answered a subject-access request")
    POINTS_ADJUST = "points_adjust", _("Adjusted bonus points")


class AuditEvent(models.Model):
    """Append-only record of who did what to which object, from where."""

    at = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_events",
        # `audit_actor_action` leads with the actor: a second index would only cost each write
        # (an import writes an audit row per new card).
        db_index=False,
    )
    # Kept apart from the FK so the log still names a deleted or unknown user.
    actor_name = models.CharField(_("user"), max_length=150, blank=True)
    action = models.CharField(_("action"), max_length=20, choices=AuditAction, db_index=True)
    object_type = models.CharField(_("object type"), max_length=50, blank=True)
    object_id = models.CharField(_("object id"), max_length=64, blank=True)
    ip_address = models.GenericIPAddressField(_("address"), null=True, blank=True)
    details = models.JSONField(_("details"), default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("audit event")
        verbose_name_plural = _("audit log")
        indexes = [
            models.Index(fields=["actor", "action", "-at"], name="audit_actor_action"),
            models.Index(fields=["object_type", "object_id"], name="audit_object"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_name} {self.action}"


class DisclosureDay(models.Model):
    """Unmasked contact rows (and export rows) one user has taken on one local day.

    The one counter `customers.disclosure` checks and raises in a single conditional upsert, so
    concurrent requests of one user are serialised on this row by PostgreSQL itself.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="disclosure_days"
    )
    day = models.DateField(_("day"))
    rows = models.PositiveIntegerField(_("rows"), default=0)

    class Meta:
        verbose_name = _("contact rows taken per day")
        verbose_name_plural = _("contact rows taken per day")
        constraints = [
            models.UniqueConstraint(fields=["user", "day"], name="disclosure_day_user_day"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.day}: {self.rows}"


class DisclosedCard(models.Model):
    """A card whose contacts a user saw unmasked today: opening it again costs nothing."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    # A plain id, not a foreign key: crm sits below customers, and the count must survive an
    # erasure or merge of the card.
    customer_id = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "day", "customer_id"], name="disclosed_card_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.day}: {self.customer_id}"


class ChainDate(models.Model):
    """A date the chain celebrates itself (a store's anniversary, the chain's birthday): part of
    the chain's calendar (crm.calendar), which analytics and campaigns read."""

    name = models.CharField(_("name"), max_length=200)
    month = models.PositiveSmallIntegerField(
        _("month"), validators=[MinValueValidator(1), MaxValueValidator(12)]
    )
    day = models.PositiveSmallIntegerField(
        _("day"), validators=[MinValueValidator(1), MaxValueValidator(31)]
    )
    store = models.ForeignKey(
        "crm.Store",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="chain_dates",
        help_text=_("Only this store's customers; empty for the whole chain."),
    )

    class Meta:
        # Moved from campaigns (issue 16), keeping its table.
        db_table = "campaigns_chaindate"
        ordering = ["month", "day", "name"]
        verbose_name = _("chain date")
        verbose_name_plural = _("chain dates")

    def __str__(self) -> str:
        return f"{self.day:02d}.{self.month:02d} {self.name}"

    @property
    def key(self) -> str:
        return f"{self.month:02d}-{self.day:02d}"


class UserApiToken(models.Model):
    """A person's API credential (`Authorization: Token <key>`), for integrations acting as
    that person (their roles, stores and masking apply). Only the key's SHA-256 is kept: the
    key is shown once, when issued (`crm.api_tokens.user_token_issue`); the prefix lets an
    admin tell keys apart. It ends with the person's password or account (crm.signals)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="api_tokens",
        verbose_name=_("user"),
    )
    name = models.CharField(_("name"), max_length=100, blank=True)
    prefix = models.CharField(_("key starts with"), max_length=12, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(_("issued"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name or self.prefix} ({self.user})"

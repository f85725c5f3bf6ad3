"""Segments, campaigns and one row per message to send (the chain's own dates: crm.ChainDate).

A message row is unique per (campaign, customer, occasion), so a daily trigger that runs twice,
or a send that is resumed after a crash, can never produce a second message for the same thing.
The life of a row is described in `campaigns.services.delivery`.
"""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

# The chain's own dates live with the chain's calendar (crm.calendar); campaigns point at them.
from crm.models import ChainDate


class Segment(models.Model):
    """A saved rule tree (see `campaigns.services.segments`), or a frozen list of customers."""

    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    rules = models.JSONField(_("rules"), default=dict, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="segments"
    )
    # A frozen segment is the list in SegmentMember, no longer its rules.
    frozen_at = models.DateTimeField(_("frozen at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        permissions = [("manage_campaigns", _("Can build segments and run campaigns"))]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("campaigns:segment_edit", args=[self.pk])

    @property
    def is_frozen(self) -> bool:
        return self.frozen_at is not None


class SegmentMember(models.Model):
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="members")
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, related_name="segment_memberships"
    )

    class Meta:
        verbose_name = _("segment member")
        verbose_name_plural = _("segment members")
        constraints = [
            models.UniqueConstraint(fields=["segment", "customer"], name="segment_member_unique")
        ]

    def __str__(self) -> str:
        return f"{self.segment_id}:{self.customer_id}"


class CampaignKind(models.TextChoices):
    ONE_OFF = "one_off", _("One-off")
    BIRTHDAY = "birthday", _("Birthday")
    HOLIDAY = "holiday", _("Holiday")
    POINTS = "points", _("Bonus points expire")


class MessageChannel(models.TextChoices):
    EMAIL = "email", _("Email")
    SMS = "sms", _("SMS")
    MESSENGER = "messenger", _("Messenger")


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SCHEDULED = "scheduled", _("Scheduled")
    ACTIVE = "active", _("Active trigger")
    SENDING = "sending", _("Sending")
    DONE = "done", _("Done")
    PAUSED = "paused", _("Paused")


class Campaign(models.Model):
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(
        _("kind"), max_length=10, choices=CampaignKind, default=CampaignKind.ONE_OFF
    )
    channel = models.CharField(
        _("channel"), max_length=10, choices=MessageChannel, default=MessageChannel.EMAIL
    )
    segment = models.ForeignKey(
        Segment,
        verbose_name=_("segment"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="campaigns",
        help_text=_("Empty: every customer the campaign's author can see."),
    )
    scheduled_at = models.DateTimeField(_("send at"), null=True, blank=True)
    days_before = models.PositiveSmallIntegerField(
        _("days before"), default=0, validators=[MaxValueValidator(60)]
    )
    # "MM-DD" of a date of the country calendar (`holidays` package), the same keys as
    # analytics.HolidayAffinity; a chain date instead when `chain_date` is set.
    holiday_key = models.CharField(_("holiday"), max_length=5, blank=True)
    chain_date = models.ForeignKey(
        ChainDate,
        verbose_name=_("chain date"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="campaigns",
        help_text=_("A date of the chain's own calendar, instead of a public holiday."),
    )
    affinity_only = models.BooleanField(
        _("only customers with affinity for the holiday"), default=False
    )
    subject = models.CharField(_("email subject"), max_length=200, blank=True)
    body_html = models.TextField(_("email body (HTML)"), blank=True)
    body_text = models.TextField(_("SMS / messenger text"), blank=True)
    holdout_share = models.DecimalField(
        _("holdout share"),
        max_digits=4,
        decimal_places=3,
        default=Decimal("0.100"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("0.9"))],
    )
    attribution_days = models.PositiveSmallIntegerField(
        _("attribution window, days"),
        default=14,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
    )
    is_marketing = models.BooleanField(
        _("marketing"),
        default=True,
        help_text=_("Marketing messages count toward the frequency cap; transactional do not."),
    )
    status = models.CharField(
        _("status"), max_length=10, choices=CampaignStatus, default=CampaignStatus.DRAFT
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        constraints = [
            models.CheckConstraint(
                condition=Q(holdout_share__gte=0) & Q(holdout_share__lte=Decimal("0.9")),
                name="campaign_holdout_share_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("campaigns:detail", args=[self.pk])

    @property
    def is_triggered(self) -> bool:
        return self.kind != CampaignKind.ONE_OFF


class MessageState(models.TextChoices):
    PENDING = "pending", _("Pending")
    CLAIMED = "claimed", _("Claimed by a worker")
    SENDING = "sending", _("Being handed to the provider")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    SKIPPED = "skipped", _("Skipped")
    DEFERRED = "deferred", _("Deferred")
    HOLDOUT = "holdout", _("Holdout")
    UNKNOWN = "unknown", _("Unknown: worker died while sending")


class SkipReason(models.TextChoices):
    NO_CONSENT = "no_consent", _("No consent for the channel")
    DO_NOT_CONTACT = "do_not_contact", _("Do not contact")
    ERASED = "erased", _("Personal data erased")
    NO_ADDRESS = "no_address", _("No address for the channel")
    FREQUENCY_CAP = "frequency_cap", _("Frequency cap reached")


class Message(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="messages")
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, related_name="campaign_messages"
    )
    # "once" for a one-off campaign, the year for a yearly trigger ("2026").
    occasion = models.CharField(_("occasion"), max_length=20)
    channel = models.CharField(_("channel"), max_length=10, choices=MessageChannel)
    is_marketing = models.BooleanField(default=True)
    state = models.CharField(
        _("state"), max_length=10, choices=MessageState, default=MessageState.PENDING
    )
    skip_reason = models.CharField(_("skip reason"), max_length=16, choices=SkipReason, blank=True)
    deferred_until = models.DateTimeField(_("deferred until"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=100, blank=True)
    # Set when the row becomes `sending`: the frequency cap counts in-flight messages too.
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    provider_id = models.CharField(_("provider id"), max_length=200, blank=True)
    # The holiday's affinity category offered in the message, when the campaign uses one.
    offer_category = models.ForeignKey(
        "sales.Category", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    unsubscribed_at = models.DateTimeField(_("unsubscribed at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        ordering = ["id"]
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "customer", "occasion"], name="message_unique_occasion"
            ),
        ]
        indexes = [
            models.Index(
                fields=["campaign", "state", "id"],
                condition=Q(state__in=["pending", "claimed", "deferred", "sending"]),
                name="message_open_work",
            ),
            models.Index(
                fields=["customer", "sent_at"],
                condition=Q(is_marketing=True, sent_at__isnull=False),
                name="message_frequency_cap",
            ),
            models.Index(fields=["campaign", "state"], name="message_campaign_state"),
            # The claim's next batch (delivery.CLAIM_SQL), without reading sent rows.
            models.Index(
                fields=["campaign", "id"], condition=Q(state="pending"), name="message_pending"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}/{self.customer_id}/{self.occasion}: {self.state}"

    @property
    def message_id_header(self) -> str:
        """The idempotency key of this message as an RFC 5322 Message-ID."""
        domain = getattr(settings, "CLIENTELE_MESSAGE_ID_DOMAIN", "clientele.local")
        return f"<clientele.{self.campaign_id}.{self.pk}@{domain}>"

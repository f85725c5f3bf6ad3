"""The bonus programme: its settings, tiers, product rules, promotions, and the points ledger.

A customer's points live in one `Account`; every change is one append-only `Entry`. The
account's `available`, `pending` and `debt` columns are the sums of the entries' deltas, kept
by a statement-level trigger (migration 0001) and guarded by CHECK constraints, so the database
itself refuses any insert that would take a balance below zero, whoever writes it.
"""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

POINTS = {"max_digits": 14, "decimal_places": 2}
RATE = {"max_digits": 6, "decimal_places": 4}
ZERO = Decimal("0")


class Programme(models.Model):
    """The chain's one programme (a single row, id 1); an admin edits it."""

    is_active = models.BooleanField(_("programme active"), default=True)
    max_burn_share = models.DecimalField(
        _("share of a receipt payable with points"),
        **RATE,
        default=Decimal("0.30"),
        validators=[MinValueValidator(ZERO), MaxValueValidator(Decimal(1))],
    )
    hold_days = models.PositiveSmallIntegerField(_("hold period, days"), default=14)
    earn_months = models.PositiveSmallIntegerField(
        _("earned points expire after, months"), default=12
    )
    bonus_days = models.PositiveSmallIntegerField(_("bonus points expire after, days"), default=60)
    welcome_bonus = models.DecimalField(_("welcome bonus"), **POINTS, default=Decimal("200"))
    birthday_bonus = models.DecimalField(_("birthday bonus"), **POINTS, default=Decimal("300"))
    birthday_window_days = models.PositiveSmallIntegerField(
        _("birthday bonus valid, days around the birthday"), default=7
    )

    class Meta:
        verbose_name = _("bonus programme")
        verbose_name_plural = _("bonus programme")
        constraints = [
            models.CheckConstraint(
                condition=Q(max_burn_share__gte=0) & Q(max_burn_share__lte=1),
                name="loyalty_programme_burn_share",
            ),
            models.CheckConstraint(
                condition=Q(welcome_bonus__gte=0) & Q(birthday_bonus__gte=0),
                name="loyalty_programme_bonus_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return str(_("Bonus programme"))


class Tier(models.Model):
    name = models.CharField(_("name"), max_length=60, unique=True)
    threshold = models.DecimalField(
        _("12-month spend from"),
        max_digits=14,
        decimal_places=2,
        unique=True,
        validators=[MinValueValidator(ZERO)],
    )
    earn_rate = models.DecimalField(
        _("earn rate"),
        **RATE,
        validators=[MinValueValidator(ZERO), MaxValueValidator(Decimal(1))],
        help_text=_("Share of the money paid returned as points, e.g. 0.05 for 5%."),
    )

    class Meta:
        ordering = ["threshold"]
        verbose_name = _("tier")
        verbose_name_plural = _("tiers")
        constraints = [
            models.CheckConstraint(
                condition=Q(threshold__gte=0) & Q(earn_rate__gte=0) & Q(earn_rate__lte=1),
                name="loyalty_tier_values",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ProductRule(models.Model):
    """A category (with its subtree) or one SKU excluded from earning or burning, or with its own
    rate. A SKU rule beats a category rule; a deeper category beats a shallower one."""

    category = models.ForeignKey(
        "sales.Category", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    product = models.ForeignKey(
        "sales.Product", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    no_earn = models.BooleanField(_("earns no points"), default=False)
    no_burn = models.BooleanField(_("cannot be paid with points"), default=False)
    earn_rate = models.DecimalField(
        _("own earn rate"),
        **RATE,
        null=True,
        blank=True,
        validators=[MinValueValidator(ZERO), MaxValueValidator(Decimal(1))],
        help_text=_("Empty: the tier's rate."),
    )

    class Meta:
        verbose_name = _("product rule")
        verbose_name_plural = _("product rules")
        constraints = [
            models.CheckConstraint(
                condition=(Q(category__isnull=True) & Q(product__isnull=False))
                | (Q(category__isnull=False) & Q(product__isnull=True)),
                name="loyalty_rule_one_target",
            ),
            models.UniqueConstraint(fields=["category"], name="loyalty_rule_unique_category"),
            models.UniqueConstraint(fields=["product"], name="loyalty_rule_unique_product"),
        ]

    def __str__(self) -> str:
        return str(self.product or self.category)


class Promotion(models.Model):
    """A time-boxed multiplier of earned points (a double-points week)."""

    name = models.CharField(_("name"), max_length=120)
    starts_at = models.DateTimeField(_("starts"))
    ends_at = models.DateTimeField(_("ends"))
    multiplier = models.DecimalField(
        _("multiplier"),
        max_digits=5,
        decimal_places=2,
        validators=[MinValueValidator(Decimal(1)), MaxValueValidator(Decimal(10))],
    )

    class Meta:
        ordering = ["-starts_at"]
        verbose_name = _("points promotion")
        verbose_name_plural = _("points promotions")
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="loyalty_promotion_period"
            ),
            models.CheckConstraint(
                condition=Q(multiplier__gte=1) & Q(multiplier__lte=10),
                name="loyalty_promotion_multiplier",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Account(models.Model):
    """A customer's points. The three sums are written only by the ledger trigger."""

    customer = models.OneToOneField(
        "customers.Customer", on_delete=models.CASCADE, related_name="loyalty"
    )
    # No index: nothing looks accounts up by tier (a tier's deletion, rare, scans them), and
    # with one the first placement of each account (and every later change of tier) could not
    # be a HOT update: every index of the table took a new entry per booked account.
    tier = models.ForeignKey(
        Tier,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="accounts",
        db_index=False,
    )
    spend_12m = models.DecimalField(_("12-month spend"), **POINTS, default=ZERO)
    available = models.DecimalField(_("available points"), **POINTS, default=ZERO, editable=False)
    pending = models.DecimalField(_("pending points"), **POINTS, default=ZERO, editable=False)
    debt = models.DecimalField(_("points debt"), **POINTS, default=ZERO, editable=False)
    created_at = models.DateTimeField(_("opened"), auto_now_add=True)

    class Meta:
        verbose_name = _("points account")
        verbose_name_plural = _("points accounts")
        constraints = [
            models.CheckConstraint(
                condition=Q(available__gte=0) & Q(pending__gte=0) & Q(debt__gte=0),
                name="loyalty_account_never_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.available}"


class EntryKind(models.TextChoices):
    EARN = "earn", _("Earned")
    ACTIVATE = "activate", _("Activated")
    REDEEM = "redeem", _("Redeemed")
    REVERSE = "reverse", _("Taken back on a return")
    RESTORE = "restore", _("Given back on a return")
    EXPIRE = "expire", _("Expired")
    ADJUST = "adjust", _("Adjusted")


class Entry(models.Model):
    """One append-only row of the ledger: deltas of available, pending and debt."""

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="entries", db_index=False
    )
    kind = models.CharField(_("operation"), max_length=10, choices=EntryKind)
    available_delta = models.DecimalField(_("available"), **POINTS, default=ZERO)
    pending_delta = models.DecimalField(_("pending"), **POINTS, default=ZERO)
    debt_delta = models.DecimalField(_("debt"), **POINTS, default=ZERO)
    at = models.DateTimeField(_("when"))
    created_at = models.DateTimeField(_("written"), auto_now_add=True)
    receipt = models.ForeignKey(
        "sales.Receipt",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    return_doc = models.ForeignKey(
        "sales.Return",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    # The earn row an activation or a reversal belongs to.
    source = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="followers",
        db_index=False,
    )
    activates_at = models.DateTimeField(_("activates"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    # "welcome", "birthday:2026": a bonus is granted once per key.
    bonus_key = models.CharField(max_length=32, blank=True, default="")
    reason = models.CharField(_("reason"), max_length=300, blank=True, default="")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        permissions = [("adjust_points", _("Can adjust bonus points by hand"))]
        constraints = [
            models.UniqueConstraint(
                fields=["source"], condition=Q(kind="activate"), name="loyalty_entry_one_activation"
            ),
            models.UniqueConstraint(
                fields=["account", "bonus_key"],
                condition=~Q(bonus_key=""),
                name="loyalty_entry_bonus_once",
            ),
            models.UniqueConstraint(
                fields=["receipt", "kind"],
                condition=Q(kind__in=["earn", "redeem"]),
                name="loyalty_entry_once_per_receipt",
            ),
        ]
        indexes = [
            models.Index(fields=["account", "at"], name="loyalty_entry_account_at"),
            # The activation run reads pending earn rows that have come due.
            models.Index(
                fields=["activates_at"],
                condition=Q(kind="earn", pending_delta__gt=0),
                name="loyalty_entry_due",
            ),
            models.Index(
                fields=["expires_at"],
                condition=Q(available_delta__gt=0),
                name="loyalty_entry_expiring",
            ),
            # Most rows name no return and no source: partial, an earn row writes two index
            # entries fewer (the look-ups, foreign-key checks included, are by a value).
            models.Index(
                fields=["return_doc"],
                condition=Q(return_doc__isnull=False),
                name="loyalty_entry_return_partial",
            ),
            models.Index(
                fields=["source"],
                condition=Q(source__isnull=False),
                name="loyalty_entry_source_partial",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.kind} {self.available_delta}/{self.pending_delta}"


class ReceiptPoints(models.Model):
    """What the programme did with one receipt: the till's answer, kept for replays.

    `lines` holds per receipt line {"earned", "redeemed"} so a return can take back exactly
    the points of the lines it returns. `refused` flags an offline receipt whose redemption no
    longer fitted the balance when it arrived: stored, never lost, for a person to look at.
    """

    receipt = models.OneToOneField("sales.Receipt", on_delete=models.PROTECT, related_name="points")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="receipts")
    requested = models.DecimalField(_("points requested"), **POINTS, default=ZERO)
    redeemed = models.DecimalField(_("points redeemed"), **POINTS, default=ZERO)
    earned = models.DecimalField(_("points earned"), **POINTS, default=ZERO)
    refused = models.BooleanField(_("redemption refused"), default=False)
    available_after = models.DecimalField(**POINTS, default=ZERO)
    pending_after = models.DecimalField(**POINTS, default=ZERO)
    tier_name = models.CharField(max_length=60, blank=True, default="")
    lines = models.JSONField(default=dict)

    class Meta:
        verbose_name = _("receipt points")
        verbose_name_plural = _("receipt points")
        indexes = [
            models.Index(
                fields=["refused"], condition=Q(refused=True), name="loyalty_receipt_refused"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.receipt_id}: -{self.redeemed} +{self.earned}"

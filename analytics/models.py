"""Per-customer metrics, holiday affinity, the admin's analytics settings and the CLV model fits.

Everything here is written by `analytics.metrics` in set-based SQL; nothing else writes it.
"""

from decimal import Decimal

from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from crm import calendar
from sales.models import MONEY


class ValueClass(models.TextChoices):
    VIP = "VIP", _("VIP")
    A = "A", _("A: potential VIP")
    B = "B", _("B: fast-growing")
    C = "C", _("C: the mass")
    D = "D", _("D: better served elsewhere")


class RfmSegment(models.TextChoices):
    CHAMPIONS = "champions", _("Champions")
    LOYAL = "loyal", _("Loyal")
    POTENTIAL_LOYALIST = "potential_loyalist", _("Potential loyalist")
    NEW = "new", _("New")
    PROMISING = "promising", _("Promising")
    NEEDS_ATTENTION = "needs_attention", _("Needs attention")
    ABOUT_TO_SLEEP = "about_to_sleep", _("About to sleep")
    AT_RISK = "at_risk", _("At risk")
    CANT_LOSE = "cant_lose", _("Can't lose")
    HIBERNATING = "hibernating", _("Hibernating")


class ClvBasis(models.TextChoices):
    MODEL = "model", _("BG/NBD and Gamma-Gamma model")
    FALLBACK = "fallback", _("Fallback: trailing margin rate")


class CustomerMetrics(models.Model):
    """One row per customer: what they bought, what they are worth, what they will be worth.

    Customers who never bought have a row with zero counts and no class, score or prediction.
    """

    customer = models.OneToOneField(
        "customers.Customer", on_delete=models.CASCADE, primary_key=True, related_name="metrics"
    )
    first_purchase_at = models.DateTimeField(_("first purchase"), null=True)
    last_purchase_at = models.DateTimeField(_("last purchase"), null=True)
    receipts = models.PositiveIntegerField(_("receipts"), default=0)
    receipts_window = models.PositiveIntegerField(_("receipts in the window"), default=0)
    revenue = models.DecimalField(_("revenue net of returns"), **MONEY, default=0)
    revenue_window = models.DecimalField(_("revenue in the window"), **MONEY, default=0)
    margin = models.DecimalField(_("margin net of returns"), **MONEY, default=0)
    margin_window = models.DecimalField(_("margin in the window"), **MONEY, default=0)
    average_receipt = models.DecimalField(_("average receipt"), **MONEY, null=True)
    recency_score = models.PositiveSmallIntegerField(_("R"), null=True)
    frequency_score = models.PositiveSmallIntegerField(_("F"), null=True)
    monetary_score = models.PositiveSmallIntegerField(_("M"), null=True)
    rfm_segment = models.CharField(_("RFM segment"), max_length=20, choices=RfmSegment, blank=True)
    value_class = models.CharField(_("value class"), max_length=3, choices=ValueClass, blank=True)
    historical_lcv = models.DecimalField(_("historical lifetime value"), **MONEY, default=0)
    predicted_clv = models.DecimalField(_("predicted lifetime value"), **MONEY, null=True)
    # Where predicted_clv comes from: the models (a fit that passed its sanity gate) or the
    # plainly labelled fallback, the trailing margin rate over the horizon (analytics.clv.gate).
    clv_basis = models.CharField(_("CLV basis"), max_length=8, choices=ClvBasis, blank=True)
    predicted_value_12m = models.DecimalField(_("predicted 12-month value"), **MONEY, null=True)
    p_alive = models.FloatField(_("probability of being alive"), null=True)
    expected_purchases_90d = models.FloatField(_("expected purchases in 90 days"), null=True)
    contacts_window = models.PositiveIntegerField(_("contacts in the window"), default=0)
    contact_effort = models.DecimalField(
        _("contacts per 1,000 of revenue"), max_digits=12, decimal_places=3, null=True
    )
    computed_at = models.DateTimeField(_("computed at"))

    class Meta:
        verbose_name = _("customer metrics")
        verbose_name_plural = _("customer metrics")
        permissions = [("view_dashboard", _("Can view the analytics dashboard"))]
        indexes = [
            models.Index(fields=["value_class"], name="metrics_value_class"),
            models.Index(fields=["rfm_segment"], name="metrics_rfm_segment"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.value_class or '-'}"

    def clv_fallback_reasons(self) -> list[str]:
        """Why the card shows the fallback rather than the model, in the reader's language."""
        if self.clv_basis != ClvBasis.FALLBACK:
            return []
        fit = ClvModelFit.objects.first()
        if fit is None:
            return [str(_("No CLV model has been fitted yet."))]
        return fit.translated_gate_notes() or fit.translated_notes()


class FavouriteCategories(models.Model):
    """A customer's top three categories by spend net of returns, as [{"id", "name"}].

    Apart from `CustomerMetrics`, like holiday affinity, because they depend on nothing but
    the customer's own history: the nightly run replaces the rows of the customers whose
    history changed and leaves the rest alone, rather than carrying every customer's list
    through the metrics table it rebuilds. Customers with no purchases in any category have
    no row.
    """

    customer = models.OneToOneField(
        "customers.Customer",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="favourite_categories",
    )
    categories = models.JSONField(_("categories"), default=list)
    computed_at = models.DateTimeField(_("computed at"))

    class Meta:
        verbose_name = _("favourite categories")
        verbose_name_plural = _("favourite categories")

    def __str__(self) -> str:
        return f"{self.customer_id}: {', '.join(c.get('name', '') for c in self.categories)}"


class PurchaseDays(models.Model):
    """A buyer's purchase days (local day numbers since 1970-01-01, sorted) and the first day's
    value net of its returns, in kopecks: the history the CLV models read (analytics.
    purchase_days).

    Kept like favourite categories: the nightly run replaces the rows of the customers whose
    history changed and reads the rest, instead of regrouping every receipt by day every night.
    """

    customer = models.OneToOneField(
        "customers.Customer", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    days = ArrayField(models.IntegerField())
    first_value = models.BigIntegerField()

    class Meta:
        verbose_name = _("purchase days")
        verbose_name_plural = _("purchase days")

    def __str__(self) -> str:
        return f"{self.customer_id}: {len(self.days)}"


class HolidayAffinity(models.Model):
    """A customer bought in the days before a holiday in at least the configured number of years."""

    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, related_name="holiday_affinities"
    )
    holiday = models.CharField(_("holiday"), max_length=32)
    years = models.PositiveSmallIntegerField(_("years"))
    last_year = models.PositiveSmallIntegerField(_("last year"))
    category = models.ForeignKey(
        "sales.Category", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    amount = models.DecimalField(_("amount bought before it"), **MONEY, default=0)

    class Meta:
        ordering = ["customer", "holiday"]
        verbose_name = _("holiday affinity")
        verbose_name_plural = _("holiday affinities")
        constraints = [
            models.UniqueConstraint(fields=["customer", "holiday"], name="affinity_unique"),
        ]
        indexes = [models.Index(fields=["holiday", "category"], name="affinity_holiday")]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.holiday}"


def default_holidays() -> list[dict]:
    # Gift-giving dates of a Russian chain; keys are MM-DD so they match in every year.
    return [
        {"key": "01-01", "name": "Новый год"},
        {"key": "02-14", "name": "День святого Валентина"},
        {"key": "02-23", "name": "День защитника Отечества"},
        {"key": "03-08", "name": "Международный женский день"},
        {"key": "09-01", "name": "День знаний"},
    ]


class AnalyticsSettings(models.Model):
    """The thresholds of DESIGN.md as one row an admin edits (`services.settings_save`)."""

    window_days = models.PositiveIntegerField(
        _("trailing window, days"),
        default=365,
        validators=[MinValueValidator(91), MaxValueValidator(3660)],
    )
    vip_revenue_share = models.DecimalField(
        _("VIP share of revenue"),
        max_digits=4,
        decimal_places=3,
        default=Decimal("0.800"),
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(Decimal("1"))],
    )
    vip_cap = models.DecimalField(
        _("VIP cap, share of active customers"),
        max_digits=4,
        decimal_places=3,
        default=Decimal("0.200"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1"))],
    )
    b_growth_ratio = models.DecimalField(
        _("B: last quarter vs prior quarterly average"),
        max_digits=5,
        decimal_places=2,
        default=Decimal("1.50"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    b_new_customer_days = models.PositiveIntegerField(
        _("B: a customer is new for, days"), default=90
    )
    b_second_purchase_days = models.PositiveIntegerField(
        _("B: second purchase within, days"), default=60
    )
    d_p_alive_threshold = models.FloatField(
        _("D: P(alive) below"),
        default=0.2,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
    )
    clv_horizon_months = models.PositiveSmallIntegerField(
        _("CLV horizon, months"),
        default=12,
        validators=[MinValueValidator(1), MaxValueValidator(120)],
    )
    annual_discount_rate = models.DecimalField(
        _("annual discount rate"),
        max_digits=4,
        decimal_places=3,
        default=Decimal("0.150"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    clv_backtest_weeks = models.PositiveSmallIntegerField(
        _("CLV backtest: holdout weeks"),
        default=26,
        validators=[MinValueValidator(4), MaxValueValidator(104)],
    )
    clv_max_backtest_error = models.DecimalField(
        _("CLV backtest: largest accepted error"),
        max_digits=4,
        decimal_places=3,
        default=Decimal("0.250"),
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(Decimal("5"))],
        help_text=_("A share: 0.25 accepts a total prediction 25% off what happened."),
    )
    clv_min_repeat_buyers = models.PositiveIntegerField(
        _("CLV: fewest repeat buyers to publish the model"), default=30
    )
    holiday_lookback_days = models.PositiveSmallIntegerField(
        _("holiday: days before it that count"), default=10
    )
    holiday_min_years = models.PositiveSmallIntegerField(
        _("holiday: in at least N years"), default=2, validators=[MinValueValidator(1)]
    )
    holidays = models.JSONField(
        _("holidays"),
        default=default_holidays,
        help_text=_('A list of {"key": "MM-DD", "name": "..."}.'),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("analytics settings")
        verbose_name_plural = _("analytics settings")
        constraints = [models.CheckConstraint(condition=Q(id=1), name="analytics_settings_single")]

    def __str__(self) -> str:
        return str(_("Analytics settings"))

    def save(self, *args, **kwargs) -> None:
        # One row. Saving queues nothing: `analytics.services.settings_save` saves the row and
        # queues the recompute that re-ranks the base.
        self.pk = 1
        super().save(*args, **kwargs)

    def clean(self) -> None:
        problems = []
        if not isinstance(self.holidays, list):
            problems.append(_("Holidays must be a list."))
        else:
            for item in self.holidays:
                key = item.get("key") if isinstance(item, dict) else None
                if not isinstance(key, str) or not calendar.is_month_day(key):
                    problems.append(_("%(item)s: needs a key like 03-08.") % {"item": item})
        if problems:
            raise ValidationError({"holidays": problems})

    @classmethod
    def load(cls) -> "AnalyticsSettings":
        found = cls.objects.filter(pk=1).first()
        return found if found is not None else cls(pk=1)


class ClassThresholds(models.Model):
    """Cut points of the last full recompute, so a one-customer refresh ranks the same way."""

    computed_at = models.DateTimeField(_("computed at"))
    active_customers = models.PositiveIntegerField(_("active customers"), default=0)
    vip_count = models.PositiveIntegerField(_("VIP customers"), default=0)
    vip_entry_revenue = models.DecimalField(_("VIP entry level"), **MONEY, null=True)
    vip_entry_customer_id = models.BigIntegerField(null=True)
    # {"r": [[last_at, receipts, revenue, id], ...4 cuts], "f": [...], "m": [...]}
    rfm_cuts = models.JSONField(default=dict)
    # The history watermark of that run (see analytics.metrics.History): when it began, the
    # as-of time it ranked at, and a digest of the settings and names the history depends on.
    history_started_at = models.DateTimeField(null=True, editable=False)
    history_as_of = models.DateTimeField(null=True, editable=False)
    history_signature = models.CharField(max_length=64, blank=True, editable=False)

    class Meta:
        verbose_name = _("class thresholds")
        verbose_name_plural = _("class thresholds")
        constraints = [models.CheckConstraint(condition=Q(id=1), name="class_thresholds_single")]

    def __str__(self) -> str:
        return f"{self.computed_at:%Y-%m-%d %H:%M}"


class ClvModelFit(models.Model):
    """One maximum-likelihood fit of BG/NBD and Gamma-Gamma on the chain's receipts."""

    fitted_at = models.DateTimeField(_("fitted at"))
    customers = models.PositiveIntegerField(_("customers used"), default=0)
    repeat_customers = models.PositiveIntegerField(_("repeat buyers"), default=0)
    r = models.FloatField(null=True)
    alpha = models.FloatField(null=True)
    a = models.FloatField(null=True)
    b = models.FloatField(null=True)
    bgnbd_log_likelihood = models.FloatField(_("BG/NBD log-likelihood"), null=True)
    p = models.FloatField(null=True)
    q = models.FloatField(null=True)
    gamma = models.FloatField(null=True)
    gamma_gamma_log_likelihood = models.FloatField(_("Gamma-Gamma log-likelihood"), null=True)
    # Above the sample size the parameters come from a fixed-seed sample of the buyers (see
    # analytics.clv); the log-likelihoods are still those of every buyer. 0: all of them.
    sampled = models.PositiveIntegerField(_("customers in the fitting sample"), default=0)
    seconds = models.FloatField(_("fit time, s"), default=0)
    message = models.TextField(_("message"), blank=True)  # English, as logged
    # Whether the fit passed the sanity gate (analytics.clv.gate) and drives individual CLV;
    # `gate_notes` say why not, as clv.Note JSON; `backtest` is backtest.run_backtest's result.
    published = models.BooleanField(_("published"), default=False)
    gate_notes = models.JSONField(_("why not published"), default=list, blank=True)
    backtest = models.JSONField(_("backtest"), default=dict, blank=True)
    # The same messages as clv.Note templates and values, shown in the reader's language.
    notes = models.JSONField(_("notes"), default=list, blank=True)

    class Meta:
        ordering = ["-fitted_at", "-id"]
        get_latest_by = "fitted_at"
        verbose_name = _("CLV model fit")
        verbose_name_plural = _("CLV model fits")

    def __str__(self) -> str:
        return f"{self.fitted_at:%Y-%m-%d %H:%M}"

    def translated_notes(self) -> list[str]:
        from analytics.clv import Note

        if not self.notes:
            return [self.message] if self.message else []
        return [Note.translate(note) for note in self.notes]

    def translated_gate_notes(self) -> list[str]:
        from analytics.clv import Note

        return [Note.translate(note) for note in self.gate_notes]

    @property
    def backtest_error_pct(self) -> float | None:
        error = (self.backtest or {}).get("error")
        return None if error is None else 100 * error

    @property
    def alpha_weeks(self) -> float | None:
        return None if self.alpha is None else self.alpha / 7

    @property
    def usable_bgnbd(self) -> bool:
        return None not in (self.r, self.alpha, self.a, self.b)

    @property
    def usable_gamma_gamma(self) -> bool:
        return None not in (self.p, self.q, self.gamma)


class RunStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    SKIPPED = "skipped", _("Skipped: another recompute was running")
    FAILED = "failed", _("Failed")


class RecomputeRun(models.Model):
    """One full recompute, with the step it is at, for the dashboard's progress bar."""

    status = models.CharField(
        _("status"), max_length=10, choices=RunStatus, default=RunStatus.QUEUED
    )
    step = models.CharField(_("step"), max_length=60, blank=True)
    progress = models.PositiveSmallIntegerField(_("progress, %"), default=0)
    customers = models.PositiveIntegerField(_("customers"), default=0)
    requested_at = models.DateTimeField(_("requested at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True)
    finished_at = models.DateTimeField(_("finished at"), null=True)
    seconds = models.FloatField(_("seconds"), null=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        verbose_name = _("recompute run")
        verbose_name_plural = _("recompute runs")

    def __str__(self) -> str:
        return f"{self.requested_at:%Y-%m-%d %H:%M} {self.status}"

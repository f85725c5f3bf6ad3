"""Duplicate candidates, the admin's order of sources, merges and the ids they absorbed.

Imported by `customers.models` so Django registers them with the app."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

__all__ = [
    "CustomerMerge",
    "DuplicatePair",
    "DuplicateReason",
    "MergedAlias",
    "PairStatus",
    "SourcePriority",
]


class SourcePriority(models.Model):
    """The admin-kept order of card sources: a lower rank wins a field when cards are merged."""

    source = models.CharField(_("source"), max_length=12, unique=True)
    rank = models.PositiveSmallIntegerField(_("rank"))

    class Meta:
        ordering = ["rank", "source"]
        verbose_name = _("source priority")
        verbose_name_plural = _("source priorities")

    def __str__(self) -> str:
        return f"{self.rank}. {self.source}"


class DuplicateReason(models.TextChoices):
    EMAIL = "email", _("Same email")
    CARD = "card", _("Same card number in another format")
    NAME_BIRTH = "name_birth", _("Same surname, first name and birth date")
    SIMILAR_BIRTH = "similar_birth", _("Similar names and the same birth date")
    SIMILAR_ADDRESS = "similar_address", _("Similar names and the same address")
    TWO_STORES = "two_stores", _("Same person signed up in two stores")


class PairStatus(models.TextChoices):
    OPEN = "open", _("To review")
    NOT_DUPLICATE = "not_duplicate", _("Not a duplicate")
    MERGED = "merged", _("Merged")


class DuplicatePair(models.Model):
    """Two cards that may be one person (`first_id` < `second_id`), with why and how sure."""

    first = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    second = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(_("reason"), max_length=16, choices=DuplicateReason)
    confidence = models.DecimalField(_("confidence"), max_digits=3, decimal_places=2)
    status = models.CharField(
        _("status"), max_length=14, choices=PairStatus, default=PairStatus.OPEN
    )
    found_at = models.DateTimeField(_("found at"), auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)

    class Meta:
        ordering = ["-confidence", "first_id", "second_id"]
        verbose_name = _("duplicate candidate")
        verbose_name_plural = _("duplicate candidates")
        constraints = [
            models.UniqueConstraint(fields=["first", "second"], name="duplicate_pair_once"),
            models.CheckConstraint(condition=Q(first__lt=F("second")), name="duplicate_pair_order"),
        ]
        indexes = [models.Index(fields=["status", "-confidence"], name="duplicate_pair_open")]

    def __str__(self) -> str:
        return f"#{self.first_id} ~ #{self.second_id} ({self.reason})"


class CustomerMerge(models.Model):
    """One merge: the survivor, the absorbed cards and everything needed to undo it."""

    survivor = models.ForeignKey(
        "customers.Customer", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    survivor_id_value = models.BigIntegerField(_("survivor"))
    absorbed_ids = models.JSONField(_("absorbed cards"), default=list)
    # {"cards": {id: fields}, "moved": {id: {model label: [row ids]}}, "survivor_before": ...}
    snapshot = models.JSONField(default=dict)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(_("merged at"), auto_now_add=True)
    undone_at = models.DateTimeField(_("undone at"), null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("merge")
        verbose_name_plural = _("merges")

    def __str__(self) -> str:
        return f"{self.absorbed_ids} -> #{self.survivor_id_value}"


class MergedAlias(models.Model):
    """An absorbed card's id and card number, still resolving to the card that absorbed it."""

    old_id = models.BigIntegerField(_("old id"), unique=True)
    old_card_number = models.CharField(
        _("old loyalty card"), max_length=32, null=True, blank=True, unique=True
    )
    survivor = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, related_name="merged_aliases"
    )
    merge = models.ForeignKey(CustomerMerge, on_delete=models.CASCADE, related_name="aliases")

    class Meta:
        verbose_name = _("merged card")
        verbose_name_plural = _("merged cards")

    def __str__(self) -> str:
        return f"#{self.old_id} -> #{self.survivor_id}"

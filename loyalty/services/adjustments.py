"""Bonuses (welcome, birthday) and an administrator's audited manual adjustments."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.audit import audit_record

from ..models import Account, Entry, EntryKind
from ..rules import KOPECK, programme_current
from .ledger import accounts_lock

MAX_ADJUST = Decimal("1000000")


def _bonus(*, account: Account, key: str, amount: Decimal, at, expires_at, reason: str) -> bool:
    if amount <= 0 or account.entries.filter(bonus_key=key).exists():
        return False
    Entry.objects.create(
        account=account,
        kind=EntryKind.EARN,
        at=at,
        available_delta=amount,
        bonus_key=key,
        expires_at=expires_at,
        reason=reason,
    )
    return True


@transaction.atomic
def welcome_bonus_grant(*, customer) -> bool:
    """Once per customer, when they have agreed to be contacted on some channel."""
    programme = programme_current()
    if not programme.is_active or not any(
        (
            customer.consent_email,
            customer.consent_sms,
            customer.consent_messenger,
            customer.consent_phone,
        )
    ):
        return False
    account = accounts_lock([customer.pk])[customer.pk]
    now = timezone.now()
    return _bonus(
        account=account,
        key="welcome",
        amount=programme.welcome_bonus,
        at=now,
        expires_at=now + dt.timedelta(days=programme.bonus_days),
        reason="welcome",
    )


@transaction.atomic
def birthday_bonuses_grant(*, today: dt.date | None = None) -> int:
    """Grant the birthday bonus to customers whose birthday is `window` days ahead; it stays
    valid until `window` days after the birthday."""
    from customers.models import Customer

    programme = programme_current()
    if not programme.is_active or programme.birthday_bonus <= 0:
        return 0
    today = today or timezone.localdate()
    window = programme.birthday_window_days
    day = today + dt.timedelta(days=window)
    people = Customer.objects.filter(birth_date__month=day.month, birth_date__day=day.day)
    ids = list(people.values_list("id", flat=True)[:50000])
    accounts = accounts_lock(ids)
    now = timezone.now()
    granted = 0
    for account in accounts.values():
        granted += _bonus(
            account=account,
            key=f"birthday:{day.year}",
            amount=programme.birthday_bonus,
            at=now,
            expires_at=now + dt.timedelta(days=2 * window + 1),
            reason="birthday",
        )
    return granted


@transaction.atomic
def points_adjust(*, actor, customer, amount: Decimal, reason: str, request=None) -> Entry:
    """An admin's manual correction, with a reason, audited; it cannot go below zero."""
    reason = (reason or "").strip()
    errors: dict[str, list[str]] = {}
    if not reason:
        errors["reason"] = [_("Give a reason for the adjustment.")]
    if amount == 0 or abs(amount) > MAX_ADJUST or amount != amount.quantize(KOPECK):
        errors["amount"] = [_("Give a non-zero amount in points, to the kopeck.")]
    if errors:
        raise ValidationError(errors)
    account = accounts_lock([customer.pk])[customer.pk]
    if account.available + amount < 0:
        raise ValidationError(
            {"amount": [_("Only %(n)s points are available.") % {"n": account.available}]}
        )
    now = timezone.now()
    programme = programme_current()
    entry = Entry.objects.create(
        account=account,
        kind=EntryKind.ADJUST,
        at=now,
        available_delta=amount,
        reason=reason,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        expires_at=now + dt.timedelta(days=30 * programme.earn_months) if amount > 0 else None,
    )
    audit_record(
        actor=actor,
        action="points_adjust",
        obj=customer,
        request=request,
        amount=str(amount),
        reason=reason,
        entry=entry.pk,
    )
    return entry

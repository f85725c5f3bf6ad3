"""Segments over balance, tier and expiring points; the balance in templates; the expiry trigger."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from campaigns.models import CampaignKind, Message
from campaigns.services.campaigns import campaign_start, preview
from campaigns.services.segments import segment_customers, validate_rules
from campaigns.services.sending import daily_triggers_run
from loyalty import services
from loyalty.models import Account, Entry, EntryKind, Tier
from tests.campaigns.conftest import customer as make_customer
from tests.campaigns.conftest import make_campaign
from tests.campaigns.conftest import smtp as smtp  # noqa: F401  (the SMTP server fixture)

pytestmark = pytest.mark.django_db
MSK = ZoneInfo("Europe/Moscow")


def _credit(person, amount: str, expires_at) -> None:
    account = services.accounts_lock([person.pk])[person.pk]
    Entry.objects.create(
        account=account,
        kind=EntryKind.ADJUST,
        at=timezone.now(),
        available_delta=Decimal(amount),
        expires_at=expires_at,
        reason="t",
    )


def _ids(user, rules):
    validate_rules(rules)
    return set(segment_customers(user=user, rules=rules).values_list("pk", flat=True))


def test_segments_by_balance_tier_and_points_expiring_within_days(marketer, store_a):
    now = timezone.now()
    rich = make_customer(store_a, consent_email=False, consent_sms=False)
    poor = make_customer(store_a, consent_email=False, consent_sms=False)
    none = make_customer(store_a, consent_email=False, consent_sms=False)
    _credit(rich, "500", now + dt.timedelta(days=3))
    _credit(poor, "20", now + dt.timedelta(days=90))
    silver = Tier.objects.get(name="Серебряный")
    Account.objects.filter(customer=rich).update(tier=silver)

    rich_only = {"op": "and", "rules": [{"field": "points_balance", "op": "gte", "value": 100}]}
    up_to = {"op": "and", "rules": [{"field": "points_balance", "op": "lte", "value": 100}]}
    tier = {"op": "and", "rules": [{"field": "loyalty_tier", "op": "in", "value": [silver.pk]}]}
    soon = {"op": "and", "rules": [{"field": "points_expiring", "op": "within_days", "value": 7}]}

    assert _ids(marketer, rich_only) == {rich.pk}
    assert _ids(marketer, up_to) >= {poor.pk, none.pk} and rich.pk not in _ids(marketer, up_to)
    assert _ids(marketer, tier) == {rich.pk}
    assert _ids(marketer, soon) == {rich.pk}


def test_campaign_template_shows_the_balance(marketer, store_a):
    person = make_customer(store_a, first_name="Анна")
    campaign = make_campaign(
        marketer, subject="{{ first_name }}, у вас {{ points_balance }} баллов"
    )

    assert preview(campaign=campaign, customer=person)["subject"] == "Анна, у вас 200.00 баллов"


def test_points_expiry_trigger_writes_to_those_whose_points_expire_in_n_days(
    smtp,
    marketer,
    store_a,
):
    today = dt.date(2026, 3, 10)
    due = make_customer(store_a, email="due@mail.ru")
    later = make_customer(store_a, email="later@mail.ru")
    Entry.objects.filter(kind=EntryKind.EARN).delete()  # no welcome bonuses here
    _credit(due, "50", dt.datetime(2026, 3, 13, 12, tzinfo=MSK))
    _credit(later, "50", dt.datetime(2026, 3, 20, 12, tzinfo=MSK))
    campaign = make_campaign(
        marketer,
        kind=CampaignKind.POINTS,
        days_before=3,
        subject="{{ points_balance }} баллов сгорят",
    )
    campaign_start(actor=marketer, campaign=campaign, now=dt.datetime(2026, 3, 10, 8, tzinfo=MSK))

    daily_triggers_run(today=today)
    daily_triggers_run(today=today)

    message = Message.objects.get(campaign=campaign)
    assert (message.customer_id, message.occasion) == (due.pk, "2026-03-13")

"""The chain's calendar (crm.calendar): one home for public holidays, the chain's own dates and
the gift dates analytics keeps, read by analytics and campaigns alike."""

import pytest
from django.utils import translation

from crm import calendar
from crm.models import ChainDate

pytestmark = pytest.mark.django_db


def test_holiday_keys_join_public_holidays_chain_dates_and_a_callers_gift_dates():
    ChainDate.objects.create(name="День рождения сети", month=10, day=15)
    keys = calendar.holiday_keys(2026, ["02-14", "8 March", ""])
    assert {"01-01", "06-12", "11-04"} <= keys  # public holidays of Russia
    assert "10-15" in keys  # the chain's own date
    assert "02-14" in keys  # a gift date of the analytics settings
    assert "8 March" not in keys  # not MM-DD: left out


def test_days_off_moved_from_a_weekend_are_neither_keys_nor_choices():
    year = 2026
    moved = {
        f"{day:%m-%d}"
        for day, name in calendar.public_holidays(year, language="en_US").items()
        if name.startswith("Day off")
    }
    choices = {key for key, _label in calendar.holiday_choices(year)}
    assert not moved & choices
    assert not moved - {"01-01", "01-02"} & calendar.holiday_keys(year)


def test_holiday_choices_are_named_in_the_readers_language():
    with translation.override("ru"):
        labels = dict(calendar.holiday_choices(2026))
    assert labels["06-12"].startswith("12.06 ")
    assert "России" in labels["06-12"]


def test_campaigns_and_analytics_read_the_same_chain_dates():
    from analytics.metrics import holiday_keys
    from analytics.models import AnalyticsSettings
    from campaigns.models import Campaign

    date = ChainDate.objects.create(name="Юбилей магазина", month=5, day=20)
    assert Campaign._meta.get_field("chain_date").related_model is ChainDate
    assert "05-20" in holiday_keys(AnalyticsSettings.load(), 2026)
    assert ChainDate._meta.db_table == "campaigns_chaindate"
    assert date.key == "05-20"


@pytest.mark.parametrize("key", ["02-29", "12-31", "01-01"])
def test_month_day_keys_that_exist(key):
    assert calendar.is_month_day(key)


@pytest.mark.parametrize("key", ["02-30", "13-01", "1-01", "0101", "", "ab-cd"])
def test_month_day_keys_that_do_not(key):
    assert not calendar.is_month_day(key)


def test_the_roles_keep_their_permissions_on_the_moved_chain_dates():
    from django.contrib.auth.models import Group, Permission
    from django.contrib.contenttypes.models import ContentType

    content_type = ContentType.objects.get_for_model(ChainDate)
    assert content_type.app_label == "crm"
    assert not ContentType.objects.filter(app_label="campaigns", model="chaindate").exists()
    marketer = Group.objects.get(name="Marketer")
    view = Permission.objects.get(content_type=content_type, codename="view_chaindate")
    assert marketer.permissions.filter(pk=view.pk).exists()

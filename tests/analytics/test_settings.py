"""The analytics settings: saving through the service, validation and the admin pages."""

from decimal import Decimal

import pytest

from analytics import services
from analytics.models import (
    AnalyticsSettings,
    RecomputeRun,
    RunStatus,
)
from tests.analytics.conftest import recompute

pytestmark = pytest.mark.django_db


def test_saving_settings_through_the_service_queues_a_recompute(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks() as callbacks:
        conf = AnalyticsSettings.load()
        conf.vip_cap = Decimal("0.100")
        services.settings_save(conf)
    assert len(callbacks) == 1
    assert RecomputeRun.objects.get().status == RunStatus.QUEUED
    assert AnalyticsSettings.objects.get().vip_cap == Decimal("0.100")


def test_the_models_save_has_no_side_effect(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        conf = AnalyticsSettings.load()
        conf.save()
    assert callbacks == [] and not RecomputeRun.objects.exists()


def test_a_get_of_the_settings_admin_writes_nothing_and_queues_nothing(
    client, admin_user, django_capture_on_commit_callbacks
):
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks() as callbacks:
        listing = client.get("/admin/analytics/analyticssettings/")
        change = client.get("/admin/analytics/analyticssettings/1/change/")
    assert listing.status_code == 302
    assert listing["Location"] == "/admin/analytics/analyticssettings/1/change/"
    assert change.status_code == 200
    assert not AnalyticsSettings.objects.exists()
    assert callbacks == [] and not RecomputeRun.objects.exists()


def test_settings_refuse_a_holiday_key_that_is_not_month_and_day():
    from django.core.exceptions import ValidationError

    conf = AnalyticsSettings.load()
    conf.holidays = [{"key": "8 March", "name": "x"}]
    with pytest.raises(ValidationError) as error:
        conf.full_clean()
    assert "holidays" in error.value.message_dict
    conf.holidays = [{"key": "03-08", "name": "x"}]
    conf.vip_cap = Decimal("1.5")
    with pytest.raises(ValidationError) as error:
        conf.full_clean()
    assert list(error.value.message_dict) == ["vip_cap"]


def test_admin_sees_settings_model_fits_and_runs_in_the_admin(client, admin_user, shop, regulars):
    recompute()
    client.force_login(admin_user)
    assert client.get("/admin/analytics/analyticssettings/", follow=True).status_code == 200
    page = client.get("/admin/analytics/clvmodelfit/")
    assert page.status_code == 200 and b"0." in page.content
    assert client.get("/admin/analytics/recomputerun/").status_code == 200

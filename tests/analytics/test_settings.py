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


CHANGE = "/admin/analytics/analyticssettings/1/change/"


def settings_post(**changes) -> dict:
    """What the admin's change page posts: thresholds in percent, the holidays as rows."""
    data = {
        "window_days": "365",
        "vip_revenue_share": "80",
        "vip_cap": "20",
        "b_growth_ratio": "1.50",
        "b_new_customer_days": "90",
        "b_second_purchase_days": "60",
        "d_p_alive_threshold": "20",
        "clv_horizon_months": "12",
        "annual_discount_rate": "15",
        "clv_backtest_weeks": "26",
        "clv_max_backtest_error": "25",
        "clv_min_repeat_buyers": "30",
        "holiday_lookback_days": "10",
        "holiday_min_years": "2",
        "holidays-name": ["Международный женский день", ""],
        "holidays-day": ["8", ""],
        "holidays-month": ["3", ""],
    }
    data.update(changes)
    return data


def test_the_settings_page_shows_shares_in_percent_and_holidays_as_rows(client, admin_user):
    client.force_login(admin_user)
    page = client.get(CHANGE, HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    # 0.5 is shown as 50 %: the VIP share (0.800) as 80, not 0.800.
    assert 'name="vip_revenue_share" value="80"' in page
    assert 'name="d_p_alive_threshold" value="20"' in page
    assert "доля VIP в выручке, %" in page
    # Rows with a name, a day and a month from lists, not raw JSON.
    assert 'data-testid="holiday-rows"' in page
    assert 'name="holidays-name" value="День святого Валентина"' in page
    assert '<option value="2" selected>' in page  # February, 14
    assert '{"key"' not in page and "&quot;key&quot;" not in page
    assert "Февраль" in page or "февраль" in page.lower()


def test_saving_percent_and_rows_stores_the_same_values_as_before(
    client, admin_user, django_capture_on_commit_callbacks
):
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks():
        response = client.post(
            CHANGE, settings_post(vip_cap="10", d_p_alive_threshold="12.5", vip_revenue_share="75")
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    conf = AnalyticsSettings.objects.get()
    assert conf.vip_cap == Decimal("0.100")
    assert conf.vip_revenue_share == Decimal("0.750")
    assert conf.d_p_alive_threshold == pytest.approx(0.125)
    assert conf.annual_discount_rate == Decimal("0.150")
    assert conf.clv_max_backtest_error == Decimal("0.250")
    assert conf.holidays == [{"key": "03-08", "name": "Международный женский день"}]
    assert RecomputeRun.objects.get().status == RunStatus.QUEUED


def test_a_bad_holiday_row_or_share_is_a_form_error_and_nothing_is_saved(client, admin_user):
    client.force_login(admin_user)
    bad_date = settings_post(**{"holidays-day": ["31", ""], "holidays-month": ["2", ""]})
    no_name = settings_post(**{"holidays-name": ["", ""]})
    too_big = settings_post(vip_cap="150")
    for data in (bad_date, no_name, too_big):
        response = client.post(CHANGE, data, HTTP_ACCEPT_LANGUAGE="en")
        assert response.status_code == 200
        assert response.context["adminform"].form.errors
    assert not AnalyticsSettings.objects.exists()

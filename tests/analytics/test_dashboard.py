"""The dashboard page, its CSV downloads and the read-only dashboard API, scoped by role."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from analytics import selectors, services
from analytics.models import RecomputeRun, RunStatus
from tests.analytics.conftest import Shop

pytestmark = pytest.mark.django_db

API = "/api/v1/analytics/dashboard/"
PAGE = "/analytics/"


@pytest.fixture
def chain(store_a, store_b):
    """Store A: a regular (bought last period too) and a newcomer; store B: one big buyer."""
    shop_a, shop_b = Shop(store_a), Shop(store_b)
    now = timezone.now()
    regular, newcomer = shop_a.customer(), shop_a.customer()
    big = shop_b.customer()
    shop_a.buy(regular, now - dt.timedelta(days=40), 1000)
    shop_a.buy(regular, now - dt.timedelta(days=5), 1000)
    shop_a.buy(newcomer, now - dt.timedelta(days=10), 500)
    shop_b.buy(big, now - dt.timedelta(days=3), 3000)
    services.metrics_recompute_all()
    today = timezone.localdate()
    return {
        "regular": regular,
        "newcomer": newcomer,
        "big": big,
        "query": {"date_from": today - dt.timedelta(days=29), "date_to": today},
    }


def kpi(data, name):
    return data["kpis"][name]


def test_admin_gets_chain_wide_kpis_against_the_previous_period(client, admin_user, chain):
    client.force_login(admin_user)
    data = client.get(API, chain["query"]).json()
    assert Decimal(kpi(data, "revenue")["current"]) == Decimal("4500")
    assert Decimal(kpi(data, "revenue")["previous"]) == Decimal("1000")
    assert kpi(data, "receipts")["current"] == "3.0000"
    assert Decimal(kpi(data, "active_customers")["current"]) == 3
    assert Decimal(kpi(data, "new_customers")["current"]) == 2
    assert kpi(data, "retention_rate")["current"] == "1.0000"
    assert Decimal(kpi(data, "average_receipt")["current"]) == Decimal("1500")
    assert kpi(data, "revenue")["change"] == 3.5
    assert data["stores"] is None
    classes = {row["value_class"]: row for row in data["value_classes"]}
    assert sum(row["customers"] for row in classes.values()) == 3


def test_manager_sees_only_own_stores_figures(client, manager_a, store_a, chain):
    client.force_login(manager_a)
    data = client.get(API, chain["query"]).json()
    assert data["stores"] == [store_a.pk]
    assert Decimal(kpi(data, "revenue")["current"]) == Decimal("1500")
    assert Decimal(kpi(data, "active_customers")["current"]) == 2
    assert sum(row["customers"] for row in data["value_classes"]) == 2


def test_manager_asking_for_another_store_gets_404(client, manager_a, store_b, chain):
    client.force_login(manager_a)
    assert client.get(API, {**chain["query"], "store": store_b.pk}).status_code == 404
    assert client.get(PAGE, {"store": store_b.pk}).status_code == 200  # the form refuses it
    assert b'data-store="%d"' % store_b.pk not in client.get(PAGE, {"store": store_b.pk}).content


@pytest.mark.parametrize("path", [API, PAGE, PAGE + "csv/kpis/", PAGE + "recompute/status/"])
def test_outsider_gets_404(client, outsider, chain, path):
    client.force_login(outsider)
    assert client.get(path).status_code == 404


@pytest.mark.parametrize("path", [API, PAGE])
def test_sales_associate_gets_404(client, associate_a, chain, path):
    client.force_login(associate_a)
    assert client.get(path).status_code == 404


def test_anonymous_is_sent_to_login_or_refused(client, chain):
    assert client.get(PAGE).status_code == 302
    assert client.get(API).status_code in (401, 403)


def test_bad_period_is_a_400_with_field_messages(client, admin_user, chain):
    client.force_login(admin_user)
    response = client.get(API, {"date_from": "2026-05-01", "date_to": "2026-04-01"})
    assert response.status_code == 400
    assert "date_from" in response.json()["error"]["fields"]
    assert client.get(API, {"date_from": "yesterday"}).status_code == 400


def test_dashboard_page_shows_every_chart_in_a_bounded_number_of_queries(
    client, marketer, chain, django_assert_max_num_queries
):
    client.force_login(marketer)
    with django_assert_max_num_queries(40):
        response = client.get(PAGE, chain["query"])
    assert response.status_code == 200
    html = response.content.decode()
    for chart in ("kpis", "classes", "pareto", "rfm", "cohorts", "sales", "stores"):
        assert f'data-chart="{chart}"' in html
    assert "/customers/?value_class=VIP" in html
    assert "vendor/chartjs/chart.umd.min.js" in html


@pytest.mark.parametrize(
    "chart", ["kpis", "classes", "pareto", "rfm", "cohorts", "sales", "stores"]
)
def test_every_chart_downloads_as_csv(client, admin_user, chain, chart):
    client.force_login(admin_user)
    response = client.get(f"{PAGE}csv/{chart}/", chain["query"])
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    lines = response.content.decode().strip().splitlines()
    assert len(lines) >= 2


def test_manager_csv_of_stores_lists_own_store_only(client, manager_a, store_a, chain):
    client.force_login(manager_a)
    lines = client.get(f"{PAGE}csv/stores/", chain["query"]).content.decode().splitlines()
    assert len(lines) == 2 and lines[1].startswith(str(store_a.pk))


def test_admin_can_queue_a_recompute_and_a_manager_cannot(
    client, admin_user, manager_a, chain, django_capture_on_commit_callbacks
):
    client.force_login(manager_a)
    assert client.post(PAGE + "recompute/").status_code == 404
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks() as callbacks:
        assert client.post(PAGE + "recompute/").status_code == 302
    assert len(callbacks) == 1
    status = client.get(PAGE + "recompute/status/").json()
    assert status["status"] == RunStatus.QUEUED
    assert RecomputeRun.objects.filter(status=RunStatus.DONE).exists()  # the fixture's run


def test_customer_metrics_for_returns_the_customers_row(chain):
    row = selectors.customer_metrics_for(chain["big"])
    assert row.revenue == Decimal("3000.00") and row.receipts == 1
    assert selectors.customer_metrics_for(type(chain["big"])(pk=10**9)) is None


def test_forecast_gives_three_months_with_an_interval_around_the_mean():
    history = []
    month = dt.date(2024, 1, 1)
    for i in range(30):
        seasonal = 1000 * (1 + 0.3 * ((i % 12) in (10, 11)))
        history.append({"month": month.isoformat(), "revenue": Decimal(seasonal + 20 * i)})
        month = (month + dt.timedelta(days=32)).replace(day=1)
    forecast = selectors.sales_forecast(history)
    assert [f["month"] for f in forecast] == ["2026-07-01", "2026-08-01", "2026-09-01"]
    assert all(f["low"] <= f["forecast"] <= f["high"] for f in forecast)
    assert selectors.sales_forecast(history[:4]) == []


def test_pareto_curve_runs_from_the_best_customer_to_all_revenue(marketer, chain):
    curve = selectors.pareto_curve(marketer)
    # Window revenues: 3000 (big), 2000 (regular), 500 (newcomer) of 5500.
    assert [p["customer_share"] for p in curve] == [0.3333, 0.6667, 1.0]
    assert [p["revenue_share"] for p in curve] == [0.5455, 0.9091, 1.0]


@pytest.mark.parametrize(
    ("language", "note"),
    [
        ("ru", "Покупателей с покупками всего 3: слишком мало, чтобы оценить BG/NBD."),
        ("en", "Only 3 customers with purchases: too few to fit BG/NBD."),
    ],
)
def test_a_degenerate_fit_is_explained_in_the_readers_language(
    client, admin_user, chain, language, note
):
    fit = selectors.latest_fit()
    # Stored in English, as logged, whatever language the worker ran in.
    assert fit.message.startswith("Only 3 customers with purchases: too few to fit BG/NBD.")
    client.force_login(admin_user)
    page = client.get(PAGE, HTTP_ACCEPT_LANGUAGE=language).content.decode()
    assert note in page


def test_the_current_month_is_partial_and_left_out_of_the_forecast_fit():
    history = []
    month = dt.date(2024, 1, 1)
    for i in range(30):
        history.append({"month": month.isoformat(), "revenue": Decimal(1000 + 20 * i)})
        month = (month + dt.timedelta(days=32)).replace(day=1)
    complete = selectors.sales_forecast(history)
    # The month under way, three days in: a tenth of a month's revenue, marked partial.
    history.append({"month": month.isoformat(), "revenue": Decimal(100), "partial": True})
    with_partial = selectors.sales_forecast(history)
    # The fit is the complete months' alone: the partial month is forecast in full (not read
    # as a slump), then come the three months after it.
    assert with_partial[0]["month"] == month.isoformat() == complete[0]["month"]
    assert with_partial[:3] == complete and len(with_partial) == 4
    assert with_partial[0]["forecast"] > 1000


def test_monthly_sales_mark_only_the_current_month_partial(marketer, chain):
    sales = selectors.monthly_sales(marketer)
    assert sales[-1]["partial"] and not any(row["partial"] for row in sales[:-1])


def test_rate_changes_are_in_percentage_points_and_money_has_separators(client, admin_user, chain):
    client.force_login(admin_user)
    data = client.get(API, chain["query"]).json()
    retention = kpi(data, "retention_rate")
    assert retention["change"] is None
    assert (
        retention["change_pp"]
        == pytest.approx(100 * (float(retention["current"]) - float(retention["previous"] or 0)))
        or retention["previous"] is None
    )
    page = client.get(PAGE, {**chain["query"]}, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "4,500.00\u00a0₽" in page  # the revenue KPI
    assert "Money is in RUB" in page
    ru = client.get(PAGE, {**chain["query"]}, HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert "4\u00a0500,00\u00a0₽" in ru


def test_csv_in_russian_opens_in_russian_excel(client, admin_user, chain):
    client.force_login(admin_user)
    body = client.get(f"{PAGE}csv/stores/", chain["query"], HTTP_ACCEPT_LANGUAGE="ru").content
    text = body.decode("utf-8")
    assert text.startswith("\ufeff")
    header, *rows = text[1:].strip().splitlines()
    assert header.split(";")[:3] == ["Номер магазина", "Магазин", "Чеки"]
    assert any(";1500,00;" in row or row.endswith(";1500,00") for row in rows), rows
    english = client.get(f"{PAGE}csv/stores/", chain["query"], HTTP_ACCEPT_LANGUAGE="en")
    assert not english.content.startswith(b"\xef\xbb\xbf") and b"1500.00" in english.content
    assert english.content.decode().splitlines()[0].startswith("Store number,Store,Receipts")


@pytest.mark.parametrize(
    "chart", ["kpis", "classes", "pareto", "rfm", "cohorts", "sales", "stores"]
)
def test_every_russian_csv_has_russian_titles_and_no_codes(client, admin_user, chain, chart):
    import re

    client.force_login(admin_user)
    text = client.get(
        f"{PAGE}csv/{chart}/", chain["query"], HTTP_ACCEPT_LANGUAGE="ru"
    ).content.decode("utf-8")
    header, *rows = text[1:].strip().splitlines()
    # Column titles are words of the reader's language, never the selectors' keys.
    assert not re.search(r"[A-Za-z_]", header), header
    for row in rows:
        # Indicators and segments are named; the only Latin a row may carry is a store's own
        # name or code (the demo chain's are Cyrillic) or the currency.
        assert not re.search(r"\b(revenue|margin|receipts|champions|about_to_sleep|lapsed)\b", row)


def test_a_marketer_starts_a_recompute_and_reads_its_state_in_russian(
    client, marketer, chain, django_capture_on_commit_callbacks
):
    client.force_login(marketer)
    page = client.get(PAGE).content.decode()
    assert 'action="/analytics/recompute/"' in page
    with django_capture_on_commit_callbacks() as callbacks:
        assert client.post(PAGE + "recompute/").status_code == 302
    assert len(callbacks) == 1
    run = RecomputeRun.objects.first()
    run.status, run.step, run.progress = RunStatus.RUNNING, "model fit", 60
    run.save()
    status = client.get(PAGE + "recompute/status/", HTTP_ACCEPT_LANGUAGE="ru").json()
    assert status["label"] == "Выполняется: 60%, оценка моделей ценности клиента"


def test_the_dashboard_api_carries_the_model_and_its_backtest(client, admin_user, chain):
    client.force_login(admin_user)
    model = client.get(API, chain["query"], HTTP_ACCEPT_LANGUAGE="en").json()["model"]
    assert model["published"] is False and model["customers"] == 3
    assert model["not_published_because"]
    assert "weeks" in model["backtest"] and model["sample_size"] == 3


def test_several_currencies_are_never_added_up(client, admin_user, chain, store_b):
    store_b.currency = "KZT"
    store_b.save()
    client.force_login(admin_user)
    rub = client.get(API, chain["query"]).json()
    assert Decimal(kpi(rub, "revenue")["current"]) == Decimal("1500")  # store A's only
    page = client.get(PAGE, {**chain["query"], "currency": "KZT"}, HTTP_ACCEPT_LANGUAGE="en")
    html = page.content.decode()
    assert "Money is in KZT" in html and f'data-store="{store_b.pk}"' in html
    services.metrics_recompute_all()
    big = selectors.customer_metrics_for(chain["big"])
    assert big.receipts == 0  # their only receipt is in tenge: not in the rouble figures


def test_an_empty_install_shows_the_dashboard_without_figures(client, marketer):
    client.force_login(marketer)
    page = client.get(PAGE, HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    assert "The model has not been fitted yet." in page.content.decode()
    assert client.get(API).json()["model"] is None
    for chart in ("kpis", "sales", "classes"):
        assert client.get(f"{PAGE}csv/{chart}/").status_code == 200


def test_the_value_api_explains_each_figure_and_hides_invisible_customers(
    client, admin_user, manager_a, chain
):
    client.force_login(admin_user)
    url = f"/api/v1/analytics/customers/{chain['big'].pk}/value/"
    data = client.get(url, HTTP_ACCEPT_LANGUAGE="ru").json()
    figures = {f["figure"]: f for f in data["figures"]}
    assert set(figures) == {"historical_lcv", "predicted_clv", "p_alive", "expected_purchases_90d"}
    # Three customers cannot carry a model: the fallback, said so, with the reason.
    assert data["clv_basis"] == "fallback" and data["fallback_reasons"]
    assert figures["predicted_clv"]["explanation"].startswith("Маржа, которую клиент принесёт")
    assert figures["p_alive"]["value"] is None
    assert Decimal(figures["historical_lcv"]["value"]) == Decimal("1200.00")  # 3000 - 60% cost
    client.force_login(manager_a)  # store A's manager: the big buyer is store B's
    assert client.get(url).status_code == 404


def test_the_backtest_line_gives_its_calibration_end_as_a_russian_date(client, marketer, chain):
    from analytics.models import ClvModelFit

    fit = ClvModelFit.objects.order_by("-pk").first()
    fit.backtest = {
        **(fit.backtest or {}),
        "weeks": 26,
        "calibration_end": "2026-06-05",
        "predicted_total": 2302.4,
        "actual_total": 2295,
        "error": 0.003,
    }
    fit.save(update_fields=["backtest"])
    client.force_login(marketer)

    page = client.get(PAGE, chain["query"], HTTP_ACCEPT_LANGUAGE="ru").content.decode()

    line = page.split('data-testid="backtest-total">')[1].split("</td>")[0]
    assert "05.06.2026" in line and "2026-06-05" not in line

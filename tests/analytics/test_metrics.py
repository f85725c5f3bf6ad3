"""The full recompute and the one-customer refresh, rule by rule, on hand-built histories."""

import datetime as dt
from decimal import Decimal

import psycopg
import pytest
from django.db import connection

from analytics import metrics, services
from analytics.models import (
    AnalyticsSettings,
    ClassThresholds,
    ClvModelFit,
    CustomerMetrics,
    FavouriteCategories,
    HolidayAffinity,
    PurchaseDays,
    RecomputeRun,
    RunStatus,
)
from customers.models import AcquisitionChannel
from sales.models import Category
from tests.analytics.conftest import AS_OF, MSK, days_ago

pytestmark = pytest.mark.django_db


def recompute():
    run = services.metrics_recompute_all(as_of=AS_OF)
    assert run.status == RunStatus.DONE, run.error
    return run


def row(customer) -> CustomerMetrics:
    return CustomerMetrics.objects.get(customer=customer)


FIELDS = [f.name for f in CustomerMetrics._meta.fields if f.name != "computed_at"]


def favourites(customer) -> list:
    return (
        FavouriteCategories.objects.filter(customer=customer)
        .values_list("categories", flat=True)
        .first()
        or []
    )


def test_full_recompute_writes_one_row_per_customer_with_net_figures(shop):
    buyer = shop.customer()
    lead = shop.customer()
    first = shop.buy(buyer, days_ago(400), 1000)
    shop.buy(buyer, days_ago(30), 2000, cost=500)
    shop.give_back(first, days_ago(20))

    run = recompute()

    assert run.customers == 2 and run.progress == 100
    got = row(buyer)
    assert got.receipts == 2 and got.receipts_window == 1
    assert got.first_purchase_at == days_ago(400) and got.last_purchase_at == days_ago(30)
    # The return of the old receipt happened inside the window, so it comes off both figures.
    assert got.revenue == Decimal("2000.00")
    assert got.revenue_window == Decimal("1000.00")
    assert got.margin == Decimal("1500.00")
    assert got.margin_window == Decimal("1100.00")
    assert got.average_receipt == Decimal("1000.00")
    assert favourites(buyer) == [{"id": shop.category.pk, "name": "Одежда"}]
    empty = row(lead)
    assert empty.receipts == 0 and empty.value_class == "" and empty.rfm_segment == ""
    assert empty.recency_score is None and empty.predicted_clv is None


def test_vip_is_the_smallest_head_bringing_80_percent_exactly_at_the_boundary(shop):
    revenues = [5000, 3000, 1000, 500, 200, 100, 100, 50, 30, 20]
    people = [shop.customer() for _ in revenues]
    for person, amount in zip(people, revenues, strict=True):
        shop.buy(person, days_ago(10), amount)

    recompute()

    classes = [row(p).value_class for p in people]
    # 5000 + 3000 is exactly 80% of 10000, so the third customer is not needed.
    assert classes[:2] == ["VIP", "VIP"]
    assert "VIP" not in classes[2:]
    thresholds = ClassThresholds.objects.get()
    assert thresholds.vip_entry_revenue == Decimal("3000.00")
    assert thresholds.vip_count == 2 and thresholds.active_customers == 10


def test_vip_is_capped_at_20_percent_of_active_customers(shop):
    people = [shop.customer() for _ in range(10)]
    for person in people:
        shop.buy(person, days_ago(10), 1000)
    lapsed = shop.customer()
    shop.buy(lapsed, days_ago(500), 90000)

    recompute()

    # Eight equal customers would be needed for 80%; the cap keeps the top two (by id on ties).
    vips = [p.pk for p in people if row(p).value_class == "VIP"]
    assert vips == [people[0].pk, people[1].pk]
    assert row(lapsed).value_class == "D"  # no margin in the window


def test_returns_turning_margin_negative_make_a_customer_d(shop, regulars):
    customer = shop.customer()
    receipt = shop.buy_lines(customer, days_ago(40), [(1000, 0, 600), (1000, 500, 600)])
    shop.give_back(receipt, days_ago(35), line_no=1)
    even = shop.customer()
    shop.buy(even, days_ago(15), 700, cost=700)

    recompute()

    got = row(customer)
    assert got.margin_window == Decimal("-100.00") and got.revenue_window == Decimal("500.00")
    assert got.value_class == "D"
    assert row(even).margin_window == 0 and row(even).value_class == "D"


def test_new_customer_with_second_purchase_within_60_days_is_b(shop, regulars):
    quick, slow = shop.customer(), shop.customer()
    shop.buy(quick, days_ago(80), 300)
    shop.buy(quick, days_ago(20), 300)  # exactly 60 days later
    shop.buy(slow, days_ago(85), 300)
    shop.buy(slow, days_ago(24), 300)  # 61 days later

    recompute()

    assert row(quick).value_class == "B"
    assert row(slow).value_class == "C"


def test_fast_growth_at_exactly_one_and_a_half_times_the_prior_quarters_is_b(shop, regulars):
    grower, almost = shop.customer(), shop.customer()
    # 2750 over the 275 days before the last quarter is 900 a quarter; 1.5x that is 1350.
    for person, recent in ((grower, "1350.00"), (almost, "1349.99")):
        shop.buy(person, days_ago(300), 1375)
        shop.buy(person, days_ago(200), 1375)
        shop.buy(person, days_ago(30), recent)

    recompute()

    assert row(grower).value_class == "B"
    assert row(almost).value_class == "C"


def test_potential_vip_is_a_when_predicted_value_reaches_the_vip_entry_level(shop, regulars):
    candidate = shop.customer()
    for day in range(60, 0, -5):  # a newcomer buying every five days: little revenue so far
        shop.buy(candidate, days_ago(day), 400)
    recompute()
    value = row(candidate).predicted_value_12m
    assert value is not None and value > row(candidate).revenue_window
    thresholds = ClassThresholds.objects.get()

    thresholds.vip_entry_revenue = value
    thresholds.vip_entry_customer_id = 0
    thresholds.save(update_fields=["vip_entry_revenue", "vip_entry_customer_id"])
    services.customer_metrics_refresh(customer_id=candidate.pk, as_of=AS_OF)
    assert row(candidate).value_class == "A"

    thresholds.vip_entry_revenue = value + Decimal("0.01")
    thresholds.save(update_fields=["vip_entry_revenue"])
    services.customer_metrics_refresh(customer_id=candidate.pk, as_of=AS_OF)
    assert row(candidate).value_class != "A"


def test_rfm_quintiles_split_heavy_ties_into_equal_groups_by_rank(shop):
    people = [shop.customer() for _ in range(10)]
    # Six one-receipt customers tie on frequency; their spend decides the order among them.
    for index, person in enumerate(people[:6]):
        shop.buy(person, days_ago(100), 100 + index)
    for index, person in enumerate(people[6:], start=2):
        for k in range(index):
            shop.buy(person, days_ago(50 + k), 100)

    recompute()

    scores = [row(p).frequency_score for p in people]
    assert sorted(scores) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert scores[:6] == [1, 1, 2, 2, 3, 3]
    assert scores[6:] == [4, 4, 5, 5]


def test_rfm_segments_follow_the_r_by_f_grid(shop):
    people = [shop.customer() for _ in range(5)]
    # Recency and frequency both rise with the index: the last is a champion, the first asleep.
    for index, person in enumerate(people):
        for k in range(index + 1):
            shop.buy(person, days_ago(300 - index * 70 + k), 100)

    recompute()

    got = [(row(p).recency_score, row(p).frequency_score, row(p).rfm_segment) for p in people]
    assert got == [
        (1, 1, "hibernating"),
        (2, 2, "hibernating"),
        (3, 3, "needs_attention"),
        (4, 4, "loyal"),
        (5, 5, "champions"),
    ]


def test_holiday_affinity_needs_purchases_before_the_holiday_in_two_years(shop):
    flowers = Category.objects.create(name="Цветы")
    loyal, once, late = shop.customer(), shop.customer(), shop.customer()
    for year in (2024, 2025):
        shop.buy(loyal, dt.datetime(year, 3, 3, 15, tzinfo=MSK), 2500, category=flowers)
    shop.buy(loyal, dt.datetime(2025, 3, 1, 15, tzinfo=MSK), 900)  # 7 days before, other category
    shop.buy(once, dt.datetime(2025, 3, 5, 15, tzinfo=MSK), 2500, category=flowers)
    shop.buy(late, dt.datetime(2024, 3, 8, 15, tzinfo=MSK), 2500, category=flowers)
    shop.buy(late, dt.datetime(2025, 2, 20, 15, tzinfo=MSK), 2500, category=flowers)

    recompute()

    affinity = HolidayAffinity.objects.get(customer=loyal)
    assert (affinity.holiday, affinity.years, affinity.last_year) == ("03-08", 2, 2025)
    assert affinity.category == flowers
    assert not HolidayAffinity.objects.filter(customer__in=[once, late]).exists()


def test_historical_lcv_subtracts_the_acquisition_cost_of_the_customers_channel(shop):
    ads = AcquisitionChannel.objects.create(code="ads", name="Реклама", acquisition_cost=300)
    friends = AcquisitionChannel.objects.create(code="friends", name="Друзья")
    paid, referred, unknown = (
        shop.customer(acquisition_channel=ads),
        shop.customer(acquisition_channel=friends),
        shop.customer(),
    )
    for person in (paid, referred, unknown):
        shop.buy(person, days_ago(10), 1000)  # margin 400

    recompute()

    assert row(paid).historical_lcv == Decimal("100.00")
    assert row(referred).historical_lcv == Decimal("400.00")
    assert row(unknown).historical_lcv == Decimal("400.00")


def test_contact_effort_counts_contacts_per_thousand_of_window_revenue(shop):
    from tests.factories import ContactFactory

    customer = shop.customer()
    shop.buy(customer, days_ago(10), 4000)
    for day in (5, 50, 100):
        ContactFactory(customer=customer, at=days_ago(day))
    ContactFactory(customer=customer, at=days_ago(400))

    recompute()

    assert row(customer).contacts_window == 3
    assert row(customer).contact_effort == Decimal("0.750")


def test_incremental_refresh_matches_the_full_recompute_for_that_customer(shop, regulars):
    target = regulars[7]
    shop.give_back(target.receipts.order_by("purchased_at").last(), days_ago(2))
    recompute()
    full = CustomerMetrics.objects.filter(customer=target).values(*FIELDS).get()
    CustomerMetrics.objects.filter(customer=target).delete()

    services.customer_metrics_refresh(customer_id=target.pk, as_of=AS_OF)

    assert CustomerMetrics.objects.filter(customer=target).values(*FIELDS).get() == full
    assert full["predicted_clv"] is not None and full["recency_score"] is not None


def test_every_customers_refresh_matches_the_full_recompute(shop, regulars):
    """The full run scores in numpy and a refresh in SQL against the stored cut points; the
    money travels in kopecks through both. Every row must come out the same either way."""
    from tests.factories import ContactFactory

    odd = shop.customer()  # 100.01 over two receipts: an average exactly half a kopeck off
    shop.buy(odd, days_ago(40), "50.00")
    shop.buy(odd, days_ago(20), "50.01")
    ContactFactory(customer=odd, at=days_ago(3))
    shop.give_back(regulars[2].receipts.order_by("purchased_at").last(), days_ago(1))
    shop.customer()  # no receipts at all
    recompute()
    full = {values["customer"]: values for values in CustomerMetrics.objects.values(*FIELDS)}
    assert row(odd).average_receipt == Decimal("50.01")
    assert row(odd).contact_effort == Decimal("9.999")  # one contact per 100.01 roubles
    assert {v["recency_score"] for v in full.values()} == {None, 1, 2, 3, 4, 5}

    for customer_id in full:
        services.customer_metrics_refresh(customer_id=customer_id, as_of=AS_OF)

    refreshed = {values["customer"]: values for values in CustomerMetrics.objects.values(*FIELDS)}
    assert refreshed == full


def test_refresh_task_picks_up_a_new_receipt(shop, regulars):
    from analytics.tasks import refresh_customer_metrics

    recompute()
    customer = regulars[3]
    before = row(customer).receipts
    shop.buy(customer, dt.datetime.now(tz=MSK), 100)

    refresh_customer_metrics(customer.pk)

    assert row(customer).receipts == before + 1


def test_a_running_recompute_holds_an_advisory_lock_that_makes_another_skip(shop):
    customer = shop.customer()
    shop.buy(customer, days_ago(5), 100)
    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"] or 5432,
        user=settings["USER"],
        dbname=settings["NAME"],
        autocommit=True,
    ) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [metrics.FULL_RUN_KEY])
        run = services.metrics_recompute_all(as_of=AS_OF)
    assert run.status == RunStatus.SKIPPED
    assert not CustomerMetrics.objects.exists()
    assert recompute().status == RunStatus.DONE  # the lock went with the other session


def test_recompute_is_idempotent(shop, regulars):
    recompute()
    first = snapshot()
    recompute()  # starts the model fit from the first run's parameters
    assert_same(snapshot(), first)


def test_one_customer_gets_metrics_and_a_clear_message_instead_of_predictions(shop):
    customer = shop.customer()
    shop.buy(customer, days_ago(3), 100)

    recompute()

    fit = ClvModelFit.objects.get()
    assert "too few" in fit.message and not fit.published
    got = row(customer)
    # The labelled fallback: the window's margin (100 - 60% cost) carried over the horizon.
    assert got.value_class != "" and got.clv_basis == "fallback"
    assert got.predicted_clv is not None and got.predicted_clv < Decimal("40")
    assert got.p_alive is None and got.predicted_value_12m is None


def test_saving_settings_queues_a_recompute(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        conf = AnalyticsSettings.load()
        conf.vip_cap = Decimal("0.100")
        conf.save()
    assert len(callbacks) == 1
    assert RecomputeRun.objects.get().status == RunStatus.QUEUED


def test_holiday_affinity_covers_the_country_calendar_and_the_chains_own_dates(shop):
    from campaigns.models import ChainDate

    ChainDate.objects.create(name="День рождения сети", month=10, day=15)
    fan, patriot = shop.customer(), shop.customer()
    for year in (2023, 2025):
        shop.buy(fan, dt.datetime(year, 10, 12, 12, tzinfo=MSK), 800)
        shop.buy(patriot, dt.datetime(year, 6, 10, 12, tzinfo=MSK), 800)  # before 12 June

    recompute()

    assert HolidayAffinity.objects.get(customer=fan).holiday == "10-15"
    assert HolidayAffinity.objects.get(customer=patriot).holiday == "06-12"


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
    assert client.get("/admin/analytics/analyticssettings/").status_code == 200
    assert AnalyticsSettings.objects.filter(pk=1).exists()
    page = client.get("/admin/analytics/clvmodelfit/")
    assert page.status_code == 200 and b"0." in page.content
    assert client.get("/admin/analytics/recomputerun/").status_code == 200


def test_nightly_recompute_is_scheduled_for_beat_and_roles_hold_the_dashboard_permission():
    from django.contrib.auth.models import Group
    from django_celery_beat.models import PeriodicTask

    from analytics.tasks import recompute_all_metrics

    task = PeriodicTask.objects.get(task=recompute_all_metrics.name)
    assert task.enabled and task.crontab.hour == "3"
    for role in ("Administrator", "Marketer", "Store manager"):
        perms = Group.objects.get(name=role).permissions.values_list("codename", flat=True)
        assert "view_dashboard" in perms, role
    associate = Group.objects.get(name="Sales associate").permissions
    assert not associate.filter(codename="view_dashboard").exists()


MODEL_FIELDS = ("predicted_clv", "predicted_value_12m", "p_alive", "expected_purchases_90d")


def snapshot():
    rows = {
        values["customer"]: values
        for values in CustomerMetrics.objects.order_by("pk").values(*FIELDS)
    }
    for customer_id, categories in FavouriteCategories.objects.values_list(
        "customer_id", "categories"
    ):
        rows.setdefault(customer_id, {})["favourite_categories"] = categories
    for customer_id, days, first_value in PurchaseDays.objects.values_list(
        "customer_id", "days", "first_value"
    ):
        rows.setdefault(customer_id, {})["purchase_days"] = (days, first_value)
    affinity = set(
        HolidayAffinity.objects.values_list(
            "customer_id", "holiday", "years", "last_year", "category_id", "amount"
        )
    )
    return rows, affinity


def assert_same(got, expected) -> None:
    """Equal, except that the model's figures may differ by the optimiser's tolerance: each
    run refits the model, starting from the previous run's parameters."""
    got_rows, got_affinity = got
    expected_rows, expected_affinity = expected
    assert got_affinity == expected_affinity
    assert got_rows.keys() == expected_rows.keys()
    for key, row in got_rows.items():
        other = expected_rows[key]
        for name in MODEL_FIELDS:
            a, b = row.pop(name), other.pop(name)
            assert (a is None) == (b is None), (key, name)
            if a is not None:
                assert float(a) == pytest.approx(float(b), rel=1e-4, abs=0.02), (key, name)
        assert row == other


def age_history(days: int) -> None:
    """Make every receipt and return so far look received `days` ago (long before the run)."""
    with connection.cursor() as cursor:
        for table in ("sales_receipt", "sales_return"):
            cursor.execute(
                f"UPDATE {table} SET created_at = created_at - make_interval(days => %s)",  # noqa: S608 - fixed table names
                [days],
            )


def test_nightly_run_reuses_unchanged_history_and_matches_a_run_from_scratch(shop, regulars):
    from campaigns.models import ChainDate

    ChainDate.objects.create(name="День рождения сети", month=7, day=5)
    flowers = Category.objects.create(name="Цветы")
    toys = Category.objects.create(name="Игрушки")
    changer, returner, offline, habit, stable = (shop.customer() for _ in range(5))
    for days in (200, 100, 50):
        shop.buy(changer, days_ago(days), 1000)
        shop.buy(stable, days_ago(days), 700, category=toys)
    big = shop.buy(returner, days_ago(40), 5000, category=flowers)
    shop.buy(returner, days_ago(30), 1000)
    shop.buy(offline, days_ago(60), 800, category=toys)
    # Bought before the chain's 5 July in 2025 and, before the first run, in 2026.
    shop.buy(habit, dt.datetime(2025, 7, 1, 12, tzinfo=MSK), 1500, category=flowers)
    shop.buy(habit, dt.datetime(2026, 6, 28, 12, tzinfo=MSK), 1500, category=flowers)
    # Received long ago but dated after the first run's as-of time, so only the second sees
    # them: a purchase and a return of an old receipt.
    shop.buy(changer, AS_OF + dt.timedelta(days=7), 9000, category=flowers)
    shop.give_back(big, AS_OF + dt.timedelta(days=1))
    age_history(days=3)
    first = services.metrics_recompute_all(as_of=AS_OF)
    assert first.status == RunStatus.DONE, first.error
    assert favourites(changer)[0]["name"] == "Одежда"
    assert not HolidayAffinity.objects.filter(customer=habit).exists()  # 5 July 2026 not yet

    later = AS_OF + dt.timedelta(days=10)
    shop.buy(offline, days_ago(5), 5000, category=flowers)  # an offline till sending late
    assert services.metrics_recompute_all(as_of=later).status == RunStatus.DONE
    nightly = snapshot()
    assert services.metrics_recompute_all(as_of=later, from_scratch=True).status == RunStatus.DONE
    scratch = snapshot()

    rows, affinity = nightly
    assert_same(nightly, scratch)
    assert rows[changer.pk]["favourite_categories"][0]["name"] == "Цветы"
    assert [c["name"] for c in rows[returner.pk]["favourite_categories"]] == ["Одежда"]
    assert rows[offline.pk]["favourite_categories"][0]["name"] == "Цветы"
    assert (habit.pk, "07-05", 2, 2026, flowers.pk, Decimal("3000.00")) in affinity

    # The reuse is real: a clean customer's stored favourites survive a nightly run (so it did
    # not read their lines) and a run from scratch recomputes them.
    FavouriteCategories.objects.filter(customer=stable).update(categories=[{"id": 0}])
    age_history(days=3)
    assert services.metrics_recompute_all(as_of=later).status == RunStatus.DONE
    assert favourites(stable) == [{"id": 0}]
    assert services.metrics_recompute_all(as_of=later, from_scratch=True).status == RunStatus.DONE
    assert favourites(stable) == [{"id": toys.pk, "name": "Игрушки"}]

    # Purchase days likewise; and should a buyer's row go missing, the nightly run rebuilds
    # every row rather than misalign the models' arrays.
    stored = PurchaseDays.objects.get(customer=stable)
    PurchaseDays.objects.filter(customer=stable).update(first_value=1)
    age_history(days=3)
    assert services.metrics_recompute_all(as_of=later).status == RunStatus.DONE
    assert PurchaseDays.objects.get(customer=stable).first_value == 1
    PurchaseDays.objects.filter(customer=returner).delete()
    assert services.metrics_recompute_all(as_of=later).status == RunStatus.DONE
    assert PurchaseDays.objects.get(customer=returner).days
    assert PurchaseDays.objects.get(customer=stable).first_value == stored.first_value == 70000
    rebuilt = snapshot()
    assert services.metrics_recompute_all(as_of=later, from_scratch=True).status == RunStatus.DONE
    assert_same(rebuilt, snapshot())


def test_favourites_go_when_everything_in_them_was_returned(shop):
    customer = shop.customer()
    receipt = shop.buy(customer, days_ago(10), 1000)
    age_history(days=3)
    recompute()
    assert favourites(customer) != []
    shop.give_back(receipt, days_ago(1))

    recompute()  # nightly: the return makes the customer dirty

    assert not FavouriteCategories.objects.filter(customer=customer).exists()
    assert row(customer).revenue == 0


def test_a_refresh_during_the_full_run_keeps_its_newer_favourites(shop):
    customer = shop.customer()
    shop.buy(customer, days_ago(10), 1000)
    started = AS_OF - dt.timedelta(hours=1)
    FavouriteCategories.objects.create(customer=customer, categories=[{"id": 0}], computed_at=AS_OF)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE am_dirty AS SELECT %s::bigint AS customer_id", [customer.pk]
        )
        cursor.execute(
            "CREATE TEMP TABLE am_fav AS "
            "SELECT customer_id, '[]'::jsonb AS categories FROM am_dirty"
        )

    metrics.write_favourites(metrics.BaseTables(), started)

    assert favourites(customer) == [{"id": 0}]  # written after the run began: it stays
    metrics.write_favourites(metrics.BaseTables(), AS_OF + dt.timedelta(seconds=1))
    assert favourites(customer) == []
    metrics.drop_temp_tables()


def test_renaming_a_category_makes_the_nightly_run_recompute_every_favourite(shop):
    customer = shop.customer()
    shop.buy(customer, days_ago(10), 1000)
    age_history(days=3)
    recompute()
    Category.objects.filter(pk=shop.category.pk).update(name="Одежда и обувь")
    recompute()
    assert favourites(customer) == [{"id": shop.category.pk, "name": "Одежда и обувь"}]


def test_receipt_margin_is_kept_equal_to_its_lines_by_every_writer(shop):
    from sales.models import Receipt, ReceiptLine

    customer = shop.customer()
    receipt = shop.buy_lines(customer, days_ago(1), [(1000, 100, 500), (300, 0, 100)])
    receipt.refresh_from_db()
    assert receipt.margin == Decimal("600.00")
    ReceiptLine.objects.filter(receipt=receipt, line_no=2).update(unit_cost=Decimal("50"))
    receipt.refresh_from_db()
    assert receipt.margin == Decimal("650.00")
    ReceiptLine.objects.filter(receipt=receipt, line_no=1).delete()
    receipt.refresh_from_db()
    assert receipt.margin == Decimal("250.00")
    assert Receipt.objects.get(pk=receipt.pk).total == Decimal("1200.00")  # untouched


def model_history(as_of=AS_OF):
    """The purchase-day arrays the models see, straight from the pipeline."""
    params = metrics.Params.build(as_of)
    base = metrics.build_base(params, None, metrics._noop)
    try:
        days = metrics.fetch_days(params, base)
        rows = zip(*days.model_arrays()[1:], strict=True)
        return dict(zip(days.ids.tolist(), rows, strict=True)), days
    finally:
        metrics.drop_temp_tables()


def test_purchase_days_two_receipts_on_a_day_a_return_on_a_repeat_day_first_day_only(shop):
    twice = shop.customer()
    shop.buy(twice, days_ago(30).replace(hour=10), 700)
    shop.buy(twice, days_ago(30).replace(hour=18), 300)  # the same day: one transaction
    shop.buy(twice, days_ago(20), 400)
    shop.buy(twice, days_ago(20).replace(hour=9), 100)
    returned = shop.buy_lines(twice, days_ago(10), [(900, 0, 100), (250, 0, 100)])
    shop.give_back(returned, days_ago(5), line_no=2)  # that day's value is 900, net
    first_only = shop.customer()
    shop.buy(first_only, days_ago(40).replace(hour=10), 500)
    shop.buy(first_only, days_ago(40).replace(hour=20), 800)

    found, _days = model_history()

    x, t_x, T, m = found[twice.pk]
    # Days 30 (first), 20 and 10 before the as-of day: two repeat days; the first day's 1000
    # is left out of the spend, the returned line comes off its own day.
    assert (x, t_x, T) == (2.0, 20.0, 30.0)
    assert m == pytest.approx((500 + 900) / 2)
    assert found[first_only.pk] == (0.0, 0.0, 40.0, 0.0)


def test_a_purchase_day_is_the_local_date_of_the_store_that_printed_it(shop):
    from tests.analytics.conftest import Shop
    from tests.factories import StoreFactory

    far_east = Shop(StoreFactory(code="vvo-1", timezone="Asia/Vladivostok"))
    customer = shop.customer()
    shop.buy(customer, days_ago(10), 300)
    shop.buy(customer, days_ago(3).replace(hour=23, minute=30), 300)
    # 20:00 in Moscow is 03:00 of the next day in Vladivostok.
    far_east.buy(customer, days_ago(3).replace(hour=20), 300)
    found, _days = model_history()
    # In Moscow time these would be one day; in the stores' own zones they are two.
    assert found[customer.pk][0] == 2.0


def test_a_degenerate_fit_is_not_published_and_cards_get_the_labelled_fallback(
    shop, client, admin_user
):
    from tests.analytics.conftest import lenient_gate

    lenient_gate()
    # Clockwork customers: every one buys every 20 days and none ever stops, so the
    # likelihood runs off to a -> 0, b -> infinity (as the demo chain did before).
    people = [shop.customer() for _ in range(12)]
    for index, person in enumerate(people):
        for day in range(400 - index * 7, 0, -20):
            shop.buy(person, days_ago(day), 500 + 50 * index)
    recompute()
    fit = ClvModelFit.objects.first()
    assert not fit.published
    assert any("degenerate" in note["text"] for note in fit.gate_notes), fit.gate_notes
    got = row(people[0])
    assert got.clv_basis == "fallback" and got.predicted_value_12m is None
    assert got.p_alive is None and got.value_class != "A"
    # The fallback is the window's margin (40% of 500 per 20 days) carried over 12 months.
    window_margin = got.margin_window
    expected = window_margin * Decimal(365.25 / 12 / 365) * 12
    assert float(got.predicted_clv) == pytest.approx(float(expected), rel=0.1)
    assert float(got.predicted_clv) < float(expected)  # discounted
    client.force_login(admin_user)
    card = client.get(f"/customers/{people[0].pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Fallback: trailing margin rate" in card and "degenerate" in card
    page = client.get("/analytics/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "not published" in page and "degenerate" in page


def test_the_first_start_of_an_install_with_receipts_computes_once(shop):
    from django.core.management import call_command

    call_command("recompute_metrics", "--if-never-run")  # no receipts: nothing to do
    assert not RecomputeRun.objects.exists()
    customer = shop.customer()
    shop.buy(customer, days_ago(3), 100)
    call_command("recompute_metrics", "--if-never-run")
    assert RecomputeRun.objects.get().status == RunStatus.DONE
    assert row(customer).value_class != ""
    call_command("recompute_metrics", "--if-never-run")  # done once: later starts skip it
    assert RecomputeRun.objects.count() == 1


def test_the_card_explains_each_figure_in_the_readers_language(shop, regulars, client, admin_user):
    recompute()
    assert ClvModelFit.objects.first().published
    person = regulars[0]
    got = row(person)
    assert got.clv_basis == "model" and got.p_alive is not None
    client.force_login(admin_user)
    card = client.get(f"/customers/{person.pk}/", HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    for text in (
        "Маржа, заработанная на клиенте до сих пор",
        "приведённая к сегодняшнему дню: сопоставима с LCV",
        "Вероятность, что клиент всё ещё покупает у нас",
        "Сколько дней с покупками модели ожидают",
    ):
        assert text in card
    assert "Запасная оценка" not in card
    # CLV is margin, like the LCV: never more than the revenue the model expects.
    assert got.predicted_clv <= got.predicted_value_12m


def test_the_first_receipts_of_an_empty_install_queue_the_first_full_recompute(
    shop, django_capture_on_commit_callbacks
):
    customer = shop.customer()
    shop.buy(customer, days_ago(1), 100)
    with django_capture_on_commit_callbacks() as callbacks:
        services.customer_metrics_refresh(customer_id=customer.pk, as_of=AS_OF)
    assert len(callbacks) == 1  # the task, sent to the worker after commit
    run = RecomputeRun.objects.get()
    assert run.status == RunStatus.QUEUED
    services.metrics_recompute_all(run_id=run.pk, as_of=AS_OF)  # what the worker does
    assert RecomputeRun.objects.get().status == RunStatus.DONE
    assert ClvModelFit.objects.exists() and row(customer).value_class != ""
    with django_capture_on_commit_callbacks() as callbacks:
        services.customer_metrics_refresh(customer_id=customer.pk, as_of=AS_OF)
    assert callbacks == [] and RecomputeRun.objects.count() == 1  # only the first time

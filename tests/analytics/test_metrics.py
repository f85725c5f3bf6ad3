"""The full recompute and the one-customer refresh, rule by rule, on hand-built histories."""

import datetime as dt
from decimal import Decimal

import psycopg
import pytest
from django.db import connection

from analytics import metrics, services
from analytics.metrics import write
from analytics.models import (
    ClassThresholds,
    ClvModelFit,
    CustomerMetrics,
    HolidayAffinity,
    RunStatus,
)
from customers.models import AcquisitionChannel
from sales.models import Category
from tests.analytics.conftest import AS_OF, MSK, days_ago, favourites, recompute, row

pytestmark = pytest.mark.django_db

FIELDS = [f.name for f in CustomerMetrics._meta.fields if f.name != "computed_at"]


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
        # Released here, not by closing: a closed session's server process lets its locks go
        # only when it exits, which a loaded machine may not have done by the next line.
        other.execute("SELECT pg_advisory_unlock(%s)", [metrics.FULL_RUN_KEY])
    assert run.status == RunStatus.SKIPPED
    assert not CustomerMetrics.objects.exists()
    assert recompute().status == RunStatus.DONE  # the lock went with the other session


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


@pytest.mark.parametrize(
    ("ratio", "window_days"),
    [("1.50", 365), ("0.00", 365), ("0.33", 91), ("2.75", 1000), ("999.99", 3660), ("1", 180)],
)
def test_growth_rule_in_integers_gives_the_numeric_rules_answer(ratio, window_days):
    """At, just below and just above the boundary, for small and huge amounts (the latter past
    the integer limits, so the numeric rule itself decides), both branches agree."""
    params = {
        "b_ratio": Decimal(ratio),
        "window_days": window_days,
        **write.growth_params(Decimal(ratio), window_days),
    }
    cases = []
    for prior in (1, 7, 2749, 275_000, 10**9 + 3, 10**12 + 7, 3 * 10**15 + 1):
        # The smallest revenue_90 meeting the rule exactly, from integers.
        num, den = Decimal(ratio).as_integer_ratio()
        span = window_days - 90
        least = -(-num * prior * 90 // (den * span))
        cases += [(prior + at, at) for at in (least - 1, least, least + 1, 0, -5)]
    numeric = "revenue_90 >= %(b_ratio)s * (revenue_w - revenue_90) * 90 / (%(window_days)s - 90)"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT revenue_w, revenue_90, ({write.GROWTH_SQL}) AS fast, ({numeric}) AS expected
            FROM unnest(%(w)s::bigint[], %(q)s::bigint[]) AS t(revenue_w, revenue_90)
            WHERE revenue_w - revenue_90 > 0
            """,  # noqa: S608 - fixed SQL fragments
            {**params, "w": [w for w, _q in cases], "q": [q for _w, q in cases]},
        )
        rows = cursor.fetchall()
    assert len(rows) == len(cases)
    assert [r for r in rows if r[2] != r[3]] == []
    # The integer branch decided the ordinary amounts (not only the numeric fallback).
    assert params["b_limit"] >= 10**9 + 3

"""Results against a hand computation on constructed data."""

import datetime as dt
import math
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from campaigns.models import CampaignStatus, Message
from campaigns.services import delivery
from campaigns.services.results import campaign_results, results_csv
from customers.models import Customer
from sales.services import return_record
from tests.campaigns.conftest import customer, make_campaign

MSK = ZoneInfo("Europe/Moscow")
T0 = dt.datetime(2026, 4, 1, 10, tzinfo=MSK)


def day(n):
    return T0 + dt.timedelta(days=n)


@pytest.fixture
def constructed(marketer, store_a, shop):
    r1, r2, r3, r4, h1, h2, h3 = (customer(store_a, email=f"c{i}@mail.ru") for i in range(7))
    campaign = make_campaign(marketer, attribution_days=14, status=CampaignStatus.DONE)
    delivery.materialise(
        campaign=campaign, occasion="once", customers=Customer.objects.all(), now=T0
    )
    Message.objects.filter(customer__in=[h1, h2, h3]).update(state="holdout")
    Message.objects.filter(customer__in=[r1, r2]).update(state="sent")
    Message.objects.filter(customer=r3).update(state="failed")
    Message.objects.filter(customer=r4).update(state="sent", unsubscribed_at=day(1))
    shop.buy(r1, day(1), 1000, cost=600)  # margin 400
    bought = shop.buy(r2, day(2), 500, cost=300)  # returned in full: responded, but 0 revenue
    return_record(
        store=store_a,
        receipt=bought,
        pos_return_id="RET-1",
        returned_at=day(3),
        lines=[(1, Decimal("1"))],
    )
    shop.buy(r3, day(20), 2000)  # after the window
    shop.buy(h1, day(5), 300, cost=180)  # margin 120
    shop.buy(h3, day(-1), 100)  # before the window
    return campaign


def test_uplift_matches_hand_computation(constructed):
    results = campaign_results(campaign=constructed)
    assert (results.recipients, results.holdout) == (4, 3)
    response, revenue, margin = results.figures
    # Response: recipients [1, 1, 0, 0], holdout [1, 0, 0]; sample variances 1/3 and 1/3.
    assert response.recipients == pytest.approx(0.5)
    assert response.holdout == pytest.approx(1 / 3)
    assert response.uplift == pytest.approx(1 / 6)
    se = math.sqrt((1 / 3) / 4 + (1 / 3) / 3)
    assert response.ci_low == pytest.approx(1 / 6 - 1.959964 * se, abs=1e-5)
    assert response.ci_high == pytest.approx(1 / 6 + 1.959964 * se, abs=1e-5)
    # Revenue: [1000, 0, 0, 0] (mean 250, s^2 250000) vs [300, 0, 0] (mean 100, s^2 30000).
    assert (revenue.recipients, revenue.holdout, revenue.uplift) == pytest.approx((250, 100, 150))
    se = math.sqrt(250000 / 4 + 30000 / 3)
    assert revenue.ci_low == pytest.approx(150 - 1.959964 * se, abs=1e-3)
    assert revenue.ci_high == pytest.approx(150 + 1.959964 * se, abs=1e-3)
    # Margin: [400, 0, 0, 0] (mean 100, s^2 40000) vs [120, 0, 0] (mean 40, s^2 4800).
    assert (margin.recipients, margin.holdout, margin.uplift) == pytest.approx((100, 40, 60))
    se = math.sqrt(40000 / 4 + 4800 / 3)
    assert margin.ci_high == pytest.approx(60 + 1.959964 * se, abs=1e-3)
    assert results.counts["delivered"] == 3
    assert results.counts["failed"] == 1
    assert results.counts["unsubscribed"] == 1
    assert results.counts["holdout"] == 3


def test_results_csv_has_figures_and_counts(constructed):
    text = results_csv(campaign_results(campaign=constructed))
    assert "revenue_per_customer,250.000000,100.000000,150.000000," in text
    assert "delivered,3" in text
    assert "@" not in text  # no personal data in the export

"""The models' inputs (purchase days, receipt margins), the sanity gate, the first start and the
card's explanations."""

from decimal import Decimal

import pytest

from analytics import metrics, services
from analytics.models import (
    ClvModelFit,
    RecomputeRun,
    RunStatus,
)
from tests.analytics.conftest import AS_OF, days_ago, recompute, row

pytestmark = pytest.mark.django_db


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

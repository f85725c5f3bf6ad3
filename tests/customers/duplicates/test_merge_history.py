"""A merge (and its undo) moves receipts without changing their dates: the nightly analytics must
still count the cards it touched as changed, and agree with a run from scratch."""

import datetime as dt

import pytest

from analytics import services
from analytics.models import FavouriteCategories, RunStatus
from customers.duplicates.merge import customer_merge, customer_merge_undo
from customers.duplicates.selectors import cards_rehomed_since
from sales.models import Category
from tests.analytics.conftest import AS_OF, days_ago, shop  # noqa: F401 - the fixture
from tests.analytics.test_metrics_history import age_history, assert_same, snapshot

pytestmark = pytest.mark.django_db
LATER = AS_OF + dt.timedelta(days=10)


def names(customer) -> list[str]:
    rows = FavouriteCategories.objects.filter(customer=customer).values_list(
        "categories", flat=True
    )
    return [c["name"] for c in (rows.first() or [])]


def nightly_then_scratch():
    assert services.metrics_recompute_all(as_of=LATER).status == RunStatus.DONE
    nightly = snapshot()
    assert services.metrics_recompute_all(as_of=LATER, from_scratch=True).status == RunStatus.DONE
    assert_same(nightly, snapshot())
    return nightly


def test_merge_and_undo_count_as_changes_for_the_nightly_run(shop, admin_user):  # noqa: F811
    flowers = Category.objects.create(name="Цветы")
    survivor, absorbed = shop.customer(), shop.customer()
    shop.buy(survivor, days_ago(100), 500)
    for days in (90, 60, 30):
        shop.buy(absorbed, days_ago(days), 2000, category=flowers)
    age_history(days=3)
    assert services.metrics_recompute_all(as_of=AS_OF).status == RunStatus.DONE
    assert names(survivor) == ["Одежда"]

    merge = customer_merge(actor=admin_user, survivor_id=survivor.pk, absorbed_ids=[absorbed.pk])
    assert survivor.pk in cards_rehomed_since(merge.at)

    nightly_then_scratch()
    assert names(survivor)[0] == "Цветы"

    age_history(days=3)
    customer_merge_undo(actor=admin_user, merge=merge)
    rows, _affinity = nightly_then_scratch()
    assert names(survivor) == ["Одежда"]
    assert names(absorbed) == ["Цветы"]
    assert rows[absorbed.pk]["purchase_days"]

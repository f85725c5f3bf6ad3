"""Customers marks buyers for sales: one statement per batch, only the cards that change."""

import pytest

from customers.buyers import customers_mark_buyers
from customers.models import Customer, LifecycleStage
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_leads_and_lapsed_become_customers_in_one_statement(django_assert_num_queries):
    lead = CustomerFactory(lifecycle_stage=LifecycleStage.LEAD)
    lapsed = CustomerFactory(lifecycle_stage=LifecycleStage.LAPSED)
    buyer = CustomerFactory(lifecycle_stage=LifecycleStage.CUSTOMER)
    untouched = CustomerFactory(lifecycle_stage=LifecycleStage.LEAD)

    with django_assert_num_queries(1):
        changed = customers_mark_buyers([lead.pk, lapsed.pk, buyer.pk, None])

    assert changed == 2
    stages = dict(Customer.objects.values_list("pk", "lifecycle_stage"))
    assert stages[lead.pk] == stages[lapsed.pk] == stages[buyer.pk] == LifecycleStage.CUSTOMER
    assert stages[untouched.pk] == LifecycleStage.LEAD


def test_nothing_to_mark_costs_no_query(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert customers_mark_buyers([None]) == 0

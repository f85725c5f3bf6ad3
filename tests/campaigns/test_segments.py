"""The segment compiler: one test per condition type, groups, visibility, one SQL query."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from analytics.models import CustomerMetrics, HolidayAffinity
from campaigns.models import Segment
from campaigns.services.campaigns import segment_freeze, segment_save
from campaigns.services.segments import (
    birthday_q,
    clean_rules,
    segment_customers,
    validate_rules,
)
from customers.models import Customer, Tag
from tests.campaigns.conftest import customer
from tests.factories import CategoryFactory, ProductFactory


def ids(user, rules):
    return set(segment_customers(user=user, rules=rules).values_list("id", flat=True))


def cond(field, op, value=None, **extra):
    return {"field": field, "op": op, "value": value, **extra}


@pytest.fixture
def two(store_a, store_b):
    a = customer(store_a, first_name="Анна", city="Москва", gender="f", children_count=2)
    b = customer(store_b, first_name="Борис", city="Санкт-Петербург", gender="m", email="")
    return a, b


def test_card_fields(marketer, two):
    a, b = two
    assert ids(marketer, cond("gender", "in", ["f"])) == {a.pk}
    assert ids(marketer, cond("gender", "not_in", ["f"])) == {b.pk}
    assert ids(marketer, cond("city", "contains", "петер")) == {b.pk}
    assert ids(marketer, cond("city", "eq", "москва")) == {a.pk}
    assert ids(marketer, cond("children_count", "gte", 1)) == {a.pk}
    assert ids(marketer, cond("has_email", "no")) == {b.pk}
    assert ids(marketer, cond("lifecycle_stage", "in", ["lead"])) == {a.pk, b.pk}


def test_age_counts_whole_years(marketer, store_a):
    today = timezone.localdate()
    turned_30_today = customer(store_a, birth_date=today.replace(year=today.year - 30))
    turns_30_tomorrow = customer(
        store_a, birth_date=(today + dt.timedelta(days=1)).replace(year=today.year - 30)
    )
    assert ids(marketer, cond("age", "gte", 30)) == {turned_30_today.pk}
    assert ids(marketer, cond("age", "lte", 29)) == {turns_30_tomorrow.pk}


def test_custom_fields_json(marketer, store_a):
    dog = customer(store_a, custom_fields={"pet": "Dog and cat", "size": 44})
    cat = customer(store_a, custom_fields={"pet": "cat", "size": 38})
    customer(store_a, custom_fields={})
    assert ids(marketer, cond("custom_field", "eq", "cat", key="pet")) == {cat.pk}
    assert ids(marketer, cond("custom_field", "contains", "CAT", key="pet")) == {dog.pk, cat.pk}
    assert ids(marketer, cond("custom_field", "gte", 40, key="size")) == {dog.pk}
    assert ids(marketer, cond("custom_field", "lte", 40, key="size")) == {cat.pk}
    assert ids(marketer, cond("custom_field", "is_set", key="size")) == {dog.pk, cat.pk}


def test_tags_any_and_none(marketer, store_a):
    vip = Tag.objects.create(name="vip")
    tagged = customer(store_a)
    tagged.tags.add(vip)
    plain = customer(store_a)
    assert ids(marketer, cond("tag", "any", [vip.pk])) == {tagged.pk}
    assert ids(marketer, cond("tag", "none", [vip.pk])) == {plain.pk}


def test_home_store_and_consent(marketer, two, store_a):
    a, b = two
    Customer.objects.filter(pk=b.pk).update(consent_sms=False)
    assert ids(marketer, cond("home_store", "in", [store_a.pk])) == {a.pk}
    assert ids(marketer, cond("home_store", "not_in", [store_a.pk])) == {b.pk}
    assert ids(marketer, cond("consent", "not_granted", "sms")) == {b.pk}
    assert ids(marketer, cond("do_not_contact", "no")) == {a.pk, b.pk}


def test_metric_conditions(marketer, two):
    a, b = two
    now = timezone.now()
    CustomerMetrics.objects.create(
        customer=a,
        value_class="VIP",
        rfm_segment="champions",
        historical_lcv=50000,
        predicted_clv=90000,
        p_alive=0.9,
        computed_at=now,
    )
    CustomerMetrics.objects.create(
        customer=b, value_class="D", rfm_segment="hibernating", p_alive=0.1, computed_at=now
    )
    assert ids(marketer, cond("value_class", "in", ["VIP", "A"])) == {a.pk}
    assert ids(marketer, cond("value_class", "not_in", ["VIP"])) == {b.pk}
    assert ids(marketer, cond("rfm_segment", "in", ["hibernating"])) == {b.pk}
    assert ids(marketer, cond("historical_lcv", "gte", "10000.50")) == {a.pk}
    assert ids(marketer, cond("predicted_clv", "lte", 100000)) == {a.pk}
    assert ids(marketer, cond("p_alive", "lte", 0.2)) == {b.pk}


def test_purchase_conditions(marketer, two, shop):
    a, b = two
    now = timezone.now()
    roses = CategoryFactory(name="Розы", parent=shop.category)
    shop.buy(a, now - dt.timedelta(days=3), 1000, category=roses)
    shop.buy(a, now - dt.timedelta(days=40), 500)
    shop.buy(b, now - dt.timedelta(days=100), 700, category=CategoryFactory(name="Вазы"))
    product = ProductFactory(category=roses)
    assert ids(marketer, cond("bought_category", "within_days", [shop.category.pk], days=7)) == {
        a.pk
    }
    assert ids(marketer, cond("bought_category", "within_days", [roses.pk], days=2)) == set()
    assert ids(marketer, cond("bought_product", "within_days", [product.pk], days=7)) == set()
    line_product = a.receipts.order_by("-purchased_at").first().lines.get().product
    assert ids(marketer, cond("bought_product", "within_days", [line_product.pk], days=7)) == {a.pk}
    assert ids(marketer, cond("receipts_count", "gte", 2, days=0)) == {a.pk}
    assert ids(marketer, cond("receipts_count", "gte", 2, days=30)) == set()
    assert ids(marketer, cond("receipts_count", "lt", 1, days=30)) == {b.pk}
    since = (now - dt.timedelta(days=60)).date().isoformat()
    assert ids(marketer, cond("no_purchase_since", "since", since)) == {b.pk}


def test_holiday_affinity(marketer, two):
    a, b = two
    HolidayAffinity.objects.create(customer=a, holiday="03-08", years=2, last_year=2025)
    assert ids(marketer, cond("holiday_affinity", "has", "03-08")) == {a.pk}
    assert ids(marketer, cond("holiday_affinity", "has_not", "03-08")) == {b.pk}


@pytest.mark.parametrize(
    ("today", "days", "born", "inside"),
    [
        (dt.date(2026, 12, 28), 7, dt.date(1990, 1, 3), True),  # across the new year
        (dt.date(2026, 12, 28), 7, dt.date(1990, 1, 5), False),
        (dt.date(2026, 12, 28), 7, dt.date(1990, 12, 27), False),
        (dt.date(2027, 2, 25), 3, dt.date(1992, 2, 29), True),  # 29 Feb on 28 Feb in 2027
        (dt.date(2028, 2, 25), 3, dt.date(1992, 2, 29), False),  # 2028 has a 29th
        (dt.date(2028, 2, 25), 4, dt.date(1992, 2, 29), True),
        (dt.date(2026, 3, 1), 0, dt.date(1992, 2, 29), False),
        (dt.date(2026, 5, 10), 0, dt.date(1980, 5, 10), True),
    ],
)
def test_birthday_within_days_wraps_year_and_handles_29_february(
    marketer, store_a, today, days, born, inside
):
    who = customer(store_a, birth_date=born)
    found = Customer.objects.filter(birthday_q(today, days)).filter(pk=who.pk).exists()
    assert found is inside


def test_nested_and_or_not_groups(marketer, store_a, store_b):
    f_msk = customer(store_a, gender="f", city="Москва")
    m_msk = customer(store_a, gender="m", city="Москва")
    f_spb = customer(store_b, gender="f", city="СПб")
    m_spb = customer(store_b, gender="m", city="СПб")
    tree = {
        "op": "or",
        "rules": [
            {"op": "and", "rules": [cond("gender", "in", ["f"]), cond("city", "eq", "Москва")]},
            {"op": "not", "rules": [cond("home_store", "in", [store_a.pk])]},
        ],
    }
    assert ids(marketer, tree) == {f_msk.pk, f_spb.pk, m_spb.pk}
    assert m_msk.pk not in ids(marketer, tree)


def test_segment_count_is_one_query(marketer, two, shop):
    tree = {
        "op": "and",
        "rules": [
            cond("value_class", "not_in", ["D"]),
            cond("bought_category", "within_days", [shop.category.pk], days=30),
            {
                "op": "or",
                "rules": [cond("birthday_within", "within_days", 10), cond("tag", "any", [1])],
            },
        ],
    }
    rules = clean_rules(tree)
    qs = segment_customers(user=marketer, rules=rules)
    with CaptureQueriesContext(connection) as queries:
        qs.count()
    assert len(queries) == 1


def test_manager_segment_respects_visibility(manager_a, marketer, two):
    a, b = two
    everyone = {"op": "and", "rules": []}
    assert ids(manager_a, everyone) == {a.pk}
    assert ids(marketer, everyone) == {a.pk, b.pk}


@pytest.mark.parametrize(
    "tree",
    [
        {"field": "nope", "op": "in", "value": []},
        {"field": "gender", "op": "gte", "value": 1},
        {"field": "gender", "op": "in", "value": ["x"]},
        {"field": "bought_category", "op": "within_days", "value": [1]},
        {"field": "custom_field", "op": "eq", "value": "a", "key": "Bad Key"},
        {"op": "xor", "rules": []},
        {"field": "birthday_within", "op": "within_days", "value": -1},
        {"field": "holiday_affinity", "op": "has", "value": "13-45"},
        "not a rule",
    ],
)
def test_invalid_rule_trees_are_rejected_with_messages(tree):
    assert validate_rules(tree)
    with pytest.raises(ValidationError):
        clean_rules(tree)


def test_frozen_segment_keeps_its_list(marketer, two, store_a):
    a, b = two
    segment = segment_save(
        actor=marketer, name="Москва", rules=cond("home_store", "in", [store_a.pk])
    )
    assert segment_freeze(actor=marketer, segment=segment) == 1
    late = customer(store_a)
    segment.refresh_from_db()
    assert set(segment_customers(user=marketer, segment=segment).values_list("id", flat=True)) == {
        a.pk
    }
    assert late.pk not in set(segment.members.values_list("customer_id", flat=True))
    with pytest.raises(ValidationError):
        segment_save(actor=marketer, segment=segment, name="x", rules={})
    assert Segment.objects.count() == 1

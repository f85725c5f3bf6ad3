"""Compilation of a valid segment rule tree to one `Q` (correlated EXISTS subqueries).

See the package docstring (campaigns.services.segments).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from dateutil.relativedelta import relativedelta
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import ExtractDay, ExtractMonth
from django.db.models.lookups import GreaterThanOrEqual, IContains, LessThanOrEqual
from django.utils import timezone

from customers.access import visible_customers

from .schema import clean_rules


def _metrics(**filters) -> Exists:
    from analytics.models import CustomerMetrics

    return Exists(CustomerMetrics.objects.filter(customer=OuterRef("pk"), **filters))


def _since(days: int) -> dt.datetime:
    return timezone.now() - dt.timedelta(days=days)


def _json_value(value: Any):
    from django.db.models import JSONField, Value

    return Value(value, output_field=JSONField())


def birthday_q(start: dt.date, days: int) -> Q:
    """Birthdays (month and day) from `start` to `start + days`, across a year end.

    A 29 February birthday is celebrated on 28 February in a common year, so it is included
    whenever the range reaches 28 February of a year without a 29th.
    """
    end = start + dt.timedelta(days=days)
    md = ExtractMonth("birth_date") * 100 + ExtractDay("birth_date")

    def key(d: dt.date) -> int:
        return d.month * 100 + d.day

    def widen(d: dt.date) -> int:
        leap = d.year % 4 == 0 and (d.year % 100 != 0 or d.year % 400 == 0)
        return 229 if key(d) == 228 and not leap else key(d)

    if days >= 365:
        return Q(birth_date__isnull=False)
    if end.year == start.year:
        return Q(GreaterThanOrEqual(md, key(start))) & Q(LessThanOrEqual(md, widen(end)))
    return Q(GreaterThanOrEqual(md, key(start))) | Q(LessThanOrEqual(md, widen(end)))


def _condition(node: dict, today: dt.date) -> Q:  # noqa: C901 - one branch per field
    from analytics.models import HolidayAffinity
    from customers.models import Customer
    from sales.models import Category, Receipt, ReceiptLine

    field, op, value = node["field"], node["op"], node.get("value")
    if field in {"gender", "lifecycle_stage"}:
        q = Q(**{f"{field}__in": value})
        return q if op == "in" else ~q
    if field == "city":
        return Q(city__iexact=value) if op == "eq" else Q(city__icontains=value)
    if field == "age":
        # age >= n  <=>  born on or before today minus n years
        if op == "gte":
            return Q(birth_date__lte=today - relativedelta(years=value))
        return Q(birth_date__gt=today - relativedelta(years=value + 1))
    if field == "children_count":
        return Q(**{f"children_count__{'exact' if op == 'eq' else op}": value})
    if field == "card_created":
        moment = dt.datetime.combine(
            dt.date.fromisoformat(value), dt.time.min, tzinfo=timezone.get_current_timezone()
        )
        return Q(created_at__lt=moment) if op == "before" else Q(created_at__gte=moment)
    if field in {"has_email", "has_phone"}:
        column = "email" if field == "has_email" else "phone"
        q = ~Q(**{column: ""})
        return q if op == "yes" else ~q
    if field == "custom_field":
        key = node["key"]
        if op == "is_set":
            return Q(custom_fields__has_key=key)
        if op == "contains":
            return Q(IContains(KeyTextTransform(key, "custom_fields"), value))
        lhs = KeyTransform(key, "custom_fields")
        if op == "gte":
            return Q(GreaterThanOrEqual(lhs, _json_value(value)))
        if op == "lte":
            return Q(LessThanOrEqual(lhs, _json_value(value)))
        q = Q(custom_fields__contains={key: value})
        return q if op == "eq" else ~q
    if field == "tag":
        q = Exists(
            Customer.tags.through.objects.filter(customer_id=OuterRef("pk"), tag_id__in=value)
        )
        return Q(q) if op == "any" else ~Q(q)
    if field == "home_store":
        q = Q(home_store__in=value)
        # "not in" keeps customers without a home store.
        return q if op == "in" else ~q | Q(home_store__isnull=True)
    if field == "consent":
        q = Q(**{f"consent_{value}": True})
        return q if op == "granted" else ~q
    if field == "do_not_contact":
        return Q(do_not_contact=(op == "yes"))
    if field == "processing_consent":
        from customers.privacy.selectors import processing_state_q

        q = Q(pk__in=[])
        for state in value:
            q |= processing_state_q(state, on=today)
        return q if op == "in" else ~q
    if field in {"value_class", "rfm_segment"}:
        q = Q(_metrics(**{f"{field}__in": value}))
        return q if op == "in" else ~q
    if field in {"historical_lcv", "predicted_clv", "p_alive"}:
        number = float(value) if field == "p_alive" else Decimal(str(value))
        return Q(_metrics(**{f"{field}__{op}": number}))
    if field == "bought_category":
        paths = list(Category.objects.filter(pk__in=value).values_list("path", flat=True))
        in_tree = Q(pk__in=[])
        for path in paths:
            in_tree |= Q(path=path) | Q(path__startswith=f"{path}/")
        categories = Category.objects.filter(in_tree).values("pk")
        return Q(
            Exists(
                ReceiptLine.objects.filter(
                    receipt__customer=OuterRef("pk"),
                    receipt__purchased_at__gte=_since(node["days"]),
                    product__category__in=categories,
                )
            )
        )
    if field == "bought_product":
        return Q(
            Exists(
                ReceiptLine.objects.filter(
                    receipt__customer=OuterRef("pk"),
                    receipt__purchased_at__gte=_since(node["days"]),
                    product__in=value,
                )
            )
        )
    if field == "receipts_count":
        receipts = Receipt.objects.filter(customer=OuterRef("pk"))
        if node["days"]:
            receipts = receipts.filter(purchased_at__gte=_since(node["days"]))
        at_least = Exists(
            receipts.order_by()
            .values("customer")
            .annotate(n=Count("id"))
            .filter(n__gte=max(value, 1))
        )
        if value == 0:
            return Q() if op == "gte" else Q(pk__in=[])
        return Q(at_least) if op == "gte" else ~Q(at_least)
    if field == "no_purchase_since":
        moment = dt.datetime.combine(
            dt.date.fromisoformat(value), dt.time.min, tzinfo=timezone.get_current_timezone()
        )
        return ~Q(Exists(Receipt.objects.filter(customer=OuterRef("pk"), purchased_at__gte=moment)))
    if field == "birthday_within":
        return birthday_q(today, value)
    if field == "holiday_affinity":
        q = Q(Exists(HolidayAffinity.objects.filter(customer=OuterRef("pk"), holiday=value)))
        return q if op == "has" else ~q
    if field in {"points_balance", "loyalty_tier", "points_expiring"}:
        return _loyalty_condition(field, op, value, today)
    raise ValueError(f"no compiler for {field}")  # validate_rules prevents this


def _loyalty_condition(field: str, op: str, value: Any, today: dt.date) -> Q:
    from loyalty.models import Account
    from loyalty.selectors import expiring_by_sql

    if field == "points_balance":
        number = Decimal(str(value))
        if op == "lte":
            # Customers without an account hold 0 points.
            return ~Q(Exists(Account.objects.filter(customer=OuterRef("pk"), available__gt=number)))
        return Q(Exists(Account.objects.filter(customer=OuterRef("pk"), available__gte=number)))
    if field == "loyalty_tier":
        q = Q(Exists(Account.objects.filter(customer=OuterRef("pk"), tier__in=value)))
        return q if op == "in" else ~q
    until = dt.datetime.combine(
        today + dt.timedelta(days=value + 1), dt.time.min, tzinfo=timezone.get_current_timezone()
    )
    sql, params = expiring_by_sql(until)
    # A constant statement with bound parameters (nothing of the rule tree is spliced in).
    return Q(pk__in=RawSQL(sql, params))  # noqa: S611


def compile_rules(tree: dict | None, *, today: dt.date | None = None) -> Q:
    """The `Q` of a valid rule tree; an empty tree (or group) matches everyone."""
    today = today or timezone.localdate()
    if not tree:
        return Q()
    if "rules" in tree:
        parts = [compile_rules(child, today=today) for child in tree["rules"]]
        if not parts:
            return Q()
        if tree["op"] == "or":
            combined = Q(pk__in=[])
            for part in parts:
                combined |= part
            return combined
        combined = Q()
        for part in parts:
            combined &= part
        return ~combined if tree["op"] == "not" and parts else combined
    return _condition(tree, today)


def segment_customers(*, user, segment=None, rules: dict | None = None) -> QuerySet:
    """The customers of a segment (or of an unsaved rule tree) that `user` may see."""
    customers = visible_customers(user)
    if segment is not None and segment.is_frozen:
        from campaigns.models import SegmentMember

        return customers.filter(
            Exists(SegmentMember.objects.filter(segment=segment, customer=OuterRef("pk")))
        )
    tree = segment.rules if segment is not None else rules
    return customers.filter(compile_rules(clean_rules(tree)))

"""Segment rule trees: their schema, validation, and compilation to one SQL query.

A rule tree is JSON of two node types::

    {"op": "and" | "or" | "not", "rules": [node, ...]}   # "not" negates the AND of its rules
    {"field": "<name>", "op": "<operator>", "value": ..., ...}   # a condition

`FIELDS` is the schema: which fields exist, which operators each takes and what value they
need. `compile_rules` turns a valid tree into a `Q` whose relational parts are correlated
`EXISTS` subqueries, so `visible_customers(user).filter(q)` is one statement whatever the tree,
and a customer is never evaluated in Python.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from dateutil.relativedelta import relativedelta
from django.core.exceptions import ValidationError
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import ExtractDay, ExtractMonth
from django.db.models.lookups import GreaterThanOrEqual, IContains, LessThanOrEqual
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.inputs import is_safe_text
from customers.access import visible_customers

MAX_ID = 2**63 - 1

MAX_DEPTH = 6
MAX_CONDITIONS = 60
GROUP_OPS = ("and", "or", "not")
CHANNELS = ("email", "sms", "messenger", "phone")
KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,49}$")
HOLIDAY_RE = re.compile(r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")


@dataclass(frozen=True)
class FieldSpec:
    label: Any
    group: Any
    # operator -> value kind: "choices", "ids", "number", "int", "date", "text", "channel",
    # "holiday", "none", "json"
    ops: dict[str, str]
    choices: tuple[str, ...] = ()
    # extra keys a condition of this field needs: name -> kind
    extra: tuple[tuple[str, str], ...] = ()
    # The range a number ("int", "number") may take, so that compiling it never leaves what
    # the column or the calendar holds (an age of 5000 years has no birth date).
    limits: tuple[int | float, int | float] = (0, 100_000)


# numeric(14, 2), the metrics' money columns, either sign.
MONEY_LIMITS = (-999_999_999_999.99, 999_999_999_999.99)
# What a custom field's JSON number may be: PostgreSQL compares any size, but keep it sane.
JSON_NUMBER_LIMIT = 10**15
DATE_YEARS = (1900, 2200)

CARD = _("Card")
PURCHASES = _("Purchases")
METRICS = _("Metrics")
CONTACT = _("Consent and contact")
LOYALTY = _("Bonus points")

FIELDS: dict[str, FieldSpec] = {
    "gender": FieldSpec(_("Gender"), CARD, {"in": "choices", "not_in": "choices"}, ("f", "m", "")),
    "lifecycle_stage": FieldSpec(
        _("Lifecycle stage"),
        CARD,
        {"in": "choices", "not_in": "choices"},
        ("lead", "customer", "lapsed"),
    ),
    "city": FieldSpec(_("City"), CARD, {"eq": "text", "contains": "text"}),
    "age": FieldSpec(_("Age"), CARD, {"gte": "int", "lte": "int"}, limits=(0, 150)),
    "children_count": FieldSpec(
        _("Children"), CARD, {"gte": "int", "lte": "int", "eq": "int"}, limits=(0, 100)
    ),
    "card_created": FieldSpec(_("Card created"), CARD, {"before": "date", "after": "date"}),
    "has_email": FieldSpec(_("Has an email"), CONTACT, {"yes": "none", "no": "none"}),
    "has_phone": FieldSpec(_("Has a phone"), CONTACT, {"yes": "none", "no": "none"}),
    "custom_field": FieldSpec(
        _("Custom field"),
        CARD,
        {
            "eq": "json",
            "ne": "json",
            "contains": "text",
            "gte": "json",
            "lte": "json",
            "is_set": "none",
        },
        extra=(("key", "key"),),
    ),
    "tag": FieldSpec(_("Tags"), CARD, {"any": "ids", "none": "ids"}),
    "home_store": FieldSpec(_("Home store"), CARD, {"in": "ids", "not_in": "ids"}),
    "consent": FieldSpec(_("Consent"), CONTACT, {"granted": "channel", "not_granted": "channel"}),
    "do_not_contact": FieldSpec(_("Do not contact"), CONTACT, {"yes": "none", "no": "none"}),
    "processing_consent": FieldSpec(
        _("Consent to processing"),
        CONTACT,
        {"in": "choices", "not_in": "choices"},
        ("valid", "reconsent", "missing", "withdrawn", "erased"),
    ),
    "value_class": FieldSpec(
        _("Value class"),
        METRICS,
        {"in": "choices", "not_in": "choices"},
        ("VIP", "A", "B", "C", "D"),
    ),
    "rfm_segment": FieldSpec(
        _("RFM segment"),
        METRICS,
        {"in": "choices", "not_in": "choices"},
        (
            "champions",
            "loyal",
            "potential_loyalist",
            "new",
            "promising",
            "needs_attention",
            "about_to_sleep",
            "at_risk",
            "cant_lose",
            "hibernating",
        ),
    ),
    "historical_lcv": FieldSpec(
        _("Historical LCV"), METRICS, {"gte": "number", "lte": "number"}, limits=MONEY_LIMITS
    ),
    "predicted_clv": FieldSpec(
        _("Predicted CLV"), METRICS, {"gte": "number", "lte": "number"}, limits=MONEY_LIMITS
    ),
    "p_alive": FieldSpec(_("P(alive)"), METRICS, {"gte": "number", "lte": "number"}, limits=(0, 1)),
    "bought_category": FieldSpec(
        _("Bought in category (with subcategories)"),
        PURCHASES,
        {"within_days": "ids"},
        extra=(("days", "days"),),
    ),
    "bought_product": FieldSpec(
        _("Bought product"), PURCHASES, {"within_days": "ids"}, extra=(("days", "days"),)
    ),
    "receipts_count": FieldSpec(
        _("Number of receipts"),
        PURCHASES,
        {"gte": "int", "lt": "int"},
        extra=(("days", "days_or_zero"),),
    ),
    "no_purchase_since": FieldSpec(_("No purchase since"), PURCHASES, {"since": "date"}),
    "birthday_within": FieldSpec(
        _("Birthday within, days"), CARD, {"within_days": "int"}, limits=(0, 366)
    ),
    "holiday_affinity": FieldSpec(
        _("Holiday affinity"), PURCHASES, {"has": "holiday", "has_not": "holiday"}
    ),
    # The bonus programme (loyalty app); tiers are kept apart from the value classes.
    "points_balance": FieldSpec(
        _("Bonus points available"), LOYALTY, {"gte": "number", "lte": "number"}
    ),
    "loyalty_tier": FieldSpec(_("Bonus tier"), LOYALTY, {"in": "ids", "not_in": "ids"}),
    "points_expiring": FieldSpec(
        _("Bonus points expiring within, days"), LOYALTY, {"within_days": "int"}
    ),
}


def plain_json(value: Any) -> Any:
    """`value` with Decimals (as the API's parser reads numbers) turned into int or float."""
    if isinstance(value, Decimal):
        if value.is_finite() and value == value.to_integral_value() and abs(value) < 10**30:
            return int(value)
        return float(value)
    if isinstance(value, list):
        return [plain_json(item) for item in value]
    if isinstance(value, dict):
        return {key: plain_json(item) for key, item in value.items()}
    return value


def _finite_number(value: Any) -> Decimal | None:
    """`value` as a finite Decimal when it is a JSON number or numeric string, else None.

    Python's json reads NaN, Infinity and 1e999999 (as inf) into floats; none of them is a
    number a column can compare with.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    if isinstance(value, str) and (len(value) > 40 or not is_safe_text(value)):
        return None
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


# What each operator reads as in the builder (the codes stay in the JSON tree).
OP_LABELS = {
    "in": _("is one of"),
    "not_in": _("is none of"),
    "eq": _("is"),
    "ne": _("is not"),
    "contains": _("contains"),
    "gte": _("at least"),
    "lte": _("at most"),
    "lt": _("fewer than"),
    "before": _("before"),
    "after": _("after"),
    "since": _("since"),
    "yes": _("yes"),
    "no": _("no"),
    "any": _("has any of"),
    "none": _("has none of"),
    "granted": _("given for"),
    "not_granted": _("not given for"),
    "within_days": _("within the last … days"),
    "has": _("buys before"),
    "has_not": _("does not buy before"),
    "is_set": _("is filled in"),
}
# Birthdays look ahead, not back.
FIELD_OP_LABELS = {("birthday_within", "within_days"): _("in the next … days")}


def choice_labels() -> dict[str, dict[str, str]]:
    """Readable labels of every coded value a condition may take, per field."""
    from analytics.models import RfmSegment, ValueClass
    from customers.models import Channel, Gender, LifecycleStage

    return {
        "gender": {k: str(v) for k, v in Gender.choices},
        "lifecycle_stage": {k: str(v) for k, v in LifecycleStage.choices},
        "value_class": {k: str(v) for k, v in ValueClass.choices},
        "rfm_segment": {k: str(v) for k, v in RfmSegment.choices},
        "channel": {k: str(v) for k, v in Channel.choices},
    }


EXTRA_LABELS = {"days": _("number of days"), "key": _("field key")}


def _where(path: str) -> str:
    """`rule.2.1` -> "Condition 2.1" (the root group is not numbered)."""
    numbers = path.split(".", 1)[1] if "." in path else ""
    return str(_("Condition %(n)s") % {"n": numbers}) if numbers else str(_("The rules"))


def _check_value(kind: str, value: Any, spec: FieldSpec, where: str) -> list[str]:  # noqa: C901
    bad = _("%(where)s (%(field)s): choose or enter a valid value.") % {
        "where": where,
        "field": spec.label,
    }
    low, high = spec.limits
    if kind == "none":
        return []
    if kind == "choices":
        ok = isinstance(value, list) and value and all(v in spec.choices for v in value)
        return [] if ok else [bad]
    if kind == "ids":
        ok = (
            isinstance(value, list)
            and 0 < len(value) <= 500
            and all(
                isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_ID for v in value
            )
        )
        return [] if ok else [bad]
    if kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
        return [] if ok else [bad]
    if kind == "number":
        number = _finite_number(value)
        ok = number is not None and Decimal(str(low)) <= number <= Decimal(str(high))
        return [] if ok else [bad]
    if kind == "date":
        try:
            day = dt.date.fromisoformat(value)
        except (TypeError, ValueError):
            return [bad]
        return [] if DATE_YEARS[0] <= day.year <= DATE_YEARS[1] else [bad]
    if kind == "text":
        ok = isinstance(value, str) and 0 < len(value) <= 200 and is_safe_text(value)
        return [] if ok else [bad]
    if kind == "channel":
        return [] if value in CHANNELS else [bad]
    if kind == "holiday":
        return [] if isinstance(value, str) and HOLIDAY_RE.fullmatch(value) else [bad]
    if kind == "json":
        if isinstance(value, str):
            ok = len(value) <= 200 and is_safe_text(value)
        elif isinstance(value, bool):
            ok = True
        else:
            number = _finite_number(value)
            ok = number is not None and abs(number) <= JSON_NUMBER_LIMIT
        return [] if ok else [bad]
    return [bad]


def _check_extra(kind: str, value: Any) -> bool:
    if kind == "key":
        return isinstance(value, str) and bool(KEY_RE.fullmatch(value))
    if kind == "days":
        return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 3650
    if kind == "days_or_zero":
        return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 3650
    return False


def validate_rules(tree: Any) -> list[str]:
    """Every problem of a rule tree as a readable message; empty when the tree is valid."""
    errors: list[str] = []
    count = 0

    def walk(node: Any, path: str, depth: int) -> None:
        nonlocal count
        if not isinstance(node, dict):
            errors.append(_("%(where)s: a rule must be an object.") % {"where": _where(path)})
            return
        if "rules" in node:
            if depth > MAX_DEPTH:
                errors.append(_("%(where)s: groups are nested too deep.") % {"where": _where(path)})
                return
            if node.get("op") not in GROUP_OPS:
                errors.append(_("%(where)s: unknown group operator.") % {"where": _where(path)})
            rules = node.get("rules")
            if not isinstance(rules, list):
                errors.append(_("%(where)s: rules must be a list.") % {"where": _where(path)})
                return
            for i, child in enumerate(rules):
                walk(child, f"{path}.{i + 1}", depth + 1)
            return
        count += 1
        field, op = node.get("field"), node.get("op")
        spec = FIELDS.get(field) if isinstance(field, str) else None
        if spec is None:
            errors.append(_("%(where)s: unknown field.") % {"where": _where(path)})
            return
        kind = spec.ops.get(op) if isinstance(op, str) else None
        if kind is None:
            errors.append(
                _("%(where)s: unknown operator for this field.") % {"where": _where(path)}
            )
            return
        errors.extend(_check_value(kind, node.get("value"), spec, _where(path)))
        for name, extra_kind in spec.extra:
            if not _check_extra(extra_kind, node.get(name)):
                errors.append(
                    _("%(where)s (%(field)s): enter a valid %(name)s.")
                    % {"where": _where(path), "field": spec.label, "name": EXTRA_LABELS[name]}
                )

    if tree in (None, {}):
        return []
    walk(tree, "rule", 1)
    if count > MAX_CONDITIONS:
        errors.append(_("Too many conditions (at most %(n)s).") % {"n": MAX_CONDITIONS})
    return [str(e) for e in errors]


def clean_rules(tree: Any) -> dict:
    """The tree when valid, otherwise a ValidationError listing every problem."""
    errors = validate_rules(tree)
    if errors:
        raise ValidationError({"rules": errors})
    return tree or {}


# Compilation ------------------------------------------------------------------------------


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


__all__ = [
    "FIELDS",
    "birthday_q",
    "clean_rules",
    "compile_rules",
    "plain_json",
    "segment_customers",
    "validate_rules",
]

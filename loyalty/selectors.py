"""Reads of the bonus programme. Customer rows always come through `customers.access` first."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from .models import ZERO, Account, Entry, ReceiptPoints


def receipt_answer_of(points: ReceiptPoints) -> dict[str, Any]:
    """What the till gets back about the points of one receipt (same on every replay)."""
    # Strings, as the serializers render money: the bulk answer is not passed through one.
    return {
        "requested": f"{points.requested:.2f}",
        "redeemed": f"{points.redeemed:.2f}",
        "earned": f"{points.earned:.2f}",
        "refused": points.refused,
        "available": f"{points.available_after:.2f}",
        "pending": f"{points.pending_after:.2f}",
        "tier": points.tier_name or None,
    }


def account_of(customer) -> Account | None:
    try:
        return Account.objects.select_related("tier").get(customer_id=customer.pk)
    except Account.DoesNotExist:
        return None


def account_summary(customer) -> dict[str, Any]:
    """Tier, available and pending points (zeros for a customer with no account yet)."""
    account = getattr(customer, "_loyalty_account", None) or account_of(customer)
    return {
        "tier": account.tier.name if account and account.tier else None,
        "available": account.available if account else ZERO,
        "pending": account.pending if account else ZERO,
        "debt": account.debt if account else ZERO,
    }


_NEXT_EXPIRY = """
WITH credits AS (
  SELECT expires_at, sum(available_delta) AS amount FROM loyalty_entry
  WHERE account_id = %(a)s AND available_delta > 0 AND expires_at > %(now)s
  GROUP BY expires_at
), spent AS (
  SELECT greatest(
    -coalesce((SELECT sum(available_delta) FROM loyalty_entry
               WHERE account_id = %(a)s AND available_delta < 0), 0)
    - coalesce((SELECT sum(available_delta) FROM loyalty_entry
                WHERE account_id = %(a)s AND available_delta > 0 AND expires_at <= %(now)s), 0),
    0) AS d
)
SELECT c.expires_at,
       least(c.amount, greatest(sum(c.amount) OVER (ORDER BY c.expires_at) - s.d, 0))
FROM credits c, spent s ORDER BY c.expires_at
"""


def expiry_schedule(account: Account, *, now: dt.datetime | None = None) -> list[tuple]:
    """(when, points) still to expire, oldest first, counting debits against the earliest."""
    with connection.cursor() as cursor:
        cursor.execute(_NEXT_EXPIRY, {"a": account.pk, "now": now or timezone.now()})
        return [(at, amount) for at, amount in cursor.fetchall() if amount > 0]


def next_expiry(account: Account | None) -> tuple[dt.datetime, Decimal] | None:
    if account is None:
        return None
    schedule = expiry_schedule(account)
    return schedule[0] if schedule else None


def ledger_page(account: Account, *, limit: int = 50) -> list[Entry]:
    return list(
        Entry.objects.filter(account=account)
        .select_related("receipt", "return_doc", "actor")
        .order_by("-at", "-id")[:limit]
    )


def points_liability() -> Decimal:
    return Account.objects.aggregate(s=Sum("available"))["s"] or ZERO


def _balance(available, pending, debt, due) -> tuple[Decimal, Decimal]:
    """(available, pending) as the next booking will see them: lots whose hold has passed
    count as available (less any debt they settle), even before the activation run."""
    due = due or ZERO
    return available + due - min(due, debt), pending - due


# The till's calculation reads everything it needs in this one statement (the key is checked
# before, by the authentication): the customer the cart names, found as a receipt finds them
# (`customer_ref_sql`, through the one door), the rules' version, the account and its lots whose
# hold has passed, and the cart's products with their category paths. One round trip, and no
# ORM query to build on a path a till takes on every scan. Planning it cost PostgreSQL twice
# what running it does, so each session prepares it once (one per way of naming the customer
# and shape of the caller's scope: a handful).
_CART_SQL = """
WITH person AS MATERIALIZED (SELECT {customer} AS id)
SELECT person.id, (SELECT last_value FROM loyalty_rules_version), a.tier_id, a.available,
       a.pending, a.debt,
       (SELECT sum(e.pending_delta + coalesce((SELECT sum(r.pending_delta) FROM loyalty_entry r
                                       WHERE r.source_id = e.id AND r.kind = 'reverse'), 0))
        FROM loyalty_entry e
        WHERE e.account_id = a.id AND e.kind = 'earn' AND e.pending_delta > 0
          AND e.activates_at <= %s
          AND NOT EXISTS (SELECT 1 FROM loyalty_entry x
                          WHERE x.source_id = e.id AND x.kind = 'activate')),
       (SELECT json_agg(json_build_array(p.sku, p.id, coalesce(c.path, '')))
        FROM sales_product p LEFT JOIN sales_category c ON c.id = p.category_id
        WHERE p.sku = ANY(%s))
FROM person LEFT JOIN loyalty_account a ON a.customer_id = person.id
"""


def cart_calculation(*, user, data: dict[str, Any], at: dt.datetime) -> dict[str, Any]:
    """The till's pure calculation for a cart; the customer is found as a receipt finds them."""
    from django.core.exceptions import ValidationError

    from crm.pg.prepared import execute_prepared, prepared_from
    from sales.ingest.references import customer_ref_errors, customer_ref_sql
    from sales.services import money

    from .rules import CartLine, calculate, rulebook_for

    customer, params = customer_ref_sql(user, data)
    sql = _CART_SQL.format(customer=customer)
    params = [*params, timezone.now(), sorted({line["sku"] for line in data["lines"]})]
    statement = prepared_from("cart", sql)
    with connection.cursor() as cursor:
        if statement is None:
            cursor.execute(sql, params)
        else:
            execute_prepared(cursor, statement, params)
        customer_id, version, tier_id, *sums, found = cursor.fetchone()
    if customer_id is None and customer_ref_errors(data):
        raise ValidationError(customer_ref_errors(data))
    products = {sku: (pk, path) for sku, pk, path in found or ()}
    cart = [
        CartLine(
            line_no=i,
            sku=line["sku"],
            product_id=products.get(line["sku"], (None, ""))[0],
            amount=money(line["quantity"] * line["unit_price"] - line["discount"]),
            category_path=products.get(line["sku"], (None, ""))[1],
        )
        for i, line in enumerate(data["lines"], start=1)
    ]
    has_account = sums[0] is not None
    available, pending = _balance(*sums) if has_account else (ZERO, ZERO)
    book = rulebook_for(at=at, version=version)
    # A new account is placed by the nightly run or its first receipt; until then, the first tier.
    tier = (book.tier_by_id(tier_id) if has_account else None) or book.tier_for_spend(ZERO)
    calc = calculate(
        book=book,
        tier=tier,
        available=available if customer_id else ZERO,
        lines=cart,
        wanted=data.get("points_wanted") or ZERO,
        at=at,
    )
    if not customer_id:
        for line in calc.lines:
            line.earn_rate, line.earned = ZERO, ZERO
        calc.earned = ZERO
    total = sum((line.amount for line in cart), ZERO)
    return {
        "customer_id": customer_id,
        "tier": tier.name if tier and customer_id else None,
        "available": available,
        "pending": pending,
        "total": total,
        "max_redeemable": calc.max_redeemable,
        "redeemed": calc.redeemed,
        "earned": calc.earned,
        "multiplier": calc.multiplier,
        "to_pay": total - calc.redeemed,
        "lines": [line.__dict__ for line in calc.lines],
    }


_EXPIRING_CUSTOMERS = """
SELECT a.customer_id FROM loyalty_account a JOIN loyalty_entry e ON e.account_id = a.id
WHERE a.available > 0
GROUP BY a.customer_id
HAVING coalesce(sum(e.available_delta) FILTER (WHERE e.available_delta > 0
                                                AND e.expires_at < %s), 0)
       + coalesce(sum(e.available_delta) FILTER (WHERE e.available_delta < 0), 0) > 0
"""


def expiring_by_sql(until: dt.datetime) -> tuple[str, list]:
    """SQL of the customers some of whose points will have expired before `until` (the same
    earliest-first rule as the expiry run), for segments and the expiry trigger."""
    return _EXPIRING_CUSTOMERS, [until]


def dashboard_figures(*, user, now: dt.datetime | None = None) -> dict[str, Any]:
    """The programme on the dashboard, over the customers `user` may see: the outstanding
    points (1 point = 1 ₽ of liability), points earned and burned per month over the last
    year, the redemption rate (burned ÷ earned) and the year's revenue by tier."""
    from django.db.models import Count, Q
    from django.db.models.functions import TruncMonth

    from customers.access import visible_customers
    from sales.models import Receipt

    now = now or timezone.now()
    since = now - dt.timedelta(days=365)
    visible = visible_customers(user).values("pk")
    accounts = Account.objects.filter(customer__in=visible)
    liability = accounts.aggregate(s=Sum("available"))["s"] or ZERO
    months = (
        Entry.objects.filter(account__customer__in=visible, at__gte=since)
        .annotate(month=TruncMonth("at"))
        .values("month")
        .annotate(
            earned=Sum("pending_delta", filter=Q(kind="earn"), default=ZERO)
            + Sum("available_delta", filter=Q(kind="earn"), default=ZERO),
            burned=-Sum("available_delta", filter=Q(kind="redeem"), default=ZERO),
            expired=-Sum("available_delta", filter=Q(kind="expire"), default=ZERO),
        )
        .order_by("month")
    )
    months = list(months)
    earned = sum((m["earned"] for m in months), ZERO)
    burned = sum((m["burned"] for m in months), ZERO)
    tiers = (
        Receipt.objects.filter(customer__in=visible, purchased_at__gte=since)
        .values("customer__loyalty__tier__name")
        .annotate(revenue=Sum("total"), receipts=Count("id"))
        .order_by("-revenue")
    )
    return {
        "liability": liability,
        "months": months,
        "earned": earned,
        "burned": burned,
        "redemption_rate": (burned / earned) if earned else None,
        "tiers": [
            {
                "tier": row["customer__loyalty__tier__name"],
                "revenue": row["revenue"],
                "receipts": row["receipts"],
            }
            for row in tiers
        ],
    }

"""Tiers: accounts placed by their trailing 12-month spend net of returns."""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.utils import timezone

from .ledger import id_array

# Each account's spend and tier are computed once, in materialised CTEs (inlined, the planner
# ran the sums again for the tier and for the update's test); the update finds the accounts by
# the same scope (a look-up, not a hash of every account), and the look-ups by customer go as a
# plain statement (prepared, it would abort the booking's transaction in a session that lost
# its statements to a pooler's DISCARD ALL, see crm.pg.prepared).
_TIERS = """
WITH spend AS MATERIALIZED (
  SELECT a.id, greatest(
           coalesce((SELECT sum(r.total) FROM sales_receipt r
                     WHERE r.customer_id = a.customer_id AND r.purchased_at >= %s), 0)
           - coalesce((SELECT sum(rl.amount) FROM sales_receipt r
                       JOIN sales_return rt ON rt.receipt_id = r.id
                       JOIN sales_returnline rl ON rl.return_doc_id = rt.id
                       WHERE r.customer_id = a.customer_id AND rt.returned_at >= %s), 0),
           0) AS spend
  FROM loyalty_account a
  WHERE {scope}
), placed AS MATERIALIZED (
  SELECT s.id, s.spend, (SELECT t.id FROM loyalty_tier t WHERE t.threshold <= s.spend
                         ORDER BY t.threshold DESC LIMIT 1) AS tier_id
  FROM spend s
)
UPDATE loyalty_account a SET spend_12m = p.spend, tier_id = p.tier_id
FROM placed p LEFT JOIN loyalty_tier t ON t.id = p.tier_id
WHERE a.id = p.id AND {scope} AND {changed}
RETURNING a.id, coalesce(t.name, '')
"""
_TIERS_ALL = _TIERS.format(
    scope="true", changed="(a.spend_12m, a.tier_id) IS DISTINCT FROM (p.spend, p.tier_id)"
)
# A booking writes an account only when its tier changes: the sums trigger has just rewritten
# the row, and a second version of it per receipt for `spend_12m` alone (shown in the admin,
# read by nothing) cost more than the rest of the placement. The nightly run writes both.
_TIERS_OF = _TIERS.format(
    scope="a.customer_id = ANY(%s::bigint[])", changed="a.tier_id IS DISTINCT FROM p.tier_id"
)


def tiers_recompute(*, customer_ids: list[int] | None = None, now=None) -> int:
    """Place accounts in tiers by their trailing 12-month spend net of returns (None: all).

    Given customers (a booking, a return, a merge), only a change of tier is written, with the
    spend it was placed by; without (the nightly run), every account's `spend_12m` too, so that
    column is the spend as of the last change of tier or the last night."""
    if customer_ids is not None:
        return len(tiers_place(customer_ids=customer_ids, now=now))
    since = (now or timezone.now()) - dt.timedelta(days=365)
    with connection.cursor() as cursor:
        cursor.execute(_TIERS_ALL, [since, since])
        return cursor.rowcount


def tiers_place(*, customer_ids, now=None) -> dict[int, str]:
    """`tiers_recompute` for these customers; returns {account id: name of its new tier ("" for
    none)} of the accounts whose tier changed (a bulk booking's answers name the tier without
    reading every account back)."""
    since = (now or timezone.now()) - dt.timedelta(days=365)
    ids = id_array(customer_ids)
    with connection.cursor() as cursor:
        cursor.execute(_TIERS_OF, [since, since, ids, ids])
        return dict(cursor.fetchall())

"""Tiers: accounts placed by their trailing 12-month spend net of returns."""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.utils import timezone

from crm.pg.prepared import execute_prepared, prepared_from

# The spend is materialised so that each account's sums run once (inlined, the tier's subquery
# ran them again), and the look-ups by customer go as a prepared statement: planning this text
# cost PostgreSQL more than running it for a till's batch of card holders.
_TIERS = """
WITH spend AS MATERIALIZED (
  SELECT a.id, greatest(coalesce(bought.total, 0) - coalesce(returned.total, 0), 0) AS spend
  FROM loyalty_account a
  LEFT JOIN LATERAL (SELECT sum(r.total) AS total FROM sales_receipt r
                     WHERE r.customer_id = a.customer_id AND r.purchased_at >= %s) bought ON true
  LEFT JOIN LATERAL (SELECT sum(rl.amount) AS total
                     FROM sales_receipt r
                     JOIN sales_return rt ON rt.receipt_id = r.id
                     JOIN sales_returnline rl ON rl.return_doc_id = rt.id
                     WHERE r.customer_id = a.customer_id AND rt.returned_at >= %s) returned ON true
  WHERE {scope}
), placed AS (
  SELECT s.id, s.spend, (SELECT t.id FROM loyalty_tier t WHERE t.threshold <= s.spend
                         ORDER BY t.threshold DESC LIMIT 1) AS tier_id
  FROM spend s
)
UPDATE loyalty_account a SET spend_12m = p.spend, tier_id = p.tier_id
FROM placed p
WHERE a.id = p.id AND (a.spend_12m, a.tier_id) IS DISTINCT FROM (p.spend, p.tier_id)
"""
_TIERS_ALL = _TIERS.format(scope="true")
_TIERS_OF = prepared_from("tiers_of", _TIERS.format(scope="a.customer_id = ANY(%s)"))


def tiers_recompute(*, customer_ids: list[int] | None = None, now=None) -> int:
    """Place accounts in tiers by their trailing 12-month spend net of returns (None: all)."""
    since = (now or timezone.now()) - dt.timedelta(days=365)
    with connection.cursor() as cursor:
        if customer_ids is None:
            cursor.execute(_TIERS_ALL, [since, since])
        else:
            execute_prepared(cursor, _TIERS_OF, [since, since, list(customer_ids)])
        return cursor.rowcount

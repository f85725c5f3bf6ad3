"""Tiers: accounts placed by their trailing 12-month spend net of returns."""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.utils import timezone

_TIERS = """
WITH spend AS (
  SELECT a.id,
         greatest(coalesce((SELECT sum(r.total) FROM sales_receipt r
                            WHERE r.customer_id = a.customer_id AND r.purchased_at >= %(since)s), 0)
                - coalesce((SELECT sum(rl.amount) FROM sales_returnline rl
                            JOIN sales_return rt ON rt.id = rl.return_doc_id
                            JOIN sales_receipt r ON r.id = rt.receipt_id
                            WHERE r.customer_id = a.customer_id
                              AND rt.returned_at >= %(since)s), 0),
                  0) AS spend
  FROM loyalty_account a
  WHERE %(all)s OR a.customer_id = ANY(%(ids)s)
), placed AS (
  SELECT s.id, s.spend, (SELECT t.id FROM loyalty_tier t WHERE t.threshold <= s.spend
                         ORDER BY t.threshold DESC LIMIT 1) AS tier_id
  FROM spend s
)
UPDATE loyalty_account a SET spend_12m = p.spend, tier_id = p.tier_id
FROM placed p
WHERE a.id = p.id AND (a.spend_12m, a.tier_id) IS DISTINCT FROM (p.spend, p.tier_id)
"""


def tiers_recompute(*, customer_ids: list[int] | None = None, now=None) -> int:
    """Place accounts in tiers by their trailing 12-month spend net of returns (None: all)."""
    since = (now or timezone.now()) - dt.timedelta(days=365)
    with connection.cursor() as cursor:
        cursor.execute(
            _TIERS, {"since": since, "all": customer_ids is None, "ids": customer_ids or []}
        )
        return cursor.rowcount

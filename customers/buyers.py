"""Customers who have bought: the one write sales needs on customer cards.

Customers owns its rows (see `customers.services`); sales calls this when it stores receipts
instead of updating cards itself. One UPDATE per call whatever the number of customers, and it
skips cards already marked, so a batch of a thousand receipts costs one statement that touches
only the leads among them.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection

from .models import Customer, LifecycleStage


def customers_mark_buyers(customer_ids: Iterable[int | None]) -> int:
    """Mark these customers as buyers (leads and lapsed ones alike); returns rows changed.

    A lapsed customer who buys again is a customer again; ids that are None are ignored.
    """
    ids = {cid for cid in customer_ids if cid}
    if not ids:
        return 0
    # What `filter(pk__in=ids).exclude(stage).update(stage)` writes, with the ids as one array
    # literal: the ORM compiled a history batch's ids one by one in Python (a tenth of the
    # import's own thread).
    table = Customer._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET lifecycle_stage = %s "  # noqa: S608 - our own model's table
            "WHERE id = ANY(%s::bigint[]) AND lifecycle_stage <> %s",
            [
                LifecycleStage.CUSTOMER.value,
                "{" + ",".join(map(str, ids)) + "}",
                LifecycleStage.CUSTOMER.value,
            ],
        )
        return cursor.rowcount

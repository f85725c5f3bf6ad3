"""Customers who have bought: the one write sales needs on customer cards.

Customers owns its rows (see `customers.services`); sales calls this when it stores receipts
instead of updating cards itself. One UPDATE per call whatever the number of customers, and it
skips cards already marked, so a batch of a thousand receipts costs one statement that touches
only the leads among them.
"""

from __future__ import annotations

from collections.abc import Iterable

from .models import Customer, LifecycleStage


def customers_mark_buyers(customer_ids: Iterable[int | None]) -> int:
    """Mark these customers as buyers (leads and lapsed ones alike); returns rows changed.

    A lapsed customer who buys again is a customer again; ids that are None are ignored.
    """
    ids = {cid for cid in customer_ids if cid}
    if not ids:
        return 0
    return (
        Customer.objects.filter(pk__in=ids)
        .exclude(lifecycle_stage=LifecycleStage.CUSTOMER)
        .update(lifecycle_stage=LifecycleStage.CUSTOMER)
    )

"""Receivers of lower apps' signals, connected in `AnalyticsConfig.ready()`."""

from __future__ import annotations

from crm.tasks import send_now


def refresh_after_purchases(sender, customer_ids: list[int], **kwargs) -> None:
    """Refresh the metrics of customers whose receipts or returns were just committed.

    The signal is sent after the commit already, so the task is sent at once. One broker
    message either way: a bulk load's ids go to a fan-out task on the worker.
    """
    if len(customer_ids) == 1:
        send_now("analytics.tasks.refresh_customer_metrics", customer_ids[0])
    elif customer_ids:
        send_now("analytics.tasks.refresh_customers_metrics", customer_ids)


def recompute_after_import(sender, **kwargs) -> None:
    """A history import stored years of receipts: one full recompute (the nightly's), not a
    refresh per customer per batch; a run already under way makes this one a no-op."""
    send_now("analytics.tasks.recompute_all_metrics")

"""Celery tasks of analytics: thin wrappers that call analytics.services."""

from celery import shared_task


@shared_task(ignore_result=True)
def refresh_customer_metrics(customer_id: int) -> None:
    """Recompute one customer's metrics after a receipt or return."""
    from . import services

    services.customer_metrics_refresh(customer_id=customer_id)


@shared_task(ignore_result=True)
def refresh_customers_metrics(customer_ids: list[int]) -> None:
    """Queue one metrics refresh per customer of a bulk load.

    A broker round trip costs milliseconds; a 1,000-receipt batch publishes this one message and
    the worker fans it out, so the till's response never waits for hundreds of publishes.
    """
    for customer_id in customer_ids:
        refresh_customer_metrics.delay(customer_id)


@shared_task(ignore_result=True, acks_late=True)
def recompute_all_metrics(run_id: int | None = None) -> None:
    """The nightly (and on-demand) full recompute; a second concurrent run is skipped."""
    from . import services

    services.metrics_recompute_all(run_id=run_id)

"""Celery tasks of analytics: thin wrappers that call analytics.services."""

from celery import shared_task


@shared_task(ignore_result=True)
def refresh_customer_metrics(customer_id: int) -> None:
    """Recompute one customer's metrics after a receipt or return (filled in by analytics)."""
    from . import services

    services.customer_metrics_refresh(customer_id=customer_id)

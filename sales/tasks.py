"""Celery tasks of sales: thin, take ids."""

from celery import shared_task


@shared_task(ignore_result=True)
def refresh_customers_metrics(customer_ids: list[int]) -> None:
    """Queue one metrics refresh per customer of a bulk load.

    A broker round trip costs milliseconds; a 1,000-receipt batch publishes this one message and
    the worker fans it out, so the till's response never waits for hundreds of publishes.
    """
    from analytics.tasks import refresh_customer_metrics

    for customer_id in customer_ids:
        refresh_customer_metrics.delay(customer_id)

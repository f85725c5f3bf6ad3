"""The customer history index covers the receipts' money in kopecks; receipts are indexed by
the time they were received.

The nightly metrics aggregate every receipt per customer from `receipt_customer_totals` alone,
and find the customers whose history changed since the previous run by `receipt_received`.
Built concurrently, so that tills keep posting receipts meanwhile: the new index first, then
the old one goes. Not atomic, as CREATE INDEX CONCURRENTLY requires.
"""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("sales", "0008_h16a_store_moves_to_crm"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="receipt",
            index=models.Index(
                fields=["customer", "purchased_at"],
                include=["id", "total", "total_minor", "margin_minor"],
                name="receipt_customer_totals",
            ),
        ),
        RemoveIndexConcurrently(model_name="receipt", name="receipt_customer_history"),
        AddIndexConcurrently(
            model_name="receipt",
            index=models.Index(fields=["created_at"], name="receipt_received"),
        ),
    ]

"""Indexes that cover the nightly metrics' reads of a customer's history.

Built concurrently, so that tills keep posting receipts while they are made: the new receipts
index first, then the old one goes; the line constraint is moved onto a new unique index in
one brief ALTER TABLE. Not atomic, as CREATE INDEX CONCURRENTLY requires.
"""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models

LINE_INDEX = """
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS receipt_line_unique_cover
    ON sales_receiptline (receipt_id, line_no) INCLUDE (product_id, amount)
"""
LINE_CONSTRAINT = """
ALTER TABLE sales_receiptline
    DROP CONSTRAINT receipt_line_unique_no,
    ADD CONSTRAINT receipt_line_unique_no UNIQUE USING INDEX receipt_line_unique_cover
"""
LINE_BACK = """
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS receipt_line_unique_plain
    ON sales_receiptline (receipt_id, line_no)
"""
LINE_CONSTRAINT_BACK = """
ALTER TABLE sales_receiptline
    DROP CONSTRAINT receipt_line_unique_no,
    ADD CONSTRAINT receipt_line_unique_no UNIQUE USING INDEX receipt_line_unique_plain
"""


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("sales", "0005_receipt_minor_units"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="receipt",
            index=models.Index(
                fields=["customer", "purchased_at"],
                include=["id", "total"],
                name="receipt_customer_history",
            ),
        ),
        RemoveIndexConcurrently(model_name="receipt", name="receipt_customer_time"),
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(LINE_INDEX, LINE_CONSTRAINT_BACK),
                migrations.RunSQL(LINE_CONSTRAINT, LINE_BACK),
            ],
            state_operations=[
                migrations.RemoveConstraint(
                    model_name="receiptline", name="receipt_line_unique_no"
                ),
                migrations.AddConstraint(
                    model_name="receiptline",
                    constraint=models.UniqueConstraint(
                        fields=["receipt", "line_no"],
                        include=["product", "amount"],
                        name="receipt_line_unique_no",
                    ),
                ),
            ],
        ),
    ]

"""The margin trigger leaves alone receipts whose statement wrote their margin itself.

`sales.ingest.history` inserts a batch's receipts and lines in one statement and computes each
receipt's margin there; the trigger's UPDATE would then write every receipt a second time (a
new row version in every index, a third of the statement's time). The statement says so with
the transaction-local setting `sales.margin_written`, which it sets only around itself; every
other insert of lines (the tills, the API, COPY) is summed by the trigger as before.
"""

from django.db import migrations

SYNC_FUNCTION = """
CREATE OR REPLACE FUNCTION sales_receipt_margin_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' OR (
        TG_OP = 'INSERT' AND coalesce(current_setting('sales.margin_written', true), '') <> 'on'
    ) THEN
        UPDATE sales_receipt r SET margin = r.margin + d.margin
        FROM (SELECT receipt_id, sum(margin) AS margin FROM added GROUP BY receipt_id) d
        WHERE r.id = d.receipt_id;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE sales_receipt r SET margin = r.margin - d.margin
        FROM (SELECT receipt_id, sum(margin) AS margin FROM removed GROUP BY receipt_id) d
        WHERE r.id = d.receipt_id;
    END IF;
    RETURN NULL;
END
$$;
"""

PREVIOUS_FUNCTION = """
CREATE OR REPLACE FUNCTION sales_receipt_margin_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE sales_receipt r SET margin = r.margin + d.margin
        FROM (SELECT receipt_id, sum(margin) AS margin FROM added GROUP BY receipt_id) d
        WHERE r.id = d.receipt_id;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE sales_receipt r SET margin = r.margin - d.margin
        FROM (SELECT receipt_id, sum(margin) AS margin FROM removed GROUP BY receipt_id) d
        WHERE r.id = d.receipt_id;
    END IF;
    RETURN NULL;
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("sales", "0009_h14_receipt_totals_index"),
    ]

    operations = [migrations.RunSQL(SYNC_FUNCTION, PREVIOUS_FUNCTION)]

"""Receipt.margin: the sum of the receipt's line margins, kept by triggers.

Statement-level triggers with transition tables cost one UPDATE per INSERT/DELETE/UPDATE
statement on the lines, however many rows it touches, so the bulk ingest and COPY stay fast.
The backfill sets the column for receipts written before this migration.
"""

from decimal import Decimal

from django.db import migrations, models

SYNC_FUNCTION = """
CREATE FUNCTION sales_receipt_margin_sync() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE TRIGGER receiptline_margin_insert AFTER INSERT ON sales_receiptline
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION sales_receipt_margin_sync();
CREATE TRIGGER receiptline_margin_delete AFTER DELETE ON sales_receiptline
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION sales_receipt_margin_sync();
CREATE TRIGGER receiptline_margin_update AFTER UPDATE ON sales_receiptline
    REFERENCING OLD TABLE AS removed NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION sales_receipt_margin_sync();
"""

DROP_FUNCTION = """
DROP TRIGGER receiptline_margin_update ON sales_receiptline;
DROP TRIGGER receiptline_margin_delete ON sales_receiptline;
DROP TRIGGER receiptline_margin_insert ON sales_receiptline;
DROP FUNCTION sales_receipt_margin_sync();
"""

BACKFILL = """
UPDATE sales_receipt r SET margin = l.margin
FROM (SELECT receipt_id, sum(margin) AS margin FROM sales_receiptline GROUP BY receipt_id) l
WHERE r.id = l.receipt_id AND r.margin IS DISTINCT FROM l.margin
"""


class Migration(migrations.Migration):
    dependencies = [
        ("sales", "0003_drop_duplicate_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="receipt",
            name="margin",
            field=models.DecimalField(
                db_default=Decimal("0"),
                decimal_places=2,
                editable=False,
                max_digits=14,
                verbose_name="margin",
            ),
        ),
        migrations.RunSQL(SYNC_FUNCTION, DROP_FUNCTION),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
    ]

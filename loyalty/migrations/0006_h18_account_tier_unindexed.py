"""`loyalty_account` without its index by tier.

Nothing reads accounts by tier; the index only made each change of an account's tier (the
first placement of every new account among them) a non-HOT update, with a new entry in every
index of the table, beside the ledger sums' rewrite of the same row (bench/README.md, "Bulk
ingestion with loyalty on"). Dropping an index is instant; the reverse builds it again.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("loyalty", "0005_lead_partial_entry_indexes"),
    ]

    operations = [
        migrations.AlterField(
            model_name="account",
            name="tier",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="accounts",
                to="loyalty.tier",
            ),
        ),
    ]

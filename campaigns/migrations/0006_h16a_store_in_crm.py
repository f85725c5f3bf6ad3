"""ChainDate.store points at `crm.Store` (moved from sales); state only, the FK is unchanged."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0005_merge_0004_i15_labels_0004_i18_points_trigger"),
        ("crm", "0008_h16a_store_moves_to_crm"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="chaindate",
                    name="store",
                    field=models.ForeignKey(
                        blank=True,
                        help_text="Only this store's customers; empty for the whole chain.",
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="chain_dates",
                        to="crm.store",
                    ),
                ),
            ],
        ),
    ]

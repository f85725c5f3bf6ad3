"""Store foreign keys point at `crm.Store` (moved from sales); state only, the FKs are unchanged."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0008_h16a_store_moves_to_crm"),
        ("customers", "0007_merge_20261204_1121"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="contact",
                    name="store",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="crm.store",
                    ),
                ),
                migrations.AlterField(
                    model_name="customer",
                    name="home_store",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="home_customers",
                        to="crm.store",
                        verbose_name="home store",
                    ),
                ),
                migrations.AlterField(
                    model_name="importjob",
                    name="store",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="crm.store",
                    ),
                ),
                migrations.AlterField(
                    model_name="processingconsent",
                    name="store",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="crm.store",
                    ),
                ),
            ],
        ),
    ]
